"""A short demo under a real Prometheus, for the tests that check metrics and dashboards live.

Worker, API and simulator run as child processes (as ``ioc demo`` starts them) on the
test broker and on a database set up like the compose stack's (so dashboards' SQL runs
as the read-only Grafana role). Debian's ``prometheus`` scrapes the worker and the API
every second under the job names of deploy/prometheus/prometheus.yml and evaluates
deploy/prometheus/rules.yml. On top of the simulator's traffic the harness makes what a
quiet minute would not: bad input (dead letters), a camera that goes silent (an offline
alert), an operator using the API (plate look-up, failed login, watchlist change, alert
acknowledged) and a database hiccup (connections terminated: retried writes).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import secrets
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml
from aiokafka import AIOKafkaProducer
from deploy_files import RULES_FILE
from grafana_queries import ProvisionedDatabase, provisioned_cluster
from pydantic import SecretStr

from ioc.config import Settings
from ioc.demo import DemoProcesses, child_env, prepare
from ioc.embedded.ports import free_port
from ioc.schemas import Direction, EdgePlateRead, utcnow
from ioc.simulator import TrafficSimulator
from ioc.storage.cameras import upsert_camera
from ioc.storage.database import connect
from ioc.storage.users import ensure_user

__all__ = ["SCRAPE_INTERVAL_S", "SILENT_CAMERA", "USERNAME", "MonitoredDemo", "monitored_demo"]

SCRAPE_INTERVAL_S = 1
SILENT_CAMERA, SILENT_CHECKPOINT = "MON-CP09-CAM1", "MON-CP09"
SILENT_INTERVAL_S = 2.0  # the silent camera's expected interval: offline a few seconds after its read
USERNAME, PASSWORD = "mon-supervisor", "monitoring demo passphrase"
READY_TIMEOUT_S = 120.0

# What must be in Prometheus (and the database) before the tests look: one selector per
# kind of data the metrics and the dashboards show.
READY_SELECTORS = (
    "ioc_messages_consumed_total",
    "ioc_messages_stored_total",
    "ioc_messages_dead_lettered_total",
    'ioc_messages_produced_total{job="ioc-worker"}',
    'ioc_messages_produced_total{job="ioc-api", topic=~".+[.]watchlist"}',
    'ioc_messages_produced_total{job="ioc-api", topic=~".+[.]alerts"}',
    "ioc_frames_processed_total > 0",
    'ioc_plates_read_total{source="camera"}',
    'ioc_plates_read_total{source="edge"}',
    "ioc_recognition_seconds_count > 0",
    'ioc_passages_total{status="provisional"}',
    'ioc_passages_total{status="final"}',
    "ioc_watchlist_hits_total",
    'ioc_alerts_raised_total{kind="watchlist_hit"}',
    'ioc_alerts_raised_total{kind="camera_offline"}',
    "ioc_event_store_latency_seconds_count > 0",
    "ioc_event_alert_latency_seconds_count > 0",
    "ioc_db_write_seconds_count",
    "ioc_db_write_batch_rows_count",
    "ioc_rows_written_total",
    "ioc_db_errors_total",
    "count(ioc_consumer_lag_messages) >= 6",  # 3 source topics x 2 partitions
    f'ioc_camera_last_seen_age_seconds{{camera="{SILENT_CAMERA}"}} > {3 * SILENT_INTERVAL_S}',
    "count(ioc_camera_last_seen_age_seconds) >= 7",  # the simulator's 6 cameras and the silent one
    "ioc_checkpoint_vehicles_total",
    "ioc_http_requests_total",
    "ioc_plate_queries_total",
    "ioc_login_failures_total > 0",
    "ioc_recognition_queue_frames",
)
READY_SQL = (
    "SELECT count(*) FROM checkpoint_counts WHERE vehicles > 0",
    "SELECT count(*) FROM checkpoint_counts WHERE sensor_vehicles > 0 OR qr_checkins > 0",
    "SELECT count(*) FROM passages WHERE status = 'final'",
    "SELECT count(*) FROM cameras WHERE online IS FALSE",
    "SELECT count(*) FROM alerts WHERE status = 'acknowledged'",
)


@dataclass
class MonitoredDemo:
    settings: Settings
    database: ProvisionedDatabase
    prometheus_url: str
    started_at: datetime  # when Prometheus started scraping
    plates: frozenset[str]  # every plate the simulator's vehicles carry
    usernames: frozenset[str]

    @property
    def worker_metrics_url(self) -> str:
        return f"http://{self.settings.worker_web_host}:{self.settings.worker_metrics_port}/metrics"

    @property
    def api_url(self) -> str:
        return f"http://{self.settings.api_host}:{self.settings.api_port}"

    @property
    def api_metrics_url(self) -> str:
        """On a port of its own, as deployments have it (IOC_API_METRICS_PORT)."""
        return f"http://{self.settings.api_host}:{self.settings.api_metrics_port}/metrics"

    def _api(self, path: str, params: dict[str, Any]) -> Any:
        response = httpx.get(f"{self.prometheus_url}{path}", params=params, timeout=30)
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", f"{params}: {response.text}"
        return body["data"]

    def query(self, expr: str, *, at: datetime | None = None) -> dict[str, Any]:
        """An instant query: Prometheus's ``data`` (``resultType`` and ``result``)."""
        return self._api("/api/v1/query", {"query": expr, "time": (at or datetime.now(UTC)).timestamp()})

    def query_range(self, expr: str, *, start: datetime, end: datetime, step_s: float) -> dict[str, Any]:
        return self._api(
            "/api/v1/query_range",
            {"query": expr, "start": start.timestamp(), "end": end.timestamp(), "step": step_s},
        )

    def series(self, match: str) -> list[dict[str, str]]:
        return self._api("/api/v1/series", {"match[]": match, "start": self.started_at.timestamp()})

    def label_values(self, label: str, match: str | None = None) -> list[str]:
        params: dict[str, Any] = {"start": self.started_at.timestamp()}
        if match:
            params["match[]"] = match
        return self._api(f"/api/v1/label/{label}/values", params)

    def rule_groups(self) -> list[dict[str, Any]]:
        return self._api("/api/v1/rules", {})["groups"]


def has_data(data: dict[str, Any]) -> bool:
    """Whether a query answer holds at least one finite value (a NaN quantile is no data)."""

    def finite(value: str) -> bool:
        return math.isfinite(float(value))

    kind, result = data["resultType"], data["result"]
    if kind == "matrix":
        return any(finite(v) for series in result for _, v in series["values"])
    if kind == "vector":
        return any(finite(sample["value"][1]) for sample in result)
    if kind == "scalar":
        return finite(result[1])
    return bool(result)


# ---------------------------------------------------------------- set-up steps
def _settings(kafka_bootstrap: str, database: ProvisionedDatabase, workdir: Path) -> Settings:
    # letters only: a random hex prefix can spell a plate ("43ad730545"), which the label
    # check rightly flags
    prefix = "mon-" + uuid.uuid4().hex[:10].translate(str.maketrans("0123456789", "ghijklmnop"))
    return Settings(
        env="test",
        kafka_bootstrap=kafka_bootstrap,
        database_url=SecretStr(database.ioc_url),
        topic_prefix=prefix,
        consumer_group=f"{prefix}-worker",
        topic_partitions=2,
        worker_web_port=free_port(),
        worker_metrics_port=free_port(),
        worker_data_dir=str(workdir / "faust"),
        api_port=free_port(),
        api_metrics_port=free_port(),
        auth_secret=SecretStr(secrets.token_urlsafe(32)),
        recognition_threads=1,
        sink_batch_seconds=0.1,
        simulator_frames_per_s=2.0,
        simulator_edge_reads_per_s=5.0,
        simulator_sensor_per_s=6.0,
        simulator_checkpoints=3,
        simulator_seed=11,
    )


def _prometheus_config(settings: Settings, workdir: Path) -> Path:
    """Scrape config with the deployed job names and the deployed rules, every second.

    The rules are deploy/prometheus/rules.yml with each group's evaluation interval
    shortened to the scrape interval, so recorded series exist within the demo's minute.
    """
    rules = yaml.safe_load(RULES_FILE.read_text())
    for group in rules["groups"]:
        group["interval"] = f"{SCRAPE_INTERVAL_S}s"
    (workdir / "rules.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    config = {
        "global": {"scrape_interval": f"{SCRAPE_INTERVAL_S}s", "evaluation_interval": f"{SCRAPE_INTERVAL_S}s",
                   "scrape_timeout": f"{SCRAPE_INTERVAL_S}s"},
        "rule_files": ["rules.yml"],
        "scrape_configs": [
            {"job_name": "ioc-api", "metrics_path": "/metrics",
             "static_configs": [{"targets": [f"{settings.api_host}:{settings.api_metrics_port}"]}]},
            {"job_name": "ioc-worker", "metrics_path": "/metrics",
             "static_configs": [{"targets": [f"{settings.worker_web_host}:{settings.worker_metrics_port}"]}]},
        ],
    }
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _wait(what: str, check: Callable[[], bool], *, timeout: float, procs: DemoProcesses) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs.check_alive()
        with contextlib.suppress(httpx.TransportError, psycopg.OperationalError):
            if check():
                return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _http_ok(url: str) -> bool:
    return httpx.get(url, timeout=2).status_code == 200


def _scalar(url: str, query: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query).fetchone()
        return int(row[0]) if row and row[0] is not None else 0


async def _send_extra_events(settings: Settings) -> None:
    """One read from the camera that then goes silent, and input that must be dead-lettered."""
    t = settings.topics
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        last = EdgePlateRead(camera_id=SILENT_CAMERA, checkpoint_id=SILENT_CHECKPOINT, direction=Direction.IN,
                             captured_at=utcnow(), text="20A99999", confidence=0.95)
        await producer.send_and_wait(t.edge_plate_reads, last.to_json(), key=SILENT_CAMERA.encode())
        await producer.send_and_wait(t.frames, b'{"camera_id": "MON', key=b"MON")
        stranger = last.model_copy(update={"event_id": uuid.uuid4(), "camera_id": "NOBODY-CAM7"})
        await producer.send_and_wait(t.edge_plate_reads, stranger.to_json(), key=b"NOBODY-CAM7")
    finally:
        await producer.stop()


def _operate_api(demo: MonitoredDemo, wanted_plate: str, new_entry: str) -> None:
    """What an operator does: a mistyped password, a sign-in, a plate look-up, a new
    watchlist entry (matched against past reads) and an acknowledged alert."""
    with httpx.Client(base_url=demo.api_url, timeout=15) as client:
        failed = client.post("/api/auth/token", data={"username": USERNAME, "password": "not the password"})
        assert failed.status_code == 401, failed.text
        signed_in = client.post("/api/auth/token", data={"username": USERNAME, "password": PASSWORD})
        assert signed_in.status_code == 200, signed_in.text
        client.headers["Authorization"] = f"Bearer {signed_in.json()['access_token']}"
        looked_up = client.get("/api/plates/sightings",
                               params={"plate": wanted_plate, "purpose": "monitoring test"})
        assert looked_up.status_code == 200, looked_up.text
        added = client.post("/api/watchlist", json={"pattern": new_entry, "reason": "monitoring test"})
        assert added.status_code == 201, added.text
        deadline = time.monotonic() + 60
        while True:
            alerts = client.get("/api/alerts", params={"kind": "watchlist_hit"})
            assert alerts.status_code == 200, alerts.text
            if alerts.json()["data"] or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        alert_id = alerts.json()["data"][0]["alert_id"]
        acknowledged = client.post(f"/api/alerts/{alert_id}/status",
                                   json={"status": "acknowledged", "note": "monitoring test"})
        assert acknowledged.status_code == 200, acknowledged.text


def _terminate_sessions(demo: MonitoredDemo, application: str) -> None:
    with psycopg.connect(demo.database.admin_url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = 'ioc' AND application_name = %s AND pid <> pg_backend_pid()",
            [application],
        )


def _database_hiccup(demo: MonitoredDemo, procs: DemoProcesses) -> None:
    """Terminate database sessions under the worker until it has retried a write
    (ioc_db_errors_total), and under the API until its readiness probe has answered 503
    (the 5xx the API's error-ratio rule and panels divide)."""
    for _ in range(10):
        _terminate_sessions(demo, "ioc")
        time.sleep(1.0)
        procs.check_alive()
        if "\nioc_db_errors_total{" in httpx.get(demo.worker_metrics_url, timeout=5).text:
            break
    else:
        raise AssertionError("terminating the worker's database sessions never made it retry a write")
    with httpx.Client(base_url=demo.api_url, timeout=10) as client:
        for _ in range(10):
            for _ in range(3):  # every pooled session just used: none is re-checked when taken next
                client.get("/healthz")
            _terminate_sessions(demo, "ioc-api")
            if client.get("/healthz").status_code == 503:
                return
    raise AssertionError("terminating the API's database sessions never failed its readiness probe")


def _ready(demo: MonitoredDemo) -> list[str]:
    """What is still missing (empty when every selector and every database check has data)."""
    missing = [s for s in READY_SELECTORS if not has_data(demo.query(s))]
    missing += [q for q in READY_SQL if _scalar(demo.database.ioc_url, q) == 0]
    return missing


def _wait_ready(demo: MonitoredDemo, procs: DemoProcesses) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while missing := _ready(demo):
        procs.check_alive()
        assert time.monotonic() < deadline, f"no data within {READY_TIMEOUT_S:.0f}s for {missing}"
        time.sleep(1.0)


def _log_tails(workdir: Path) -> None:
    for log in sorted(workdir.glob("*.log")):
        print(f"--- {log.name} (tail)\n" + "\n".join(log.read_text(errors="replace").splitlines()[-30:]))


# ---------------------------------------------------------------- the whole run
@contextlib.contextmanager
def monitored_demo(kafka_bootstrap: str, workdir: Path) -> Iterator[MonitoredDemo]:
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.skip("prometheus not on PATH (Debian package 'prometheus', see scripts/test-services.sh)")
    with provisioned_cluster("timescaledb") as database:
        settings = _settings(kafka_bootstrap, database, workdir)
        simulator = TrafficSimulator(settings)  # same seed as the child: same vehicles and watchlist
        watchlisted = {v.plate for v in simulator.watchlisted}
        cameras = [(c.camera_id, c.checkpoint_id) for c in simulator.cameras]
        asyncio.run(prepare(settings, [(p, "monitoring demo") for p in sorted(watchlisted)], cameras))
        asyncio.run(_register_silent_camera(settings))
        asyncio.run(ensure_user(settings.database_conninfo(), USERNAME, "supervisor", PASSWORD))

        procs = DemoProcesses()
        env = child_env(settings)
        ioc_cmd = [sys.executable, "-m", "ioc"]
        web_port = free_port()
        try:
            procs.start("prometheus", [
                prometheus, f"--config.file={_prometheus_config(settings, workdir)}",
                f"--storage.tsdb.path={workdir / 'tsdb'}", f"--web.listen-address=127.0.0.1:{web_port}",
                "--log.level=warn",
            ], env, workdir)
            started_at = datetime.now(UTC)
            procs.start("worker", [*ioc_cmd, "worker"], env, workdir)
            procs.start("api", [*ioc_cmd, "api"], env, workdir)
            demo = MonitoredDemo(
                settings=settings, database=database, prometheus_url=f"http://127.0.0.1:{web_port}",
                started_at=started_at, plates=frozenset(v.plate for v in simulator.vehicles) | {"20A99999"},
                usernames=frozenset({USERNAME}),
            )
            _wait("the API", lambda: _http_ok(f"{demo.api_url}/healthz"), timeout=60, procs=procs)
            _wait("the API's metrics", lambda: _http_ok(demo.api_metrics_url), timeout=30, procs=procs)
            _wait("the worker's metrics", lambda: _http_ok(demo.worker_metrics_url), timeout=60, procs=procs)
            _wait("Prometheus", lambda: _http_ok(f"{demo.prometheus_url}/-/ready"), timeout=30, procs=procs)
            procs.start("simulator", [*ioc_cmd, "simulate"], env, workdir)
            asyncio.run(_send_extra_events(settings))
            _wait("stored reads", lambda: _scalar(database.ioc_url, "SELECT count(*) FROM plate_reads") > 0,
                  timeout=90, procs=procs)
            wanted = sorted(watchlisted)[0]
            unlisted = sorted({v.plate for v in simulator.vehicles} - watchlisted)[0]
            _operate_api(demo, wanted, unlisted)
            _database_hiccup(demo, procs)
            _wait_ready(demo, procs)
            yield demo
        finally:
            procs.stop()
            _log_tails(workdir)


async def _register_silent_camera(settings: Settings) -> None:
    async with await connect(settings.database_conninfo()) as conn:
        await upsert_camera(conn, SILENT_CAMERA, SILENT_CHECKPOINT, expected_interval_s=SILENT_INTERVAL_S)
        await conn.commit()
