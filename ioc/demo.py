"""``ioc demo``: the whole system on one machine, on real components.

Starts what is not configured (a Tansu Kafka-protocol broker, a throwaway
PostgreSQL with TimescaleDB when the server has it), migrates, creates topics,
seeds a watchlist, then runs worker(s), the API and the simulator as child
processes. Ctrl-C (or ``--duration``) stops everything by PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from ioc.config import Settings, get_settings

logger = logging.getLogger(__name__)

DRAIN_TIMEOUT_S = 60.0
CAMERA_INTERVAL_S = 60.0
API_START_TIMEOUT_S = 60.0


@dataclass
class DemoProcesses:
    """Child processes started by the demo, stopped in reverse order."""

    children: list[tuple[str, subprocess.Popen]] = field(default_factory=list)

    def start(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        log = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.children.append((name, proc))
        logger.info("started %s (pid %d), log %s", name, proc.pid, log.name)

    def check_alive(self) -> None:
        for name, proc in self.children:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited early with status {proc.returncode}")

    def wait_until_serving(self, url: str, timeout: float = API_START_TIMEOUT_S) -> None:
        """Wait until ``url`` answers, so the address printed next works when it is opened (the
        API takes seconds to import and start on a loaded machine); every child is checked meanwhile."""
        import httpx

        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            try:
                if httpx.get(url, timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")
            time.sleep(0.25)

    def stop(self, timeout: float = 20.0) -> None:
        for _name, proc in reversed(self.children):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name, proc in reversed(self.children):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.warning("%s (pid %d) did not stop; killing", name, proc.pid)
                proc.kill()
                proc.wait()
        self.children.clear()


@contextlib.contextmanager
def embedded_services(settings: Settings, workdir: Path) -> Iterator[Settings]:
    """Fill in broker and database with embedded ones where not configured."""
    from ioc.embedded.broker import EmbeddedBroker
    from ioc.embedded.postgres import EmbeddedPostgres

    with contextlib.ExitStack() as stack:
        updates: dict[str, object] = {}
        if not settings.kafka_bootstrap:
            broker = stack.enter_context(EmbeddedBroker(log_dir=workdir))
            updates["kafka_bootstrap"] = broker.bootstrap
            logger.info("embedded Kafka-protocol broker at %s", broker.bootstrap)
        if settings.database_url is None:
            pg = stack.enter_context(EmbeddedPostgres())
            updates["database_url"] = SecretStr(pg.url)
            logger.info("embedded PostgreSQL (TimescaleDB: %s)", pg.has_timescale)
        yield settings.model_copy(update=updates) if updates else settings


def child_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process exactly these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        elif isinstance(value, list | dict):
            value = json.dumps(value)
        env[f"IOC_{name.upper()}"] = str(value)
    return env


async def prepare(
    settings: Settings, watchlist: list[tuple[str, str]], cameras: list[tuple[str, str]]
) -> None:
    """Migrate, create topics, register cameras ``(camera_id, checkpoint_id)`` and seed
    the watchlist in the database and on its topic."""
    from ioc.storage.cameras import upsert_camera
    from ioc.storage.database import connect
    from ioc.storage.migrations import migrate
    from ioc.watchlist_sync import seed_watchlist
    from streams.topics import create_topics

    applied = await migrate(settings.database_conninfo())
    logger.info("migrations applied: %s", applied or "none (up to date)")
    conn = await connect(settings.database_conninfo())
    try:
        for camera_id, checkpoint_id in cameras:
            await upsert_camera(conn, camera_id, checkpoint_id, expected_interval_s=CAMERA_INTERVAL_S)
        await conn.commit()
    finally:
        await conn.close()
    await asyncio.to_thread(create_topics, settings)
    await seed_watchlist(settings, watchlist)


async def summary(settings: Settings) -> dict:
    """Figures counted from the database and the topics, not from the simulator."""
    from ioc.storage.database import table_counts
    from ioc.topic_counts import count_messages

    t = settings.topics
    topics = await count_messages(settings, [t.frames, t.plate_reads, t.alerts, t.dead_letter],
                                  batched=frozenset({t.plate_reads}))
    rows = await table_counts(
        settings.database_conninfo(),
        ["plate_reads", "checkpoint_counts", "sensor_readings", "alerts", "passages"],
    )
    return {
        "frames": topics[t.frames],
        "plate_reads": topics[t.plate_reads],
        "alerts": topics[t.alerts],
        "dead_letters": topics[t.dead_letter],
        "rows": rows,
    }


async def wait_until_drained(settings: Settings, timeout: float = DRAIN_TIMEOUT_S) -> None:
    """Wait until every plate read on the topic is in the database (or timeout)."""
    from ioc.storage.database import table_counts
    from ioc.topic_counts import count_messages

    deadline = time.monotonic() + timeout
    topic = settings.topics.plate_reads
    while time.monotonic() < deadline:
        produced = (await count_messages(settings, [topic], batched=frozenset({topic})))[topic]
        stored = (await table_counts(settings.database_conninfo(), ["plate_reads"]))["plate_reads"]
        if produced == stored:
            return
        await asyncio.sleep(2.0)
    logger.warning("pipeline did not drain within %.0fs", timeout)


def run_demo(
    *, duration: float | None, workers: int = 1, seed: int | None = None, configured_services: bool = False
) -> int:
    from ioc.simulator import TrafficSimulator

    base = get_settings()
    if refusal := _refusal(base, configured_services):
        print(f"ioc demo: {refusal}", file=sys.stderr)
        return 2
    for stop in (signal.SIGTERM, signal.SIGHUP):  # as Ctrl-C: the children and services are stopped
        signal.signal(stop, _interrupt)
    workdir = Path(".run/demo")
    workdir.mkdir(parents=True, exist_ok=True)
    if base.auth_secret.get_secret_value() == "dev-secret":
        base = base.model_copy(update={"auth_secret": _random_secret()})
    with embedded_services(base, workdir) as settings:
        simulator = TrafficSimulator(settings, seed=seed)
        watchlist = [(v.plate, "Demo: stolen vehicle report") for v in simulator.watchlisted]
        cameras = [(c.camera_id, c.checkpoint_id) for c in simulator.cameras]
        asyncio.run(prepare(settings, watchlist, cameras))
        password = _demo_user(settings)

        procs = DemoProcesses()
        env = child_env(settings)
        ioc_cmd = [sys.executable, "-m", "ioc"]
        try:
            for i, metrics_port in enumerate(_worker_metrics_ports(settings, workers)):
                procs.start(
                    f"worker-{i + 1}",
                    [*ioc_cmd, "worker", "--web-port", str(settings.worker_web_port + i),
                     "--metrics-port", str(metrics_port)],
                    env, workdir,
                )
            procs.start("api", [*ioc_cmd, "api"], env, workdir)
            url = f"http://{settings.api_host}:{settings.api_port}"
            procs.wait_until_serving(f"{url}/livez")
            print(f"Operator page:  {url}/   (user: operator, password: {password})", flush=True)
            print(f"API (OpenAPI):  {url}/docs", flush=True)
            metrics_port = settings.api_metrics_port or settings.api_port
            print(f"Metrics:        http://{settings.api_host}:{metrics_port}/metrics  worker: "
                  f"http://{settings.worker_web_host}:{settings.worker_metrics_port}/metrics",
                  flush=True)
            print(f"Logs:           {workdir}/", flush=True)
            print("Ctrl-C stops everything." if duration is None else
                  f"Running for {duration:.0f}s ...", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                asyncio.run(simulator.run(duration=duration))
                procs.check_alive()
                if duration is not None:
                    asyncio.run(wait_until_drained(settings))
            result = asyncio.run(summary(settings)) if duration is not None else None
        finally:
            procs.stop()
    if result is not None:
        print(json.dumps(result), flush=True)
    return 0


def _refusal(settings: Settings, configured_services: bool) -> str | None:
    """Why the demo must not run with these settings: it seeds made-up wanted plates, cameras and
    an ``operator`` account (its password reset) wherever its database and broker are."""
    if settings.env == "prod":
        return "refused with IOC_ENV=prod: the demo writes made-up wanted plates and cameras"
    configured = [name for name, value in (("IOC_DATABASE_URL", settings.database_url),
                                            ("IOC_KAFKA_BOOTSTRAP", settings.kafka_bootstrap)) if value]
    if configured and not configured_services:
        return (f"{' and '.join(configured)} set: the demo would write made-up wanted plates, cameras and "
                "an 'operator' account there. Unset them to run on embedded services, or pass "
                "--use-configured-services")
    return None


def _worker_metrics_ports(settings: Settings, workers: int) -> list[int]:
    """IOC_WORKER_METRICS_PORT and up, past the API's own (the image sets 9108 and 9109)."""
    taken = {settings.api_port, settings.api_metrics_port}
    ports: list[int] = []
    port = settings.worker_metrics_port
    while len(ports) < workers:
        if port not in taken:
            ports.append(port)
        port += 1
    return ports


def _interrupt(signum: int, frame: object) -> None:  # noqa: ARG001 - a signal handler's signature
    raise KeyboardInterrupt


def _random_secret():  # noqa: ANN202
    from pydantic import SecretStr

    return SecretStr(secrets.token_urlsafe(32))


def _demo_user(settings: Settings) -> str:
    """Create the demo's operator account with a fresh random password."""
    from ioc.storage.users import ensure_user

    password = secrets.token_urlsafe(9)
    asyncio.run(ensure_user(settings.database_conninfo(), "operator", "supervisor", password))
    return password
