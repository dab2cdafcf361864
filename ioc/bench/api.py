"""``ioc bench api``: plate look-ups over HTTP against a database of N plate reads.

1. loads N reads (default 10 million) with COPY into the configured database, or
   into an embedded one (TimescaleDB when available), spread over ``--days`` days,
   about 20 sightings per vehicle, plus a watchlist of 2,000 entries;
2. starts ``ioc api`` as its own process and measures, with concurrent HTTP
   clients (aiohttp, keep-alive), the latency of exact, fuzzy (look-alike),
   partial (``*`` / ``?``) look-ups and "is it wanted?" checks, each audited as
   in production: first with 8 clients back to back (the server saturated), then
   arriving at a steady ``--paced-rate`` (the latency an officer sees at that load);
   then the look-ups per second of a mixed load;
3. measures alert latency: alerts produced to the alerts topic until they
   arrive on an open server-sent-events stream.

The last line of stdout is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import random
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from pydantic import SecretStr

from ioc.config import Settings, get_settings

logger = logging.getLogger(__name__)

ROWS_PER_TRANSACTION = 200_000
SIGHTINGS_PER_VEHICLE = 20
WATCHLIST_SIZE = 2_000
CHECKPOINTS = 12
_LOOKALIKE = {"0": "O", "1": "I", "2": "Z", "4": "A", "5": "S", "6": "G", "8": "B",
              "O": "0", "D": "0", "I": "1", "Z": "2", "A": "4", "S": "5", "G": "6", "B": "8"}
_EMBEDDED_PG_SETTINGS = {"shared_buffers": "512MB", "work_mem": "16MB", "max_wal_size": "8GB",
                         "checkpoint_timeout": "30min", "maintenance_work_mem": "256MB"}


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("api", help="HTTP plate look-up benchmark (loads N plate reads)")
    parser.add_argument("--rows", type=int, default=10_000_000, help="plate reads to load")
    parser.add_argument("--days", type=int, default=14, help="days the reads are spread over")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients in the latency phases")
    parser.add_argument("--throughput-clients", type=int, default=32, help="concurrent clients, mixed phase")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of each phase")
    parser.add_argument("--paced-rate", type=float, default=100.0,
                        help="requests/s arriving independently in the paced latency phases (0: skip)")
    parser.add_argument("--api-workers", type=int, default=1, help="`ioc api --workers` (processes)")
    parser.add_argument("--alerts", type=int, default=200, help="alerts timed from topic to page (0: skip)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        import uvloop

        runner: Callable = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency
        runner = asyncio.run
    workdir = Path(".run/bench-api")
    workdir.mkdir(parents=True, exist_ok=True)
    base = get_settings().model_copy(update={"topic_prefix": f"bench{uuid.uuid4().hex[:8]}"})
    with _services(base, workdir, alerts=args.alerts > 0) as settings:
        result = runner(_bench(settings, args, workdir))
    print(json.dumps(result), flush=True)
    return 0


@contextlib.contextmanager
def _services(settings: Settings, workdir: Path, *, alerts: bool) -> Iterator[Settings]:
    """Embedded PostgreSQL (tuned for a bulk load) and broker where none is configured."""
    from ioc.embedded.broker import EmbeddedBroker
    from ioc.embedded.postgres import EmbeddedPostgres

    with contextlib.ExitStack() as stack:
        updates: dict[str, object] = {}
        if settings.database_url is None:
            pg = stack.enter_context(EmbeddedPostgres(settings=_EMBEDDED_PG_SETTINGS))
            updates["database_url"] = SecretStr(pg.url)
            logger.info("embedded PostgreSQL (TimescaleDB: %s)", pg.has_timescale)
        if alerts and not settings.kafka_bootstrap:
            broker = stack.enter_context(EmbeddedBroker(log_dir=workdir))
            updates["kafka_bootstrap"] = broker.bootstrap
        if settings.auth_secret.get_secret_value() == "dev-secret":
            updates["auth_secret"] = SecretStr(secrets.token_urlsafe(32))
        yield settings.model_copy(update=updates)


# ---------- data ----------

@dataclass
class Fleet:
    plates: list[str]
    displays: dict[str, str]
    watched: list[str] = field(default_factory=list)


def _fleet(rows: int, rng: random.Random) -> Fleet:
    from detectors.plate_format import display, random_plate_text

    wanted = max(1, rows // SIGHTINGS_PER_VEHICLE)
    plates: set[str] = set()
    while len(plates) < wanted:
        layout = "motorbike" if rng.random() < 0.35 else "one_line"
        plates.add(random_plate_text(rng, layout=layout))
    ordered = sorted(plates)
    rng.shuffle(ordered)
    return Fleet(ordered, {p: display(p) for p in ordered})


def _rows(fleet: Fleet, count: int, *, days: int, home: str, rng: random.Random) -> Iterator[tuple]:
    """Plate-read rows in ``bulk_load.BULK_READ_COLUMNS`` order (vehicles seen ~20 times)."""
    now = datetime.now(UTC)
    span = days * 86_400
    start = now - timedelta(seconds=span)
    getrandbits, randrange, random_ = rng.getrandbits, rng.randrange, rng.random
    plates, displays = fleet.plates, fleet.displays
    cameras = [(f"BENCH-CP{c:02d}-CAM{lane}", f"BENCH-CP{c:02d}", lane)
               for c in range(1, CHECKPOINTS + 1) for lane in (1, 2)]
    for _ in range(count):
        plate = plates[randrange(len(plates))]
        camera, checkpoint, lane = cameras[randrange(len(cameras))]
        captured = start + timedelta(seconds=random_() * span)
        province = plate[:2]
        yield (
            uuid.UUID(int=getrandbits(128), version=4), captured, camera, checkpoint, lane,
            "in" if random_() < 0.5 else "out", plate, displays[plate], 0.6 + 0.4 * random_(), province,
            province != home, "edge", uuid.UUID(int=getrandbits(128), version=4), "car", captured,
        )


async def _load(settings: Settings, fleet: Fleet, rows: int, days: int, rng: random.Random) -> float:
    from ioc.storage.bulk_load import analyze_plate_reads, copy_plate_reads
    from ioc.storage.database import connect
    from ioc.storage.migrations import migrate
    from ioc.storage.partitions import ensure_partitions

    conninfo = settings.database_conninfo()
    await migrate(conninfo)
    started = time.perf_counter()
    async with await connect(conninfo) as conn:
        now = datetime.now(UTC)
        await ensure_partitions(conn, now + timedelta(days=1), since=now - timedelta(days=days + 1))
        await conn.commit()
        generator = _rows(fleet, rows, days=days, home=settings.home_province, rng=rng)
        loaded = 0
        while loaded < rows:
            batch = min(ROWS_PER_TRANSACTION, rows - loaded)
            loaded += await copy_plate_reads(conn, (next(generator) for _ in range(batch)))
            await conn.commit()
            logger.info("loaded %d / %d reads (%.0f rows/s)", loaded, rows,
                        loaded / (time.perf_counter() - started))
        await analyze_plate_reads(conn)
        await conn.commit()
    return time.perf_counter() - started


async def _watchlist(settings: Settings, fleet: Fleet, rng: random.Random) -> None:
    from ioc.schemas import WatchlistEntry
    from ioc.storage.database import connect
    from ioc.storage.watchlist import add_entry

    fleet.watched = rng.sample(fleet.plates, min(WATCHLIST_SIZE - 100, len(fleet.plates)))
    patterns = [p[:5] + "*" for p in rng.sample(fleet.plates, min(100, len(fleet.plates)))]
    async with await connect(settings.database_conninfo()) as conn:
        for pattern in fleet.watched + patterns:
            entry = WatchlistEntry(pattern=pattern, reason="benchmark", priority=rng.randint(1, 5),
                                   added_by="bench")
            await add_entry(conn, entry)
        await conn.commit()


# ---------- queries ----------

def _lookalike(plate: str, rng: random.Random) -> str:
    positions = [i for i, ch in enumerate(plate) if ch in _LOOKALIKE]
    if not positions:
        return plate
    i = rng.choice(positions)
    return plate[:i] + _LOOKALIKE[plate[i]] + plate[i + 1:]


QueryMaker = Callable[[random.Random], tuple[str, dict[str, str]]]


def _query_makers(fleet: Fleet) -> dict[str, QueryMaker]:
    purpose = "benchmark case 1/2026"

    def sightings(plate: str, **extra: str) -> tuple[str, dict[str, str]]:
        return "/api/plates/sightings", {"plate": plate, "purpose": purpose, **extra}

    def partial(rng: random.Random) -> tuple[str, dict[str, str]]:
        plate = rng.choice(fleet.plates)
        if rng.random() < 0.5:
            return sightings(plate[:-2] + "*")          # last characters unknown
        i = rng.randrange(3, len(plate))
        return sightings(plate[:i] + "?" + plate[i + 1:])  # one character unknown

    def wanted(rng: random.Random) -> tuple[str, dict[str, str]]:
        plate = rng.choice(fleet.watched) if rng.random() < 0.1 else rng.choice(fleet.plates)
        return "/api/plates/wanted", {"plate": plate, "purpose": purpose}

    return {
        "exact": lambda rng: sightings(rng.choice(fleet.plates)),
        "fuzzy": lambda rng: sightings(_lookalike(rng.choice(fleet.plates), rng), fuzzy="true"),
        "partial": partial,
        "partial_suffix": lambda rng: sightings("*" + rng.choice(fleet.plates)[-5:]),
        "watchlist": wanted,
    }


@dataclass
class PhaseResult:
    latencies: list[float]
    errors: int
    seconds: float

    def percentile_ms(self, q: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    @property
    def per_second(self) -> float:
        return round(len(self.latencies) / self.seconds, 1) if self.seconds else 0.0


async def _phase(
    client: aiohttp.ClientSession, makers: list[QueryMaker], *, clients: int, seconds: float, seed: int
) -> PhaseResult:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(index: int) -> None:
        nonlocal errors
        rng = random.Random(seed * 1000 + index)
        while time.perf_counter() < deadline:
            path, params = rng.choice(makers)(rng)
            started = time.perf_counter()
            try:
                async with client.get(path, params=params) as response:
                    await response.read()
                    ok = response.status == 200
            except (aiohttp.ClientError, TimeoutError):  # counted, and the phase goes on
                ok = False
            if ok:
                latencies.append(time.perf_counter() - started)
            else:
                errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(clients)))
    return PhaseResult(latencies, errors, time.perf_counter() - started)


async def _paced_phase(
    client: aiohttp.ClientSession, maker: QueryMaker, *, rate: float, seconds: float, seed: int
) -> PhaseResult:
    """Requests arriving at ``rate`` per second (Poisson), whatever the answers' speed: the
    latency a handheld sees at that load. Timed from each request's scheduled start, so a
    stalled server is charged for the requests that queued behind it."""
    rng = random.Random(seed)
    latencies: list[float] = []
    errors = 0

    async def one(path: str, params: dict[str, str], due: float) -> None:
        nonlocal errors
        try:
            async with client.get(path, params=params) as response:
                await response.read()
                ok = response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            ok = False
        if ok:
            latencies.append(time.perf_counter() - due)
        else:
            errors += 1

    started = due = time.perf_counter()
    tasks = []
    while due < started + seconds:
        due += rng.expovariate(rate)
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        path, params = maker(rng)
        tasks.append(asyncio.create_task(one(path, params, due)))
    await asyncio.gather(*tasks)
    return PhaseResult(latencies, errors, time.perf_counter() - started)


# ---------- the API process ----------

@contextlib.asynccontextmanager
async def _api_process(settings: Settings, workdir: Path, workers: int) -> AsyncIterator[str]:
    from ioc.demo import child_env
    from ioc.embedded.ports import free_port

    port = free_port()
    env = child_env(settings)
    if not settings.kafka_bootstrap:
        env.pop("IOC_KAFKA_BOOTSTRAP", None)
    env["IOC_API_PORT"] = str(port)
    env["IOC_DATABASE_POOL_SIZE"] = str(max(settings.database_pool_size, 16))
    url = f"http://127.0.0.1:{port}"
    with open(workdir / "api.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "ioc", "api", "--port", str(port), "--workers",
                                 str(workers)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        async with aiohttp.ClientSession(base_url=url) as client:
            for _ in range(300):
                if proc.poll() is not None:
                    raise RuntimeError(f"ioc api exited with {proc.returncode}; see {workdir}/api.log")
                with contextlib.suppress(aiohttp.ClientError):
                    async with client.get("/healthz") as response:
                        if response.status == 200:
                            break
                await asyncio.sleep(0.1)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _alert_latency(settings: Settings, url: str, token: str, count: int) -> list[float]:
    """Seconds from producing each alert to reading it from the live stream."""
    from aiokafka import AIOKafkaProducer

    from ioc.schemas import Alert, AlertKind, Severity

    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=0)
    await producer.start()
    sent: dict[str, float] = {}
    latencies: list[float] = []
    try:
        headers = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(base_url=url, headers=headers) as client, \
                client.get("/api/alerts/stream", timeout=aiohttp.ClientTimeout(total=None)) as stream:
            await asyncio.sleep(1.0)  # the stream is subscribed before the first alert
            for i in range(count):
                alert = Alert(alert_id=uuid.uuid4(), alert_kind=AlertKind.WATCHLIST_HIT,
                              severity=Severity.CRITICAL, subject=f"30A{i:05d}", checkpoint_id="BENCH-CP01",
                              evidence={"reason": "benchmark", "priority": 1, "match_kind": "exact"})
                sent[str(alert.alert_id)] = time.perf_counter()
                await producer.send_and_wait(settings.topics.alerts, alert.to_json(),
                                             key=alert.subject.encode())
                while True:
                    line = (await asyncio.wait_for(stream.content.readline(), 10)).decode()
                    if line.startswith("data:"):
                        received = json.loads(line[5:])
                        if received["alert_id"] in sent:
                            latencies.append(time.perf_counter() - sent.pop(received["alert_id"]))
                            break
                await asyncio.sleep(0.05)
    finally:
        await producer.stop()
    return latencies


async def _bench(settings: Settings, args: argparse.Namespace, workdir: Path) -> dict:
    from ioc.api.security import Principal, issue_token
    from ioc.storage.database import connect, detect_capabilities
    from ioc.storage.users import ensure_user
    from streams.topics import create_topics

    rng = random.Random(11)
    fleet = _fleet(args.rows, rng)
    logger.info("%d vehicles, %d reads over %d days", len(fleet.plates), args.rows, args.days)
    load_s = await _load(settings, fleet, args.rows, args.days, rng)
    await _watchlist(settings, fleet, rng)
    async with await connect(settings.database_conninfo()) as conn:
        layout = (await detect_capabilities(conn)).layout
    await ensure_user(settings.database_conninfo(), "bench-officer", "officer", secrets.token_urlsafe(16))
    token = issue_token(Principal("bench-officer", "officer"), secret=settings.auth_secret.get_secret_value(),
                        ttl_s=3600)
    if settings.kafka_bootstrap:
        await asyncio.to_thread(create_topics, settings)

    result: dict = {"rows": args.rows, "layout": layout, "load_s": round(load_s, 1),
                    "clients": args.clients, "throughput_clients": args.throughput_clients,
                    "paced_rate": args.paced_rate,
                    "api_workers": args.api_workers,
                    "cpus": os.cpu_count()}
    async with _api_process(settings, workdir, args.api_workers) as url:
        connections = max(args.clients, args.throughput_clients)
        async with aiohttp.ClientSession(
            base_url=url, headers={"Authorization": f"Bearer {token}"},
            connector=aiohttp.TCPConnector(limit=connections), timeout=aiohttp.ClientTimeout(total=30),
        ) as client:
            makers = _query_makers(fleet)
            await _phase(client, [makers["exact"]], clients=args.clients, seconds=2.0, seed=0)  # warm-up
            for seed, (name, maker) in enumerate(makers.items(), start=1):
                phase = await _phase(client, [maker], clients=args.clients, seconds=args.seconds, seed=seed)
                result[f"{name}_p50_ms"] = phase.percentile_ms(0.50)
                result[f"{name}_p99_ms"] = phase.percentile_ms(0.99)
                result[f"{name}_per_s"] = phase.per_second
                result[f"{name}_errors"] = phase.errors
                logger.info("%s: p50 %s ms, p99 %s ms, %s/s, %d errors", name, result[f"{name}_p50_ms"],
                            result[f"{name}_p99_ms"], phase.per_second, phase.errors)
            if args.paced_rate:
                for seed, name in enumerate(("exact", "fuzzy", "partial", "watchlist"), start=50):
                    phase = await _paced_phase(client, makers[name], rate=args.paced_rate,
                                               seconds=args.seconds, seed=seed)
                    result[f"paced_{name}_p50_ms"] = phase.percentile_ms(0.50)
                    result[f"paced_{name}_p99_ms"] = phase.percentile_ms(0.99)
                    result[f"paced_{name}_errors"] = phase.errors
                    logger.info("%s at %.0f/s: p50 %s ms, p99 %s ms, %d errors", name, args.paced_rate,
                                result[f"paced_{name}_p50_ms"], result[f"paced_{name}_p99_ms"], phase.errors)
            mix = [makers["exact"]] * 7 + [makers["fuzzy"], makers["partial"], makers["watchlist"]]
            mixed = await _phase(client, mix, clients=args.throughput_clients, seconds=args.seconds, seed=99)
            result["lookups_per_s"] = mixed.per_second
            result["mixed_p99_ms"] = mixed.percentile_ms(0.99)
            result["mixed_errors"] = mixed.errors
        if args.alerts and settings.kafka_bootstrap:
            latencies = await _alert_latency(settings, url, token, args.alerts)
            alerts = PhaseResult(latencies, args.alerts - len(latencies), 1.0)
            result["alert_sse_p50_ms"] = alerts.percentile_ms(0.50)
            result["alert_sse_p99_ms"] = alerts.percentile_ms(0.99)
    result["exact_p99_ms"] = result.pop("exact_p99_ms")  # the headline keys, easy to find
    result["fuzzy_p99_ms"] = result.pop("fuzzy_p99_ms")
    result["partial_p99_ms"] = result.pop("partial_p99_ms")
    result["watchlist_p99_ms"] = result.pop("watchlist_p99_ms")
    result["lookups_per_s"] = result.pop("lookups_per_s")
    return result
