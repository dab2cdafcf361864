"""Grafana provisioning and dashboards. Grafana itself cannot be installed here, so every
dashboard's SQL runs for real: a PostgreSQL cluster (TimescaleDB and plain) set up the way
the compose stack does it (deploy/timescaledb/initdb, ``ioc migrate``, grafana-grants.sql),
with Grafana's macros expanded, as the read-only Grafana role."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from deploy_files import (
    DATASOURCES_FILE,
    DEPLOY,
    MetricInfo,
    dashboard_panels,
    dashboard_targets,
    dashboards,
    load_yaml,
    promql_refs,
)
from grafana_queries import ProvisionedDatabase, expand_macros, provisioned_cluster

PIPELINE, CHECKPOINTS = "ioc-pipeline.json", "ioc-checkpoints.json"
OVERVIEW, RECOGNITION = "ioc-overview.json", "ioc-recognition.json"


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
    assert set(boards) == {PIPELINE, CHECKPOINTS, OVERVIEW, RECOGNITION}
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
        "consumer lag per topic",
        "consumer lag per partition",
        "messages in and out per topic",
        "capture to database latency",
        "capture to alert latency",
        "database write batch size",
        "dead letters by reason",
    ):
        assert needed in titles, f"IOC pipeline has no panel for {needed!r}"


def test_checkpoint_dashboard_covers_checkpoints() -> None:
    titles = _titles(CHECKPOINTS)
    for needed in ("entering (in)", "leaving (out)", "out-of-province share", "qr check-ins", "sensors"):
        assert needed in titles, f"IOC checkpoints has no panel for {needed!r}"


def test_overview_dashboard_covers_alerts_hits_and_flows() -> None:
    titles = _titles(OVERVIEW)
    for needed in (
        "alerts raised",
        "watchlist hits",
        "alerts by kind and status",
        "alerts per checkpoint",
        "vehicles per minute in and out",
        "out-of-province share",
        "busiest checkpoints",
        "qr check-ins",
        "prometheus alerts firing",
    ):
        assert needed in titles, f"IOC overview has no panel for {needed!r}"


def test_recognition_dashboard_covers_quality_per_camera() -> None:
    titles = _titles(RECOGNITION)
    for needed in (
        "by confidence",
        "low-confidence share",
        "by source and layout",
        "passages",
        "read quality per camera",
        "weakest cameras",
        "confidence by plate layout",
        "most silent cameras",
        "cameras offline",
    ):
        assert needed in titles, f"IOC recognition quality has no panel for {needed!r}"


def test_overview_and_recognition_use_both_datasources() -> None:
    for name in (OVERVIEW, RECOGNITION):
        kinds = {target["datasource"]["uid"] for _, target in dashboard_targets(dashboards()[name])}
        assert kinds == {"ioc-prometheus", "ioc-timescaledb"}, name


def test_panels_are_not_empty_by_design() -> None:
    """Counters that may have no series yet (no dead letter, no database error) fall back to
    a zero series, so the panel shows 0 instead of "No data"."""
    for name, board in dashboards().items():
        for panel, target in dashboard_targets(board):
            expr = target.get("expr", "")
            if "ioc_messages_dead_lettered_total" in expr or "ioc_db_errors_total" in expr:
                assert " or " in expr, f"{name}: {panel['title']}: no data while the counter has no series"


def test_the_topic_variable_filters_every_query_of_a_topic_metric(
    metric_samples: dict[str, MetricInfo],
) -> None:
    """A dashboard with a Topic variable applies it to every metric with a topic label: "Messages in
    and out per topic" showed every topic's "out" whatever topic was picked."""
    unfiltered = []
    for name, board in dashboards().items():
        if "topic" not in {variable["name"] for variable in board["templating"]["list"]}:
            continue
        for panel, target in dashboard_targets(board):
            expr = target.get("expr", "")
            for metric in sorted(promql_refs(expr).metrics):
                if "topic" not in metric_samples[metric].labels:
                    continue
                selectors = re.findall(rf"\b{metric}\b(\{{[^}}]*\}})?", expr)
                if any('topic=~"$topic"' not in selector for selector in selectors):
                    unfiltered.append(f"{name}: {panel['title']} ({target['refId']}): {metric}")
    assert not unfiltered, "\n".join(unfiltered)


# ---------------------------------------------------------------- the SQL, for real
@pytest.fixture(scope="module", params=["timescaledb", "postgres"])
def provisioned(request: pytest.FixtureRequest) -> Iterator[ProvisionedDatabase]:
    """A fresh cluster set up like the compose stack's timescaledb service, then migrated."""
    with provisioned_cluster(request.param) as database:
        yield database


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
        for table in ("users", "audit_log", "plate_crops", "watchlist_entries", "alert_events",
                      "alert_evidence", "sighting_evidence"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT 1 FROM {table} LIMIT 1")  # noqa: S608
        with pytest.raises((psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.InsufficientPrivilege)):
            conn.execute("DELETE FROM checkpoint_counts")


# Tables that hold plates: the columns Grafana may read, and ones it must never see.
READABLE_COLUMNS = {
    "plate_reads": "captured_at, camera_id, checkpoint_id, source, layout, confidence",
    "passages": "started_at, camera_id, checkpoint_id, reads, confidence, status",
    "alerts": "raised_at, kind, severity, status, checkpoint_id",
}
HIDDEN_COLUMNS = {
    "plate_reads": ("text", "skeleton", "display", "candidates", "read_id", "province", "*"),
    "passages": ("text", "display", "read_ids", "best_read_id", "*"),
    "alerts": ("subject", "evidence", "read_id", "alert_id", "*"),
}


@pytest.mark.integration
def test_grafana_role_never_reads_a_plate(provisioned: ProvisionedDatabase) -> None:
    with psycopg.connect(provisioned.grafana_url, autocommit=True) as conn:
        for table, columns in READABLE_COLUMNS.items():
            conn.execute(f"SELECT {columns} FROM {table} LIMIT 1")  # noqa: S608 (fixed names)
        for table, columns in HIDDEN_COLUMNS.items():
            for column in columns:
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(f"SELECT {column} FROM {table} LIMIT 1")  # noqa: S608


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


# Cameras (id, checkpoint, online) and their plate reads (camera, checkpoint, source, layout,
# confidence); cam-3 sends reads without being registered.
CAMERAS = (("cam-1", "cp-1", True), ("cam-2", "cp-2", False))
READS = (
    ("cam-1", "cp-1", "camera", "one_line", 0.95),
    ("cam-1", "cp-1", "camera", "one_line", 0.92),
    ("cam-1", "cp-1", "camera", "two_line", 0.5),
    ("cam-2", "cp-2", "camera", "two_line", 0.7),
    ("cam-2", "cp-2", "camera", "motorbike", 0.65),
    ("cam-3", "cp-2", "edge", None, 0.99),
)
# Passages of cam-1: frames per vehicle.
PASSAGES = (("cam-1", 3, "final"), ("cam-1", 1, "provisional"))
# Alerts (kind, severity, status, checkpoint).
ALERTS = (
    ("watchlist_hit", "critical", "new", "cp-1"),
    ("watchlist_hit", "critical", "acknowledged", "cp-1"),
    ("camera_offline", "warning", "new", "cp-2"),
)


def _load_plate_tables(conn: psycopg.Connection, base: datetime) -> None:
    for camera_id, checkpoint_id, online in CAMERAS:
        conn.execute(
            "INSERT INTO cameras (camera_id, checkpoint_id, last_seen, online) VALUES (%s, %s, %s, %s)",
            [camera_id, checkpoint_id, base, online],
        )
    for i, (camera_id, checkpoint_id, source, layout, confidence) in enumerate(READS):
        conn.execute(
            "INSERT INTO plate_reads (read_id, captured_at, camera_id, checkpoint_id, direction, text,"
            " display, confidence, layout, source, source_event_id, processed_at)"
            " VALUES (%s, %s, %s, %s, 'in', '30A12345', '30A-123.45', %s, %s, %s, %s, %s)",
            [uuid.uuid4(), base + timedelta(seconds=20 * i), camera_id, checkpoint_id, confidence, layout,
             source, uuid.uuid4(), base],
        )
    for i, (camera_id, reads, status) in enumerate(PASSAGES):
        read_ids = [uuid.uuid4() for _ in range(reads)]
        conn.execute(
            "INSERT INTO passages (passage_id, camera_id, checkpoint_id, lane, direction, started_at,"
            " ended_at, text, display, confidence, reads, support, read_ids, best_read_id, status)"
            " VALUES (%s, %s, 'cp-1', 0, 'in', %s, %s, '30A12345', '30A-123.45', 0.9, %s, %s, %s, %s, %s)",
            [uuid.uuid4(), camera_id, base + timedelta(minutes=i), base + timedelta(minutes=i, seconds=2),
             reads, reads, read_ids, read_ids[0], status],
        )
    for i, (kind, severity, status, checkpoint_id) in enumerate(ALERTS):
        conn.execute(
            "INSERT INTO alerts (alert_id, kind, severity, subject, status, raised_at, checkpoint_id)"
            " VALUES (%s, %s, %s, '30A12345', %s, %s, %s)",
            [uuid.uuid4(), kind, severity, status, base + timedelta(minutes=i), checkpoint_id],
        )


@pytest.fixture(scope="module")
def sample_window(provisioned: ProvisionedDatabase) -> tuple[datetime, datetime]:
    """Loads SAMPLES, the sensor readings and the plate tables' rows (as the owner, like the
    workers do); returns the dashboard's time range."""
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
        _load_plate_tables(conn, base)
    return base - timedelta(minutes=5), base + timedelta(minutes=35)


def _sql_queries(board: str) -> dict[str, dict[str, Any]]:
    return {
        panel["title"]: target
        for panel, target in dashboard_targets(dashboards()[board])
        if target["datasource"]["uid"] == "ioc-timescaledb"
    }


def _checkpoint_queries() -> dict[str, dict[str, Any]]:
    return _sql_queries(CHECKPOINTS)


def _query(url: str, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(sql)
        return [c.name for c in cur.description], cur.fetchall()


@pytest.mark.integration
@pytest.mark.parametrize("board", [CHECKPOINTS, OVERVIEW, RECOGNITION])
def test_every_sql_panel_query_runs(
    provisioned: ProvisionedDatabase, sample_window: tuple, board: str
) -> None:
    start, end = sample_window
    queries = _sql_queries(board)
    assert queries, f"{board} has no SQL panel"
    for title, target in queries.items():
        columns, rows = _query(
            provisioned.grafana_url,
            expand_macros(target["rawSql"], start=start, end=end, checkpoints=["cp-1", "cp-2"]),
        )
        assert rows, f"{board} / {title}: no rows"
        if target["format"] == "time_series":
            assert columns[0] == "time", f"{board} / {title}: first column must be the time"


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


def _sql_by_title(board: str, fragment: str) -> str:
    matches = [t["rawSql"] for title, t in _sql_queries(board).items() if fragment in title.lower()]
    assert len(matches) == 1, fragment
    return matches[0]


@pytest.mark.integration
def test_read_quality_per_camera_matches_the_storage_module(
    provisioned: ProvisionedDatabase, sample_window: tuple
) -> None:
    """The dashboard's per-camera figures are ioc.storage.camera_quality's, plus health and passages."""
    from ioc.storage.camera_quality import read_quality

    start, end = sample_window
    sql = expand_macros(_sql_by_title(RECOGNITION, "read quality per camera"), start=start, end=end)
    columns, rows = _query(provisioned.grafana_url, sql)
    table = {row[0]: dict(zip(columns, row, strict=True)) for row in rows}

    async def expected() -> dict[str, Any]:
        async with await psycopg.AsyncConnection.connect(provisioned.ioc_url) as conn:
            return await read_quality(conn, since=start)

    quality = asyncio.run(expected())
    assert set(table) == {"cam-1", "cam-2", "cam-3"} == set(quality)
    for camera, q in quality.items():
        assert table[camera]["reads"] == q.reads, camera
        assert table[camera]["mean_confidence"] == pytest.approx(q.mean_confidence), camera
        assert table[camera]["low_confidence_share"] == pytest.approx(q.low_confidence_share), camera
    assert [row[0] for row in rows][0] == "cam-1", "the weakest camera comes first"
    assert (table["cam-1"]["health"], table["cam-2"]["health"], table["cam-3"]["health"]) == (
        "online",
        "offline",
        "unknown",
    )
    assert table["cam-3"]["checkpoint"] == "cp-2", "an unregistered camera keeps its reads' checkpoint"
    assert (table["cam-1"]["passages"], table["cam-1"]["reads_per_passage"]) == (2, pytest.approx(2.0))
    offline = expand_macros(_sql_by_title(RECOGNITION, "cameras offline"), start=start, end=end)
    assert _query(provisioned.grafana_url, offline)[1] == [(1,)]


@pytest.mark.integration
def test_alerts_by_kind_and_status(provisioned: ProvisionedDatabase, sample_window: tuple) -> None:
    start, end = sample_window
    sql = expand_macros(_sql_by_title(OVERVIEW, "alerts by kind and status"), start=start, end=end)
    columns, rows = _query(provisioned.grafana_url, sql)
    table = {(row[0], row[1]): dict(zip(columns, row, strict=True)) for row in rows}
    hits = table[("watchlist_hit", "critical")]
    assert (hits["alerts"], hits["new"], hits["in_progress"], hits["closed"]) == (2, 1, 1, 0)
    assert table[("camera_offline", "warning")]["alerts"] == 1
    per_checkpoint = expand_macros(_sql_by_title(OVERVIEW, "alerts per checkpoint"), start=start, end=end)
    _, rows = _query(provisioned.grafana_url, per_checkpoint)
    assert rows == [("cp-1", 2, 0, 0), ("cp-2", 0, 1, 0)]
