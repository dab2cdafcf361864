"""``ioc bench pipeline``: end-to-end throughput and latency of the stream pipeline.

Runs the real broker, a real worker process and the real database (embedded
ones unless configured), then:

1. frames: recognition throughput with 1 and 2 worker processes;
2. latency: sends single reads at a steady rate with some watchlisted plates and,
   after a short warm-up, measures capture time -> row committed and capture
   time -> alert on the topic;
3. throughput: pushes a fixed number of edge plate reads and sensor readings
   (in gateway envelopes, serialised beforehand so the producer does not compete
   with the worker for the CPU) and waits until every one is a committed row;
4. baselines: the throughput phase's messages through bare aiokafka consume-and-COPY
   loops, one into tables like the pipeline's (the ratio is to it), one into an
   unindexed temporary table.

The last line of stdout is a JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import statistics
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from psycopg import AsyncConnection, sql
from psycopg.types.json import Jsonb

from ioc.commands._arguments import positive
from ioc.config import Settings, get_settings
from ioc.schemas import (
    AlertKind,
    CameraFrame,
    Direction,
    EdgePlateRead,
    EdgePlateReadBatch,
    SensorKind,
    SensorReading,
    SensorReadingBatch,
    utcnow,
)
from ioc.storage.database import detect_capabilities
from ioc.storage.migrations import create_hypertable

logger = logging.getLogger(__name__)

# The traffic comes from a province's worth of cameras (issue: ~400 streaming), so
# per-lane densities stay physical: passages group reads per camera lane.
ALERT_WARM_UP_S = 2.0
CHECKPOINTS = 100
CAMERAS_PER_CHECKPOINT = 4
LANES = 2


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("pipeline", help="end-to-end stream pipeline benchmark")
    parser.add_argument("--events", type=positive, default=200_000, help="edge reads + sensor readings")
    parser.add_argument("--envelope", type=positive, default=200, help="events per Kafka message")
    parser.add_argument("--alert-rate", type=float, default=1000.0, help="reads/s in the alert phase")
    parser.add_argument("--alert-seconds", type=float, default=30.0,
                        help="measured seconds at --alert-rate (about 300 alerts at the defaults)")
    parser.add_argument("--frames", type=int, default=200, help="frames per worker-count run (0: skip)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ioc.demo import embedded_services
    from ioc.embedded.ports import free_port

    workdir = Path(".run/bench-pipeline")
    workdir.mkdir(parents=True, exist_ok=True)
    base = get_settings().model_copy(update={
        "topic_prefix": f"bench{uuid.uuid4().hex[:8]}",
        "worker_web_port": free_port(), "worker_metrics_port": free_port(),  # a running worker keeps its own
    })
    with embedded_services(base, workdir) as settings:
        result = asyncio.run(_bench(settings, args, workdir))
    print(json.dumps(result), flush=True)
    return 0


async def _bench(settings: Settings, args: argparse.Namespace, workdir: Path) -> dict:
    from ioc.demo import DemoProcesses, child_env, prepare
    from ioc.simulator import build_cameras

    rng = random.Random(7)
    plates = [_plate(rng) for _ in range(5000)]
    wanted = plates[:50]
    cameras = [(_camera(cp, cam), _checkpoint(cp)) for cp in range(1, CHECKPOINTS + 1)
               for cam in range(1, CAMERAS_PER_CHECKPOINT + 1)]
    cameras += [(c.camera_id, c.checkpoint_id) for c in build_cameras(settings.simulator_checkpoints)]
    await prepare(settings, [(p, "benchmark") for p in wanted], cameras)
    # frames first: a worker starting after the throughput phase recounts the last 15 minutes'
    # 200,000 rows (its start-up sweep), which took half a core from recognition
    frames = await _frames(settings, args, workdir) if args.frames else {}

    procs = DemoProcesses()
    procs.start("worker-1", [sys.executable, "-m", "ioc", "worker"], child_env(settings), workdir)
    try:
        await _wait_worker_ready(settings, rng, plates)
        # latency first: after the throughput burst the database stays busy for seconds
        # (counting and analysing the burst's rows), which is not the steady state the
        # latency is asked for (measured: 4-5 s until latency is back to normal after
        # 200,000 events in one burst)
        alerts = await _alert_latency(settings, args, rng, plates, wanted)
        _say(f"at {args.alert_rate:.0f} reads/s: store latency p50 {alerts['store_latency_p50_ms']:.0f} ms, "
             f"p99 {alerts['store_latency_p99_ms']:.0f} ms; {alerts['alerts']} alerts, latency p50 "
             f"{alerts['alert_latency_p50_ms']} ms, p99 {alerts['alert_latency_p99_ms']} ms; other alerts "
             f"{alerts['other_alerts'] or 'none'}")
        # the baselines read what the throughput phase sent, not the latency phase's reads
        since = await _end_offsets(settings)
        throughput = await _throughput(settings, args, rng, plates)
        _say(f"pipeline: {throughput['events_per_s']:,.0f} events/s")
    finally:
        procs.stop()
    baselines = await _baselines(settings, since)
    baseline = baselines["baseline_events_per_s"]
    _say(f"baseline (bare aiokafka + COPY into tables like the pipeline's): {baseline:,.0f} events/s")
    _say(f"baseline (bare aiokafka + COPY of three columns, no index): "
         f"{baselines['baseline_unindexed_events_per_s']:,.0f} events/s")
    return {
        **throughput,
        **baselines,
        "ratio": _ratio(throughput["events_per_s"], baseline),
        "ratio_unindexed": _ratio(throughput["events_per_s"], baselines["baseline_unindexed_events_per_s"]),
        **alerts,
        **frames,
    }


def _ratio(rate: float, baseline: float) -> float | None:
    return round(rate / baseline, 3) if baseline else None


def _say(line: str) -> None:
    print(line, flush=True)


def _plate(rng: random.Random) -> str:
    from detectors.plate_format import random_plate_text

    np_rng = np.random.default_rng(rng.randrange(2**32))
    return random_plate_text(np_rng, layout=rng.choice(["one_line", "motorbike"]), province=rng.choice(
        ["20", "20", "29", "30", "98"]))


def _camera(checkpoint: int, camera: int) -> str:
    return f"BENCH-CP{checkpoint:02d}-CAM{camera}"


def _checkpoint(checkpoint: int) -> str:
    return f"BENCH-CP{checkpoint:02d}"


def _edge(rng: random.Random, plate: str, captured_at: datetime) -> EdgePlateRead:
    cp = rng.randint(1, CHECKPOINTS)
    return EdgePlateRead(
        camera_id=_camera(cp, rng.randint(1, CAMERAS_PER_CHECKPOINT)), checkpoint_id=_checkpoint(cp),
        lane=rng.randrange(LANES), direction=rng.choice(list(Direction)), captured_at=captured_at,
        text=plate, confidence=0.95,
    )


def _sensor(rng: random.Random, captured_at: datetime) -> SensorReading:
    cp = rng.randint(1, CHECKPOINTS)
    return SensorReading(
        sensor_id=f"{_checkpoint(cp)}-LOOP", checkpoint_id=_checkpoint(cp),
        sensor_kind=SensorKind.VEHICLE_COUNT, captured_at=captured_at, value=rng.randint(0, 9),
        direction=rng.choice(list(Direction)),
    )


async def _producer(settings: Settings) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, linger_ms=5, acks="all",
        max_request_size=16 * 1024 * 1024, max_batch_size=1024 * 1024,
    )
    await producer.start()
    return producer


async def _wait_for_rows(settings: Settings, captured_at: datetime, events: int, timeout: float) -> float:
    """When ``events`` rows captured at ``captured_at`` are stored (plate reads and sensor
    readings together; each phase stamps its events with one moment of its own).

    Counting loads the database being measured: this counts only that moment's rows (in
    the captured-time indexes, not whole tables), from one connection (not a new one per
    count), rarely while much is left and every 0.1 s near the end, so the time found is
    at most that late.
    """
    from ioc.storage.database import connect

    started = time.monotonic()
    deadline = started + timeout
    first: tuple[float, int] | None = None
    async with await connect(settings.database_conninfo(), autocommit=True) as conn:
        while time.monotonic() < deadline:
            cur = await conn.execute(
                "SELECT (SELECT count(*) FROM plate_reads WHERE captured_at = %(at)s)"
                " + (SELECT count(*) FROM sensor_readings WHERE captured_at = %(at)s)", {"at": captured_at})
            have = (await cur.fetchone())[0]
            if have >= events:
                return time.monotonic()
            now = time.monotonic()
            first = first or (now, have)
            rate = (have - first[1]) / (now - first[0]) if now > first[0] else 0.0
            left_s = (events - have) / rate if rate > 0 else 0.0
            await asyncio.sleep(min(1.0, max(0.1, left_s / 2)))
    raise TimeoutError(f"pipeline did not store {events} events captured at {captured_at} in {timeout}s")


async def _wait_worker_ready(settings: Settings, rng: random.Random, plates: list[str]) -> None:
    producer = await _producer(settings)
    try:
        event = _edge(rng, plates[-1], utcnow())
        await producer.send_and_wait(settings.topics.edge_plate_reads, event.to_json(),
                                     key=event.camera_id.encode())
    finally:
        await producer.stop()
    await _wait_for_rows(settings, event.captured_at, 1, timeout=120)


async def _throughput(settings: Settings, args: argparse.Namespace, rng: random.Random,
                      plates: list[str]) -> dict:
    """Push ``--events`` events in envelopes, as fast as the producer goes."""
    t = settings.topics
    half = args.events // 2
    # the messages are built before the clock starts: the producer must not compete with
    # the worker for the CPU while it is being measured
    now = utcnow()
    messages = []
    for start in range(0, half, args.envelope):
        n = min(args.envelope, half - start)
        reads = EdgePlateReadBatch(reads=[_edge(rng, rng.choice(plates), now) for _ in range(n)])
        messages.append((t.edge_plate_reads, f"gw{start % 8}".encode(), reads.to_json()))
        readings = SensorReadingBatch(readings=[_sensor(rng, now) for _ in range(n)])
        messages.append((t.sensor_readings, f"gw{start % 8}".encode(), readings.to_json()))
    producer = await _producer(settings)
    started = time.monotonic()
    try:
        for topic, key, value in messages:
            await producer.send(topic, value, key=key)
        await producer.flush()
    finally:
        await producer.stop()
    produced_in = time.monotonic() - started
    done = await _wait_for_rows(settings, now, 2 * half, timeout=600)
    elapsed = done - started
    _say(f"produced {2 * half:,} events in {produced_in:.1f}s; all stored after {elapsed:.1f}s")
    return {"events": 2 * half, "events_per_s": round(2 * half / elapsed)}


async def _store_latency(settings: Settings, *, since: datetime) -> tuple[float, float]:
    from ioc.storage.database import connect

    conn = await connect(settings.database_conninfo())
    try:
        cur = await conn.execute(
            "SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP "
            "(ORDER BY extract(epoch FROM stored_at - captured_at)) FROM plate_reads "
            "WHERE camera_id LIKE 'BENCH-%%' AND captured_at >= %s", [since]
        )
        row = await cur.fetchone()
    finally:
        await conn.close()
    p50, p99 = row[0] if row and row[0] else (0.0, 0.0)
    return round(p50 * 1000, 1), round(p99 * 1000, 1)


async def _alert_latency(settings: Settings, args: argparse.Namespace, rng: random.Random,
                         plates: list[str], wanted: list[str]) -> dict:
    """Steady ``--alert-rate`` reads/s, 1 % watchlisted; capture -> alert on the topic."""
    t = settings.topics
    consumer = AIOKafkaConsumer(
        t.alerts, bootstrap_servers=settings.kafka_bootstrap, group_id=None,
        auto_offset_reset="latest", enable_auto_commit=False,
        fetch_max_wait_ms=50,  # the measuring consumer must not add a fetch wait of its own
    )
    await consumer.start()
    await consumer.seek_to_end()
    latencies: list[float] = []
    others: Counter[str] = Counter()  # camera-offline and flow alerts, reported apart
    stop = asyncio.Event()
    # measured from here: the first seconds at the rate only warm up (the worker is still
    # settling after the throughput phase's burst, which is not the steady state asked about)
    phase_start = utcnow() + timedelta(seconds=ALERT_WARM_UP_S)

    async def collect() -> None:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200)
            received = utcnow()
            for records in batch.values():
                for record in records:
                    alert = json.loads(record.value)
                    captured = newest_capture(alert)
                    if captured is None:
                        others[alert["alert_kind"]] += 1
                    elif captured >= phase_start:  # not a late alert of the throughput phase
                        latencies.append((received - captured).total_seconds() * 1000)

    collector = asyncio.create_task(collect())
    producer = await _producer(settings)
    try:
        started = time.monotonic()
        sent = 0
        while (elapsed := time.monotonic() - started) < ALERT_WARM_UP_S + args.alert_seconds:
            now = utcnow()
            # owed by the clock, not by loop turns: a turn takes longer than its sleep
            for _ in range(int(args.alert_rate * elapsed) - sent):
                plate = rng.choice(wanted) if rng.random() < 0.01 else rng.choice(plates)
                event = _edge(rng, plate, now)
                await producer.send(t.edge_plate_reads, event.to_json(), key=event.camera_id.encode())
                sent += 1
            await asyncio.sleep(0.01)
        await producer.flush()
        await asyncio.sleep(3.0)
    finally:
        stop.set()
        await collector
        await producer.stop()
        await consumer.stop()
    p50, p99 = await _store_latency(settings, since=phase_start)
    result = {"store_latency_p50_ms": p50, "store_latency_p99_ms": p99, "alerts": len(latencies),
              "other_alerts": dict(others)}
    if not latencies:
        return {**result, "alert_latency_p50_ms": None, "alert_latency_p99_ms": None}
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [latencies[0]] * 99
    return {
        **result,
        "alert_latency_p50_ms": round(statistics.median(latencies), 1),
        "alert_latency_p99_ms": round(q[98], 1),
    }


def newest_capture(alert: dict) -> datetime | None:
    """When the newest sighting of a watchlist alert (as JSON) was captured: an incident's
    alert is re-sent with each new sighting. None for camera-offline and flow alerts, which
    have no capture to measure from (a run once ended on one)."""
    if alert["alert_kind"] != AlertKind.WATCHLIST_HIT:
        return None
    route = alert["evidence"].get("route") or [alert]
    return max(datetime.fromisoformat(s["captured_at"]) for s in route)


# The bare loops write what each event carries; the pipeline also derives the display
# text, province, layout and ids, matches the watchlist and publishes plate reads.
_BARE_READ_COLUMNS = ("read_id", "captured_at", "camera_id", "checkpoint_id", "lane", "direction",
                      "text", "display", "confidence", "source", "source_event_id", "candidates",
                      "vehicle_class", "processed_at")
_BARE_SENSOR_COLUMNS = ("event_id", "captured_at", "sensor_id", "checkpoint_id", "sensor_kind",
                        "value", "unit", "direction", "vehicle_class")


async def _end_offsets(settings: Settings) -> dict[TopicPartition, int]:
    """Where the edge-read and sensor topics end now."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        t = settings.topics
        return await consumer.end_offsets([TopicPartition(topic, p) for topic in (t.edge_plate_reads,
                                           t.sensor_readings) for p in range(settings.topic_partitions)])
    finally:
        await consumer.stop()


async def _baselines(settings: Settings, since: dict[TopicPartition, int]) -> dict:
    """The throughput phase's messages (from ``since``) through two bare consume -> COPY loops.

    ``same_tables`` copies every event into tables shaped like the pipeline's (same
    columns, generated skeleton, indexes, hypertables): the least any program storing
    these events in this schema pays, so the ratio to it is the pipeline's own cost.
    ``unindexed`` copies three columns into an unindexed temporary table: Kafka and
    COPY alone.
    """
    same = await _bare_loop(settings, _SameTables(), since)
    unindexed = await _bare_loop(settings, _Unindexed(), since)
    return {"baseline_events_per_s": round(same), "baseline_unindexed_events_per_s": round(unindexed)}


class _Unindexed:
    async def prepare(self, conn: AsyncConnection) -> None:
        await conn.execute(
            "CREATE TEMP TABLE baseline_events (camera_id text, captured_at timestamptz, body text)"
        )

    async def store(self, conn: AsyncConnection, reads: list[dict], readings: list[dict]) -> None:
        async with conn.cursor() as cur, cur.copy(
            "COPY baseline_events (camera_id, captured_at, body) FROM STDIN"
        ) as copy:
            for item in reads:
                await copy.write_row((item["camera_id"], item["captured_at"], item["text"]))
            for item in readings:
                await copy.write_row((item["sensor_id"], item["captured_at"], None))


class _SameTables:
    schema = "bench_baseline"

    async def prepare(self, conn: AsyncConnection) -> None:
        await conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema)))
        await conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.schema)))
        timescale = (await detect_capabilities(conn)).timescaledb
        for table in ("plate_reads", "sensor_readings"):
            await conn.execute(sql.SQL("CREATE TABLE {} (LIKE public.{} INCLUDING ALL)").format(
                sql.Identifier(self.schema, table), sql.Identifier(table)))
            if timescale:  # the same chunk interval as the pipeline's hypertable
                dimension = await (await conn.execute(
                    "SELECT column_name, time_interval FROM timescaledb_information.dimensions"
                    " WHERE hypertable_schema = 'public' AND hypertable_name = %s", [table],
                )).fetchone()
                await create_hypertable(conn, f"{self.schema}.{table}", *dimension)
        await conn.commit()

    def _copy(self, table: str, columns: tuple[str, ...]) -> sql.Composed:
        return sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(self.schema, table), sql.SQL(", ").join(map(sql.Identifier, columns)))

    async def store(self, conn: AsyncConnection, reads: list[dict], readings: list[dict]) -> None:
        now = datetime.now(UTC)
        async with conn.cursor() as cur:
            async with cur.copy(self._copy("plate_reads", _BARE_READ_COLUMNS)) as copy:
                for i in reads:
                    await copy.write_row((
                        i["event_id"], i["captured_at"], i["camera_id"], i["checkpoint_id"], i.get("lane", 0),
                        i["direction"], i["text"], i["text"], i["confidence"], "edge", i["event_id"],
                        Jsonb(i.get("candidates", [])), i.get("vehicle_class", "unknown"), now,
                    ))
            async with cur.copy(self._copy("sensor_readings", _BARE_SENSOR_COLUMNS)) as copy:
                for i in readings:
                    await copy.write_row((
                        i["event_id"], i["captured_at"], i["sensor_id"], i["checkpoint_id"], i["sensor_kind"],
                        i["value"], i.get("unit", "count"), i.get("direction"), i.get("vehicle_class"),
                    ))


async def _bare_loop(settings: Settings, target: _SameTables | _Unindexed,
                     since: dict[TopicPartition, int]) -> float:
    """Consume from ``since``, COPY, commit, then commit the offsets."""
    from ioc.storage.database import connect

    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, group_id=f"baseline-{uuid.uuid4().hex[:6]}",
        enable_auto_commit=False, max_partition_fetch_bytes=16 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    conn = await connect(settings.database_conninfo())
    await target.prepare(conn)
    await consumer.start()
    consumer.assign(list(since))
    for partition, offset in since.items():
        consumer.seek(partition, offset)
    events, started, last = 0, None, None
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=1500, max_records=5000)
            if not batch:
                break  # the topics were fully written before this loop started
            started = started or time.monotonic()
            reads: list[dict] = []
            readings: list[dict] = []
            for records in batch.values():
                for record in records:
                    body = json.loads(record.value)
                    if "readings" in body or body.get("kind") == "sensor_reading":
                        readings += body.get("readings") or [body]
                    else:
                        reads += body.get("reads") or [body]
            await target.store(conn, reads, readings)
            await conn.commit()
            await consumer.commit()
            events += len(reads) + len(readings)
            last = time.monotonic()
    finally:
        await consumer.stop()
        await conn.close()
    elapsed = (last or 0) - (started or 0)
    return events / elapsed if elapsed > 0 else 0.0


async def _frames(settings: Settings, args: argparse.Namespace, workdir: Path) -> dict:
    """Frames/s with one and two worker processes (recognition-bound), one recognition
    thread each, and frames per CPU-second of the workers: the rate per busy core.

    Before the clock starts every worker has recognised a warm-up frame, so all have joined
    the consumer group, loaded their models and hold their partitions: with 100 frames the
    group's join (seconds on this broker) had been most of the measured time. The phase has
    topics and a consumer group of its own: the worker started after it, in the group these
    workers had just left, once never got its partitions (Tansu).
    """
    from ioc.demo import DemoProcesses, child_env
    from ioc.embedded.ports import free_port
    from ioc.simulator import TrafficSimulator
    from streams.topics import create_topics

    settings = settings.model_copy(update={"topic_prefix": f"{settings.topic_prefix}-frames",
                                           "consumer_group": f"{settings.consumer_group}-frames"})
    await asyncio.to_thread(create_topics, settings)
    sim = TrafficSimulator(settings, seed=11)
    cameras = [c for c in sim.cameras if not c.edge]
    frames = [sim.frame_event(sim.next_vehicle(), sim.rng.choice(cameras)) for _ in range(args.frames)]
    result: dict[str, float] = {}
    for workers in (1, 2):
        procs = DemoProcesses()
        env = dict(child_env(settings), IOC_RECOGNITION_THREADS="1")
        ports = [free_port() for _ in range(workers)]
        for i, port in enumerate(ports):
            procs.start(f"frames-worker-{workers}-{i}",
                        [sys.executable, "-m", "ioc", "worker", "--web-port", str(free_port()),
                         "--metrics-port", str(port)], env, workdir)
        metrics = _WorkerMetrics(settings, ports)
        try:
            await _warm_up_frames(settings, frames[0], metrics)
            before = await metrics.read()
            started, ticks_before = time.monotonic(), _machine_ticks()
            await _push_frames(settings, frames, metrics, sum(n for n, _ in before) + len(frames))
            elapsed, ticks = time.monotonic() - started, _machine_ticks()
            after = await metrics.read()
        finally:
            await metrics.aclose()
            procs.stop()
        per_s = len(frames) / elapsed
        cpu_s = sum(cpu for _, cpu in after) - sum(cpu for _, cpu in before)
        result[f"frames_per_s_{workers}_workers"] = round(per_s, 1)
        result[f"frames_per_cpu_s_{workers}_workers"] = round(len(frames) / cpu_s, 1) if cpu_s > 0 else 0.0
        busy_cores = _cores_busy(ticks_before, ticks)
        result[f"frames_cores_busy_{workers}_workers"] = round(busy_cores, 2)
        shares = "/".join(str(a - b) for (a, _), (b, _) in zip(after, before, strict=True))
        _say(f"frames: {per_s:.1f} frames/s with {workers} worker process(es) ({shares} frames), 1 thread "
             f"each; {result[f'frames_per_cpu_s_{workers}_workers']} frames per worker CPU-second; "
             f"workers {cpu_s / elapsed:.2f} and the whole machine {busy_cores:.2f} of "
             f"{os.cpu_count()} cores busy")
    result["frames_scaling"] = round(result["frames_per_s_2_workers"] / result["frames_per_s_1_workers"], 2)
    return result


def _machine_ticks() -> tuple[int, int]:
    """Clock ticks all cores of the machine have been busy, and in all, since boot (Linux
    ``/proc/stat``): what the broker, the database and this process took besides the workers."""
    fields = Path("/proc/stat").read_text().split()[1:9]  # the first line: all cores
    user, nice, system, idle, iowait, irq, softirq, steal = map(int, fields)
    busy = user + nice + system + irq + softirq + steal
    return busy, busy + idle + iowait


def _cores_busy(before: tuple[int, int], after: tuple[int, int]) -> float:
    """Cores busy on average between two readings, as a share of the same ticks: busy ticks
    over wall-clock time had read 2.01 of 2 cores on a short run (ticks are 10 ms)."""
    busy, total = after[0] - before[0], after[1] - before[1]
    return (os.cpu_count() or 1) * busy / total if total > 0 else 0.0


async def _warm_up_frames(settings: Settings, frame: CameraFrame, metrics: _WorkerMetrics) -> None:
    """Send a frame to every partition until each worker has recognised one and none is pending."""
    producer = await _producer(settings)
    sent = 0
    deadline, late = time.monotonic() + 180, "the frame workers did not all start within 180 s"
    try:
        while True:
            for partition in range(settings.topic_partitions):
                await producer.send(settings.topics.frames, _fresh(frame).to_json(), partition=partition)
                sent += 1
            await producer.flush()
            counters = await metrics.wait_for(sent, deadline, late)
            if all(n > 0 for n, _ in counters):
                return
    finally:
        await producer.stop()


async def _push_frames(
    settings: Settings, frames: list[CameraFrame], metrics: _WorkerMetrics, done: int
) -> None:
    """Send the frames and wait until the workers' counters reach ``done``."""
    producer = await _producer(settings)
    try:
        for frame in frames:
            await producer.send(settings.topics.frames, _fresh(frame).to_json(), key=frame.camera_id.encode())
        await producer.flush()
    finally:
        await producer.stop()
    await metrics.wait_for(done, time.monotonic() + 300, "frames were not all recognised within 300 s")


def _fresh(frame: CameraFrame) -> CameraFrame:
    """The frame as a new event captured now."""
    return frame.model_copy(update={"event_id": uuid.uuid4(), "captured_at": datetime.now(UTC)})


class _WorkerMetrics:
    """Each worker's frames recognised and CPU-seconds used, from its Prometheus metrics
    (0 for one not answering yet). Polled ten times a second, so cheaply: one client for all
    polls (a client per poll, its TLS context set up each time, cost this process a quarter
    of a core) and only these two metrics asked for (the whole page cost each worker 5 %)."""

    _NAMES = ("ioc_frames_processed_total", "process_cpu_seconds_total")

    def __init__(self, settings: Settings, ports: list[int]) -> None:
        import httpx

        self._urls = [f"http://{settings.worker_web_host}:{port}/metrics" for port in ports]
        self._client = httpx.AsyncClient(timeout=2)

    async def read(self) -> list[tuple[int, float]]:
        import httpx

        counters = []
        for url in self._urls:
            frames, cpu = 0, 0.0
            try:
                text = (await self._client.get(url, params={"name[]": self._NAMES})).text
            except httpx.HTTPError:
                text = ""
            for line in text.splitlines():
                if line.startswith("ioc_frames_processed_total "):
                    frames = int(float(line.split()[1]))
                elif line.startswith("process_cpu_seconds_total "):
                    cpu = float(line.split()[1])
            counters.append((frames, cpu))
        return counters

    async def wait_for(self, total: int, deadline: float, timeout_message: str) -> list[tuple[int, float]]:
        """Poll until the workers have recognised ``total`` frames together; their counters then.
        ``deadline`` is on the ``time.monotonic()`` clock."""
        while True:
            counters = await self.read()
            if sum(n for n, _ in counters) >= total:
                return counters
            if time.monotonic() > deadline:
                raise TimeoutError(timeout_message)
            await asyncio.sleep(0.1)

    async def aclose(self) -> None:
        await self._client.aclose()
