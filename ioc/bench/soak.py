"""``ioc bench soak``: the pipeline held at a fixed rate for minutes, watched as it ages.

Starts an embedded broker and database (always: the soak stays on loopback), one
``ioc worker`` process and, with ``--api``, one ``ioc api`` process read by one
resuming live-alert client. Produces edge plate reads (``--rate`` per second, 1 %
of them watchlisted) and sensor readings at a steady rate, in gateway envelopes,
and every ``--sample-seconds`` prints a table line: events produced and stored,
lag (produced - stored - dead-lettered), resident memory of the worker (and API),
store latency p50/p99 and alert latency p99 over that sample's window.

The verdict at the end: resident memory growth over the second half (linear fit,
MB/h and %/h), the lag's trend and final value, and the accounting once the
producer stopped and the pipeline drained: produced == stored + dead-lettered.
The last line of stdout is a JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import secrets
import signal
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import orjson
from aiokafka import AIOKafkaConsumer
from pydantic import SecretStr

from ioc.bench.pipeline import (
    CAMERAS_PER_CHECKPOINT,
    CHECKPOINTS,
    _camera,
    _checkpoint,
    _edge,
    _plate,
    _producer,
    _sensor,
    _wait_worker_ready,
)
from ioc.config import Settings, get_settings
from ioc.schemas import EdgePlateReadBatch, SensorReadingBatch, utcnow

if TYPE_CHECKING:
    from ioc.api.live_client import LiveAlertClient
    from ioc.demo import DemoProcesses

logger = logging.getLogger(__name__)

TICK_S = 0.01
WANTED = 50  # watchlisted plates among the 5,000 of the fleet
API_START_TIMEOUT_S = 60.0


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("soak", help="hold the pipeline at a fixed rate; watch memory, lag, latency")
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to produce (bounded)")
    parser.add_argument("--rate", type=float, default=1000.0, help="edge plate reads per second")
    parser.add_argument("--sensor-rate", type=float, default=None,
                        help="sensor readings per second (default: a fifth of --rate)")
    parser.add_argument("--envelope", type=int, default=10, help="most events per Kafka message (gateway)")
    parser.add_argument("--watchlisted", type=float, default=0.01, help="share of reads of wanted plates")
    parser.add_argument("--sample-seconds", type=float, default=10.0)
    parser.add_argument("--drain-seconds", type=float, default=120.0,
                        help="at most this long for the pipeline to store the last events")
    parser.add_argument("--api", action="store_true", help="also run `ioc api` with one live alert stream")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ioc.demo import embedded_services
    from ioc.embedded.ports import free_port

    if args.minutes <= 0 or args.rate <= 0 or args.envelope < 1:
        raise SystemExit("--minutes, --rate and --envelope must be positive")
    workdir = Path(".run/bench-soak")
    workdir.mkdir(parents=True, exist_ok=True)
    # embedded broker and database whatever the environment says: loopback only, thrown away after
    base = get_settings().model_copy(update={
        "kafka_bootstrap": None, "database_url": None, "topic_prefix": f"soak{uuid.uuid4().hex[:8]}",
        "api_host": "127.0.0.1", "api_port": free_port(), "worker_web_host": "127.0.0.1",
        "worker_web_port": free_port(), "worker_metrics_port": free_port(),
        "auth_secret": SecretStr(secrets.token_urlsafe(32)),
    })
    # SIGTERM takes Ctrl-C's path, so the worker, broker and database are stopped too
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with embedded_services(base, workdir) as settings:
        result = asyncio.run(_soak(settings, args, workdir))
    print(json.dumps(result), flush=True)
    return 0


# ---------- what is measured ----------

@dataclass
class Tally:
    """What the producer sent and what came back, shared by the soak's tasks."""

    produced: int = 0
    dead_lettered: int = 0
    alert_latencies: list[tuple[float, float]] = field(default_factory=list)  # (received at, ms)
    page_latencies: list[tuple[float, float]] = field(default_factory=list)
    page_alerts: int = 0


@dataclass(frozen=True)
class Sample:
    t_s: float
    produced: int
    stored: int
    dead_lettered: int
    worker_mb: float
    api_mb: float | None
    store_p50_ms: float | None
    store_p99_ms: float | None
    alert_p99_ms: float | None
    page_p99_ms: float | None

    @property
    def lag(self) -> int:
        return self.produced - self.stored - self.dead_lettered


@dataclass(frozen=True)
class Ending:
    """Figures taken once the producer stopped and the pipeline drained (or gave up)."""

    produced_for_s: float
    drained_s: float | None
    stored: int
    store_p50_ms: float | None
    store_p99_ms: float | None


def rss_mb(pid: int) -> float:
    """Resident memory of a process (Linux ``/proc``), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of ``(x, y)`` points (0 for fewer than two distinct x)."""
    if len({x for x, _ in points}) < 2:
        return 0.0
    mean_x = statistics.fmean(x for x, _ in points)
    mean_y = statistics.fmean(y for _, y in points)
    num = sum((x - mean_x) * (y - mean_y) for x, y in points)
    den = sum((x - mean_x) ** 2 for x, _ in points)
    return num / den


def _p(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1], 1)


# ---------- the run ----------

async def _soak(settings: Settings, args: argparse.Namespace, workdir: Path) -> dict:
    from ioc.demo import DemoProcesses, child_env, prepare

    rng = random.Random(17)
    plates = [_plate(rng) for _ in range(5000)]
    wanted = plates[:WANTED]
    cameras = [(_camera(cp, cam), _checkpoint(cp)) for cp in range(1, CHECKPOINTS + 1)
               for cam in range(1, CAMERAS_PER_CHECKPOINT + 1)]
    await prepare(settings, [(p, "soak") for p in wanted], cameras)
    sensor_rate = args.rate / 5 if args.sensor_rate is None else args.sensor_rate

    procs = DemoProcesses()
    procs.start("worker", [sys.executable, "-m", "ioc", "worker"], child_env(settings), workdir)
    tally = Tally()
    tasks: list[asyncio.Task] = []
    try:
        pids = {"worker": procs.children[0][1].pid}
        if args.api:
            procs.start("api", [sys.executable, "-m", "ioc", "api"], child_env(settings), workdir)
            pids["api"] = procs.children[1][1].pid
        await _wait_worker_ready(settings, rng, plates)
        baseline = await _stored(settings)
        started_at = utcnow()
        tasks.append(asyncio.create_task(_dead_letters(settings, tally)))
        tasks.append(asyncio.create_task(_alerts(settings, tally, since=started_at)))
        if args.api:
            from ioc.api.live_client import LiveAlertClient

            await _api_ready(settings, procs)
            page = LiveAlertClient(f"http://127.0.0.1:{settings.api_port}", await _api_token(settings))
            tasks.append(asyncio.create_task(_page(page, tally, since=started_at)))
            async with asyncio.timeout(30):  # its stream is open (it has a position) before the load starts
                while page.last_event_id is None:
                    await asyncio.sleep(0.05)
        _say(f"soak: {args.rate:,.0f} reads/s + {sensor_rate:,.0f} sensor readings/s for {args.minutes:g}"
             f" min, envelopes of up to {args.envelope}, samples every {args.sample_seconds:g} s")
        _say(_HEADER)
        producing = asyncio.create_task(_produce(settings, args, sensor_rate, rng, plates, wanted, tally))
        samples = await _sample_until(settings, args, producing, tally, pids, baseline, procs)
        produced_for_s = await producing
        drained_s = await _drain(settings, args, tally, baseline, procs)
        store_p50, store_p99 = await _store_latency(settings, since=started_at, until=utcnow())
        ending = Ending(produced_for_s=produced_for_s, drained_s=drained_s,
                        stored=await _stored(settings) - baseline,
                        store_p50_ms=store_p50, store_p99_ms=store_p99)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        procs.stop()
    return _verdict(args, sensor_rate, samples, tally, ending)


_HEADER = (f"{'t_s':>6} {'produced':>10} {'stored':>10} {'dead':>6} {'lag':>7} {'worker_MB':>9} "
           f"{'api_MB':>7} {'store_p50':>9} {'store_p99':>9} {'alert_p99':>9} {'page_p99':>8}")


def _line(s: Sample) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}"

    api = "-" if s.api_mb is None else f"{s.api_mb:.1f}"
    return (f"{s.t_s:>6.0f} {s.produced:>10,} {s.stored:>10,} {s.dead_lettered:>6,} {s.lag:>7,} "
            f"{s.worker_mb:>9.1f} {api:>7} {ms(s.store_p50_ms):>9} {ms(s.store_p99_ms):>9} "
            f"{ms(s.alert_p99_ms):>9} {ms(s.page_p99_ms):>8}")


def _say(line: str) -> None:
    print(line, flush=True)


async def _produce(settings: Settings, args: argparse.Namespace, sensor_rate: float, rng: random.Random,
                   plates: list[str], wanted: list[str], tally: Tally) -> float:
    """Reads and sensor readings at the set rates until ``--minutes`` are up; seconds it took."""
    t = settings.topics
    producer = await _producer(settings)
    started = time.monotonic()
    end = started + args.minutes * 60
    reads_sent = readings_sent = 0
    try:
        while (now := time.monotonic()) < end:
            elapsed = now - started
            captured = utcnow()
            reads = [_edge(rng, rng.choice(wanted) if rng.random() < args.watchlisted else rng.choice(plates),
                           captured) for _ in range(int(args.rate * elapsed) - reads_sent)]
            readings = [_sensor(rng, captured) for _ in range(int(sensor_rate * elapsed) - readings_sent)]
            for start in range(0, len(reads), args.envelope):
                chunk = reads[start:start + args.envelope]
                value = chunk[0].to_json() if len(chunk) == 1 else EdgePlateReadBatch(reads=chunk).to_json()
                await producer.send(t.edge_plate_reads, value, key=chunk[0].camera_id.encode())
            for start in range(0, len(readings), args.envelope):
                part = readings[start:start + args.envelope]
                value = part[0].to_json() if len(part) == 1 else SensorReadingBatch(readings=part).to_json()
                await producer.send(t.sensor_readings, value, key=part[0].sensor_id.encode())
            reads_sent += len(reads)
            readings_sent += len(readings)
            tally.produced += len(reads) + len(readings)
            await asyncio.sleep(TICK_S)
        await producer.flush()
    finally:
        await producer.stop()
    return time.monotonic() - started


async def _sample_until(settings: Settings, args: argparse.Namespace, producing: asyncio.Task, tally: Tally,
                        pids: dict[str, int], baseline: int, procs: DemoProcesses) -> list[Sample]:
    samples: list[Sample] = []
    started = time.monotonic()
    window_start = utcnow()
    while not producing.done():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(producing), args.sample_seconds)
        procs.check_alive()
        now, window_end = time.monotonic(), utcnow()
        stored = await _stored(settings) - baseline
        p50, p99 = await _store_latency(settings, since=window_start, until=window_end, by_stored=True)
        cutoff = now - args.sample_seconds
        sample = Sample(
            t_s=now - started, produced=tally.produced, stored=stored, dead_lettered=tally.dead_lettered,
            worker_mb=rss_mb(pids["worker"]), api_mb=rss_mb(pids["api"]) if "api" in pids else None,
            store_p50_ms=p50, store_p99_ms=p99,
            alert_p99_ms=_p([ms for at, ms in tally.alert_latencies if at >= cutoff], 0.99),
            page_p99_ms=_p([ms for at, ms in tally.page_latencies if at >= cutoff], 0.99) if "api" in pids
            else None,
        )
        samples.append(sample)
        _say(_line(sample))
        window_start = window_end
    return samples


async def _drain(settings: Settings, args: argparse.Namespace, tally: Tally, baseline: int,
                 procs: DemoProcesses) -> float | None:
    """Seconds until every produced event is stored or dead-lettered (None: it never was)."""
    started = time.monotonic()
    while time.monotonic() - started < args.drain_seconds:
        procs.check_alive()
        if await _stored(settings) - baseline + tally.dead_lettered >= tally.produced:
            return time.monotonic() - started
        await asyncio.sleep(1.0)
    return None


async def _stored(settings: Settings) -> int:
    from ioc.storage.database import table_counts

    rows = await table_counts(settings.database_conninfo(), ["plate_reads", "sensor_readings"])
    return rows["plate_reads"] + rows["sensor_readings"]


async def _store_latency(settings: Settings, *, since: datetime, until: datetime,
                         by_stored: bool = False) -> tuple[float | None, float | None]:
    """Capture -> row committed, p50 and p99 in ms, of the reads captured (or, ``by_stored``,
    committed) in ``[since, until)``."""
    from ioc.storage.database import connect

    if by_stored:  # the captured_at bound keeps the scan to recent chunks
        where = "captured_at >= %s - interval '10 minutes' AND stored_at >= %s AND stored_at < %s"
        params: list[object] = [since, since, until]
    else:
        where, params = "captured_at >= %s AND captured_at < %s", [since, until]
    async with await connect(settings.database_conninfo(), autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP "
            "(ORDER BY extract(epoch FROM stored_at - captured_at)) FROM plate_reads "
            f"WHERE camera_id LIKE 'BENCH-%%' AND {where}", params)
        row = await cur.fetchone()
    if not row or not row[0]:
        return None, None
    p50, p99 = row[0]
    return round(p50 * 1000, 1), round(p99 * 1000, 1)


def _alert_latency_ms(payload: bytes, received: datetime, since: datetime) -> float | None:
    """Capture of an alert's newest sighting -> now; None for alerts from before the soak."""
    alert = orjson.loads(payload)
    route = alert.get("evidence", {}).get("route") or [alert]
    captured = max(datetime.fromisoformat(s["captured_at"]) for s in route if s.get("captured_at"))
    return (received - captured).total_seconds() * 1000 if captured >= since else None


async def _alerts(settings: Settings, tally: Tally, *, since: datetime) -> None:
    """Alerts on the topic: capture -> alert published, as ``ioc bench pipeline`` measures it."""
    consumer = AIOKafkaConsumer(settings.topics.alerts, bootstrap_servers=settings.kafka_bootstrap,
                                group_id=None, auto_offset_reset="latest", enable_auto_commit=False,
                                fetch_max_wait_ms=50)
    await consumer.start()
    try:
        await consumer.seek_to_end()
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            received = datetime.now(UTC)
            for records in batch.values():
                for record in records:
                    ms = _alert_latency_ms(record.value, received, since) if record.value else None
                    if ms is not None:
                        tally.alert_latencies.append((time.monotonic(), ms))
    finally:
        await consumer.stop()


async def _dead_letters(settings: Settings, tally: Tally) -> None:
    """Events inside the dead-lettered messages (an envelope counts its events)."""
    from ioc.schemas import DeadLetter
    from ioc.topic_counts import events_in

    consumer = AIOKafkaConsumer(settings.topics.dead_letter, bootstrap_servers=settings.kafka_bootstrap,
                                group_id=None, auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                for record in records:
                    try:
                        tally.dead_lettered += events_in(DeadLetter.model_validate_json(record.value).payload)
                    except ValueError:  # a cut-off payload: one event at least
                        tally.dead_lettered += 1
    finally:
        await consumer.stop()


async def _api_token(settings: Settings) -> str:
    from ioc.api.security import Principal, issue_token
    from ioc.storage.users import ensure_user

    await ensure_user(settings.database_conninfo(), "soak-operator", "operator", secrets.token_urlsafe(16))
    return issue_token(Principal("soak-operator", "operator"), secret=settings.auth_secret.get_secret_value(),
                       ttl_s=int(timedelta(days=1).total_seconds()))


async def _api_ready(settings: Settings, procs: DemoProcesses) -> None:
    deadline = time.monotonic() + API_START_TIMEOUT_S
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.api_port}", timeout=2) as client:
        while time.monotonic() < deadline:
            procs.check_alive()
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/healthz")).json().get("live_alerts") == "ok":
                    return
            await asyncio.sleep(0.2)
    raise TimeoutError(f"ioc api not ready in {API_START_TIMEOUT_S:.0f}s")


async def _page(client: LiveAlertClient, tally: Tally, *, since: datetime) -> None:
    """One operator page's live stream: capture -> alert on the page."""
    async for event in client.events():
        if event.event != "alert":
            continue
        tally.page_alerts += 1
        ms = _alert_latency_ms(event.data.encode(), datetime.now(UTC), since)
        if ms is not None:
            tally.page_latencies.append((time.monotonic(), ms))


# ---------- verdict ----------

def _verdict(args: argparse.Namespace, sensor_rate: float, samples: list[Sample], tally: Tally,
             ending: Ending) -> dict:
    stored, drained_s = ending.stored, ending.drained_s
    second_half = [s for s in samples if s.t_s >= samples[-1].t_s / 2] if samples else []
    if len(second_half) < 2:
        second_half = samples
    worker_slope_h = slope([(s.t_s, s.worker_mb) for s in second_half]) * 3600
    lag_slope_min = slope([(s.t_s, s.lag) for s in second_half]) * 60
    rss_mean = statistics.fmean(s.worker_mb for s in second_half) if second_half else 0.0
    half_span_h = (second_half[-1].t_s - second_half[0].t_s) / 3600 if second_half else 0.0
    lost = tally.produced - stored - tally.dead_lettered
    result: dict = {
        "minutes": args.minutes,
        "rate": args.rate,
        "sensor_rate": sensor_rate,
        "envelope": args.envelope,
        "rate_achieved": round(tally.produced / ending.produced_for_s, 1),
        "samples": len(samples),
        "rss_start_mb": round(samples[0].worker_mb, 1) if samples else None,
        "rss_end_mb": round(samples[-1].worker_mb, 1) if samples else None,
        "rss_slope_mb_per_h": round(worker_slope_h, 1),
        "rss_growth_second_half_mb": round(worker_slope_h * half_span_h, 1),
        "rss_growth_pct_per_h": round(100 * worker_slope_h / rss_mean, 1) if rss_mean else None,
        "lag_final": samples[-1].lag if samples else None,
        "lag_max": max((s.lag for s in samples), default=None),
        "lag_slope_per_min": round(lag_slope_min, 1),
        "store_p50_ms": ending.store_p50_ms,
        "store_p99_ms": ending.store_p99_ms,
        "alert_p99_ms": _p([ms for _, ms in tally.alert_latencies], 0.99),
        "alerts": len(tally.alert_latencies),
        "produced": tally.produced,
        "stored": stored,
        "dead_lettered": tally.dead_lettered,
        "lost": lost,
        "drained_s": round(drained_s, 1) if drained_s is not None else None,
    }
    if args.api:
        api_half = [(s.t_s, s.api_mb) for s in second_half if s.api_mb is not None]
        result.update({
            "api_rss_start_mb": round(samples[0].api_mb or 0, 1) if samples else None,
            "api_rss_end_mb": round(samples[-1].api_mb or 0, 1) if samples else None,
            "api_rss_slope_mb_per_h": round(slope(api_half) * 3600, 1),
            "page_alerts": tally.page_alerts,
            "page_p99_ms": _p([ms for _, ms in tally.page_latencies], 0.99),
        })
    _say("")
    _say(f"memory: worker {result['rss_start_mb']} -> {result['rss_end_mb']} MB; second half "
         f"{result['rss_slope_mb_per_h']:+} MB/h ({result['rss_growth_pct_per_h']} %/h), "
         f"{result['rss_growth_second_half_mb']:+} MB over it")
    if args.api:
        _say(f"memory: api {result['api_rss_start_mb']} -> {result['api_rss_end_mb']} MB; second half "
             f"{result['api_rss_slope_mb_per_h']:+} MB/h")
    _say(f"lag: final {result['lag_final']}, max {result['lag_max']}, second half "
         f"{result['lag_slope_per_min']:+} events/min")
    _say(f"latency: store p50 {ending.store_p50_ms} / p99 {ending.store_p99_ms} ms;"
         f" alert p99 {result['alert_p99_ms']} ms"
         + (f"; page p99 {result['page_p99_ms']} ms" if args.api else ""))
    drained = f"drained in {drained_s:.1f} s" if drained_s is not None else "NOT drained"
    _say(f"accounting: produced {tally.produced:,} = stored {stored:,} + dead-lettered "
         f"{tally.dead_lettered:,} + lost {lost:,} ({drained})")
    return result
