"""Grafana provisioning and dashboards. Grafana itself cannot be installed here, so the
checkpoint dashboard's SQL runs for real: a PostgreSQL cluster (TimescaleDB and plain)
set up the way the compose stack does it (deploy/timescaledb/initdb, ``ioc migrate``,
grafana-grants.sql), with Grafana's macros expanded, as the read-only Grafana role."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from deploy_files import DATASOURCES_FILE, DEPLOY, dashboard_panels, dashboard_targets, dashboards, load_yaml
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ioc.embedded.postgres import EmbeddedPostgres, TimescaleUnavailable

PIPELINE, CHECKPOINTS = "ioc-pipeline.json", "ioc-checkpoints.json"


# ---------------------------------------------------------------- static checks
def test_datasources_are_provisioned_without_secrets() -> None:
    sources = {ds["uid"]: ds for ds in load_yaml(DATASOURCES_FILE)["datasources"]}
    assert sources["ioc-prometheus"]["type"] == "prometheus"
    pg = sources["ioc-timescaledb"]
    assert pg["type"] == "grafana-postgresql-datasource"
    assert pg["user"] == "ioc_grafana" and pg["jsonData"]["database"] == "ioc"
    assert pg["secureJsonData"]["password"] == "$GRAFANA_DB_PASSWORD"
    providers = load_yaml(DEPLOY / "grafana" / "provisioning" / "dashboards" / "dashboards.yaml")["providers"]
    compose = load_yaml(DEPLOY / "compose.yaml")["services"]["grafana"]
    mounted = {v.split(":")[1] for v in compose["volumes"] if v.startswith("./grafana/dashboards")}
    assert {p["options"]["path"] for p in providers} <= mounted


def test_dashboards_are_well_formed() -> None:
    boards = dashboards()
    assert set(boards) == {PIPELINE, CHECKPOINTS}
    uids = {ds["uid"] for ds in load_yaml(DATASOURCES_FILE)["datasources"]}
    assert len({b["uid"] for b in boards.values()}) == len(boards)
    for name, board in boards.items():
        panels = dashboard_panels(board)
        ids = [p["id"] for p in panels]
        assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids"
        for panel in panels:
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, f"{name}: {panel['title']} overflows"
        for panel, target in dashboard_targets(board):
            assert target["datasource"]["uid"] in uids, f"{name}: {panel['title']} uses an unknown datasource"
            assert target.get("expr") or target.get("rawSql"), f"{name}: {panel['title']} has an empty query"


def _titles(name: str) -> str:
    return " | ".join(p["title"].lower() for p in dashboard_panels(dashboards()[name]))


def test_pipeline_dashboard_covers_the_pipeline() -> None:
    titles = _titles(PIPELINE)
    for needed in (
        "consumed per topic",
        "stored per topic",
        "dead-lettered",
        "recognition latency",
        "frames / s",
        "plate reads",
        "alerts raised",
        "database write latency",
        "request latency",
    ):
        assert needed in titles, f"IOC pipeline has no panel for {needed!r}"


def test_checkpoint_dashboard_covers_checkpoints() -> None:
    titles = _titles(CHECKPOINTS)
    for needed in ("entering (in)", "leaving (out)", "out-of-province share", "qr check-ins", "sensors"):
        assert needed in titles, f"IOC checkpoints has no panel for {needed!r}"


# ---------------------------------------------------------------- the SQL, for real
@dataclass(frozen=True)
class ProvisionedDatabase:
    layout: str
    ioc_url: str
    grafana_url: str


def _psql() -> str:
    found = shutil.which("psql") or shutil.which("psql", path="/usr/lib/postgresql/15/bin")
    if not found:
        pytest.skip("psql not installed (Debian postgresql-client)")
    return found


def _run_psql(psql: str, env: dict[str, str], *args: str) -> None:
    done = subprocess.run(
        [psql, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module", params=["timescaledb", "postgres"])
def provisioned(request: pytest.FixtureRequest) -> Iterator[ProvisionedDatabase]:
    """A fresh cluster set up like the compose stack's timescaledb service, then migrated."""
    psql = _psql()
    cluster = EmbeddedPostgres(timescale=request.param == "timescaledb")
    try:
        cluster.start()
    except TimescaleUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        admin = conninfo_to_dict(cluster.url)
        ioc_password, grafana_password = secrets.token_hex(16), secrets.token_hex(16)
        server = {"PGHOST": admin["host"], "PGPORT": str(admin["port"])}
        done = subprocess.run(
            ["bash", str(DEPLOY / "timescaledb" / "initdb" / "10-ioc-roles.sh")],
            env={
                **os.environ,
                **server,
                "PGPASSWORD": admin["password"],
                "POSTGRES_USER": "postgres",
                "IOC_DB_PASSWORD": ioc_password,
                "GRAFANA_DB_PASSWORD": grafana_password,
                "PATH": f"{os.path.dirname(psql)}:{os.environ['PATH']}",
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        ioc_url = make_conninfo(
            "", host=admin["host"], port=admin["port"], dbname="ioc", user="ioc", password=ioc_password
        )
        from ioc.storage.migrations import migrate

        asyncio.run(migrate(ioc_url))
        _run_psql(
            psql,
            {**server, "PGPASSWORD": ioc_password},
            "-v",
            "ON_ERROR_STOP=1",
            "-U",
            "ioc",
            "-d",
            "ioc",
            "-f",
            str(DEPLOY / "timescaledb" / "grafana-grants.sql"),
        )
        grafana_url = make_conninfo(
            "",
            host=admin["host"],
            port=admin["port"],
            dbname="ioc",
            user="ioc_grafana",
            password=grafana_password,
        )
        yield ProvisionedDatabase(request.param, ioc_url, grafana_url)
    finally:
        cluster.stop()


@pytest.mark.integration
def test_layout_follows_the_server(provisioned: ProvisionedDatabase) -> None:
    with psycopg.connect(provisioned.ioc_url) as conn:
        layout = conn.execute("SELECT layout FROM storage_layout").fetchone()[0]
    assert layout == provisioned.layout


@pytest.mark.integration
def test_grafana_role_reads_only_the_dashboard_tables(provisioned: ProvisionedDatabase) -> None:
    with psycopg.connect(provisioned.grafana_url, autocommit=True) as conn:
        for table in ("checkpoint_counts", "sensor_readings", "cameras", "checkpoint_counts_hourly"):
            conn.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 (fixed names)
        for table in ("users", "audit_log", "plate_reads", "plate_crops", "alerts", "watchlist_entries"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT 1 FROM {table} LIMIT 1")  # noqa: S608
        with pytest.raises((psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.InsufficientPrivilege)):
            conn.execute("DELETE FROM checkpoint_counts")


# Two minutes of counts at two checkpoints, and a few sensor readings.
@dataclass(frozen=True)
class Sample:
    minute: int
    checkpoint: str
    direction: str
    vehicle_class: str
    origin: str
    vehicles: int
    sensor_vehicles: float = 0
    qr_checkins: float = 0


SAMPLES = (
    Sample(0, "cp-1", "in", "car", "home", 10),
    Sample(0, "cp-1", "in", "car", "out_of_province", 5),
    Sample(1, "cp-1", "in", "car", "home", 20),
    Sample(1, "cp-1", "out", "truck", "out_of_province", 7),
    Sample(0, "cp-2", "in", "motorbike", "home", 3, sensor_vehicles=6, qr_checkins=4),
    Sample(0, "cp-2", "in", "car", "unknown", 2),
)


@pytest.fixture(scope="module")
def sample_window(provisioned: ProvisionedDatabase) -> tuple[datetime, datetime]:
    """Loads SAMPLES (as the owner, like the workers do); returns the dashboard's time range."""
    base = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)
    with psycopg.connect(provisioned.ioc_url) as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        for s in SAMPLES:
            conn.execute(
                "INSERT INTO checkpoint_counts (bucket, checkpoint_id, direction, vehicle_class, origin,"
                " vehicles, sensor_vehicles, qr_checkins) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    base + timedelta(minutes=s.minute),
                    s.checkpoint,
                    s.direction,
                    s.vehicle_class,
                    s.origin,
                    s.vehicles,
                    s.sensor_vehicles,
                    s.qr_checkins,
                ],
            )
        for offset, (sensor, kind, value, unit) in enumerate(
            [
                ("air-1", "environment", 40.0, "ug/m3"),
                ("air-1", "environment", 60.0, "ug/m3"),
                ("loop-2", "vehicle_count", 6.0, "vehicles"),
            ]
        ):
            conn.execute(
                "INSERT INTO sensor_readings (event_id, captured_at, sensor_id, checkpoint_id, sensor_kind,"
                " value, unit) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                [uuid.uuid4(), base + timedelta(seconds=10 * offset), sensor, "cp-2", kind, value, unit],
            )
    return base - timedelta(minutes=5), base + timedelta(minutes=35)


def expand_macros(
    sql: str, *, start: datetime, end: datetime, checkpoints: list[str], interval_s: int = 60
) -> str:
    """Grafana's PostgreSQL macros and this dashboard's variable, as Grafana expands them."""
    sql = re.sub(
        r"\$__timeGroupAlias\(\s*(\w+)\s*,\s*\$__interval\s*\)",
        rf'floor(extract(epoch from \1)/{interval_s})*{interval_s} AS "time"',
        sql,
    )
    sql = re.sub(
        r"\$__timeFilter\(\s*(\w+)\s*\)", rf"\1 BETWEEN '{start.isoformat()}' AND '{end.isoformat()}'", sql
    )
    sql = sql.replace("$__interval_ms", str(interval_s * 1000))
    sql = sql.replace("$checkpoint", ", ".join("'" + c.replace("'", "''") + "'" for c in checkpoints))
    assert "$" not in sql, f"unexpanded macro in {sql}"
    return sql


def _checkpoint_queries() -> dict[str, dict[str, Any]]:
    return {panel["title"]: target for panel, target in dashboard_targets(dashboards()[CHECKPOINTS])}


def _query(url: str, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql)
        return [c.name for c in cur.description], cur.fetchall()


@pytest.mark.integration
def test_every_checkpoint_panel_query_runs(provisioned: ProvisionedDatabase, sample_window: tuple) -> None:
    start, end = sample_window
    for title, target in _checkpoint_queries().items():
        columns, rows = _query(
            provisioned.grafana_url,
            expand_macros(target["rawSql"], start=start, end=end, checkpoints=["cp-1", "cp-2"]),
        )
        assert rows, f"{title}: no rows"
        if target["format"] == "time_series":
            assert columns[0] == "time", f"{title}: first column must be the time"


@pytest.mark.integration
def test_checkpoint_variable_lists_checkpoints(
    provisioned: ProvisionedDatabase, sample_window: tuple
) -> None:
    variable = dashboards()[CHECKPOINTS]["templating"]["list"][0]
    _, rows = _query(provisioned.grafana_url, variable["query"])
    assert [r[0] for r in rows] == ["cp-1", "cp-2"]


def _by_title(fragment: str) -> dict[str, Any]:
    matches = [t for title, t in _checkpoint_queries().items() if fragment in title.lower()]
    assert len(matches) == 1, fragment
    return matches[0]


@pytest.mark.integration
def test_vehicles_per_minute_in_and_out(provisioned: ProvisionedDatabase, sample_window: tuple) -> None:
    start, end = sample_window
    base = start + timedelta(minutes=5)
    for direction in ("in", "out"):
        sql = expand_macros(
            _by_title(f"({direction})")["rawSql"], start=start, end=end, checkpoints=["cp-1", "cp-2"]
        )
        _, rows = _query(provisioned.grafana_url, sql)
        got = {(float(t), metric): float(v) for t, metric, v in rows}
        expected: dict[tuple[float, str], float] = {}
        for s in SAMPLES:
            if s.direction == direction:
                key = ((base + timedelta(minutes=s.minute)).timestamp(), s.checkpoint)
                expected[key] = expected.get(key, 0) + s.vehicles
        assert got == expected, direction


@pytest.mark.integration
def test_out_of_province_share_ignores_unknown_origin(
    provisioned: ProvisionedDatabase, sample_window: tuple
) -> None:
    start, end = sample_window
    base = start + timedelta(minutes=5)
    sql = expand_macros(
        _by_title("out-of-province share")["rawSql"], start=start, end=end, checkpoints=["cp-1", "cp-2"]
    )
    _, rows = _query(provisioned.grafana_url, sql)
    got = {float(t): float(v) for t, v in rows}
    assert got == pytest.approx({base.timestamp(): 5 / 18, (base + timedelta(minutes=1)).timestamp(): 7 / 27})


@pytest.mark.integration
def test_checkpoint_totals_table(provisioned: ProvisionedDatabase, sample_window: tuple) -> None:
    start, end = sample_window
    sql = expand_macros(
        _by_title("checkpoint totals")["rawSql"], start=start, end=end, checkpoints=["cp-1", "cp-2"]
    )
    columns, rows = _query(provisioned.grafana_url, sql)
    table = {row[0]: dict(zip(columns, row, strict=True)) for row in rows}
    assert (table["cp-1"]["in"], table["cp-1"]["out"], table["cp-1"]["net_in"]) == (35, 7, 28)
    assert table["cp-1"]["out_of_province_share"] == pytest.approx(12 / 42)
    assert (table["cp-2"]["in"], table["cp-2"]["out"], table["cp-2"]["net_in"]) == (5, 0, 5)
    assert table["cp-2"]["qr_checkins"] == 4 and table["cp-2"]["counted_vehicles"] == 6
    only_cp2 = expand_macros(
        _by_title("checkpoint totals")["rawSql"], start=start, end=end, checkpoints=["cp-2"]
    )
    assert [r[0] for r in _query(provisioned.grafana_url, only_cp2)[1]] == ["cp-2"]


@pytest.mark.integration
def test_sensor_panels(provisioned: ProvisionedDatabase, sample_window: tuple) -> None:
    start, end = sample_window
    _, rows = _query(
        provisioned.grafana_url,
        expand_macros(_by_title("environment sensors")["rawSql"], start=start, end=end, checkpoints=["cp-2"]),
    )
    assert [(metric, float(value)) for _, metric, value in rows] == [("air-1 (ug/m3)", 50.0)]
    columns, rows = _query(
        provisioned.grafana_url,
        expand_macros(
            _by_title("sensors: last reading")["rawSql"], start=start, end=end, checkpoints=["cp-2"]
        ),
    )
    readings = {row[0]: dict(zip(columns, row, strict=True)) for row in rows}
    assert readings["air-1"]["readings"] == 2 and readings["loop-2"]["sensor_kind"] == "vehicle_count"
