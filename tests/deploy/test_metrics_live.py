"""Metrics and dashboards on a live demo: the worker's and the API's /metrics scraped by a
real Prometheus (Debian's package), linted by ``promtool check metrics``, and every
dashboard panel's query run against that Prometheus and the demo's database.

One short demo serves the whole module (see monitored_demo.py for what it runs and the
traffic it makes on top of the simulator's).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from deploy_files import MetricInfo, dashboard_targets, dashboards, recording_rules
from grafana_queries import expand_macros, expand_promql
from monitored_demo import SCRAPE_INTERVAL_S, SILENT_CAMERA, MonitoredDemo, has_data, monitored_demo

from detectors import plate_format

pytestmark = pytest.mark.integration

# Vietnamese plate text as it could leak into a label: 51F86988, 51F-869.88, 29-B1 234.56, 59X312345
PLATE_LIKE = re.compile(r"\b\d{2}\s*-?\s*[A-Z]{1,2}\d?\s*-?\s*\d{3}\.?\d{1,2}\b", re.IGNORECASE)
FORBIDDEN_LABELS = {"plate", "text", "subject", "user", "username", "actor", "read_id", "alert_id"}
RANGE_STEP_S = 2  # Grafana's $__interval for a minute-long range on a wide panel
SQL_INTERVAL_S = 60


@pytest.fixture(scope="module")
def demo(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MonitoredDemo]:
    with monitored_demo(kafka_bootstrap, tmp_path_factory.mktemp("monitored-demo")) as running:
        yield running


def _raw_samples(url: str) -> dict[str, float]:
    """``name{labels}`` -> value from a /metrics page."""
    samples = {}
    for line in httpx.get(url, timeout=10).text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def _total(samples: dict[str, float], name: str, **labels: str) -> float:
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    return sum(v for k, v in samples.items()
               if (k == name or k.startswith(name + "{")) and all(w in k for w in wanted))


def _vector(demo: MonitoredDemo, expr: str) -> list[tuple[dict[str, str], float]]:
    return [(s["metric"], float(s["value"][1])) for s in demo.query(expr)["result"]]


# ---------------------------------------------------------------- /metrics and the families
def _promtool_lint(text: str) -> str:
    """``promtool check metrics`` on an exposition: its complaints, empty when there are none."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool not on PATH (Debian package 'prometheus')"
    done = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True,
                          timeout=60)
    problems = (done.stdout + done.stderr).strip()
    return problems or ("" if done.returncode == 0 else f"exit status {done.returncode}")


def test_promtool_lint_sees_naming_problems() -> None:
    bad = ("# HELP ioc_things Things\n# TYPE ioc_things counter\nioc_things 1\n"
           "# HELP ioc_wait_milliseconds Wait\n# TYPE ioc_wait_milliseconds gauge\nioc_wait_milliseconds 3\n")
    problems = _promtool_lint(bad)
    assert '"_total" suffix' in problems and 'base unit "seconds"' in problems, problems


@pytest.mark.parametrize("process", ["worker", "api"])
def test_raw_metrics_pass_promtool_lint(demo: MonitoredDemo, process: str) -> None:
    url = demo.worker_metrics_url if process == "worker" else demo.api_metrics_url
    text = httpx.get(url, timeout=10).text
    assert "ioc_" in text
    assert not _promtool_lint(text)


def test_the_api_port_serves_no_metrics(demo: MonitoredDemo) -> None:
    """As deployed: the API's metrics on IOC_API_METRICS_PORT, scraped there; the API port, which
    the public reaches, has none (a live stream's liveness probe needs no database either)."""
    assert httpx.get(f"{demo.api_url}/metrics", timeout=10).status_code == 404
    assert httpx.get(f"{demo.api_url}/livez", timeout=10).json() == {"status": "ok"}
    assert "ioc_http_requests_total{" in httpx.get(demo.api_metrics_url, timeout=10).text
    (target,) = [t for t in _vector(demo, 'up{job="ioc-api"}')]
    assert target[0]["instance"].endswith(f":{demo.settings.api_metrics_port}") and target[1] == 1


def test_a_young_workers_first_dead_letter_fires_the_alert(demo: MonitoredDemo) -> None:
    """One malformed frame: a series whose first sample is 1, which increase() cannot see; the
    rule counts it as new because the worker started less than 15 minutes ago
    (process_start_time_seconds, as a real Prometheus scrapes it)."""
    firing = {(m["topic"], m["reason"])
              for m, _ in _vector(demo, 'ALERTS{alertname="IOCDeadLetters", alertstate="firing"}')}
    assert (demo.settings.topics.frames, "bad_json") in firing, firing


def test_every_ioc_metric_family_has_samples_in_prometheus(
    demo: MonitoredDemo, metric_samples: dict[str, MetricInfo]
) -> None:
    present = {s["metric"]["__name__"]
               for s in demo.query('count by (__name__) ({__name__=~"ioc_.+"})')["result"]}
    by_family: dict[str, set[str]] = {}
    for sample, info in metric_samples.items():
        by_family.setdefault(info.family, set()).add(sample)
    missing = sorted(family for family, samples in by_family.items() if not samples & present)
    assert not missing, f"ioc.metrics families with no samples in Prometheus: {missing}"
    for job in ("ioc-worker", "ioc-api"):
        assert _vector(demo, f'up{{job="{job}"}} == 1'), f"Prometheus does not scrape {job}"


def test_every_process_reports_its_event_loop_beating(demo: MonitoredDemo) -> None:
    """The heartbeat IOCEventLoopStalled watches: set by the API's and the worker's event loops."""
    for job in ("ioc-worker", "ioc-api"):
        beating = _vector(demo, f'time() - ioc_event_loop_heartbeat_timestamp_seconds{{job="{job}"}} < 30')
        assert beating, f"{job}: no recent event-loop heartbeat"


def _identifying(labels: dict[str, str], *, plates: frozenset[str], usernames: frozenset[str]) -> list[str]:
    """The labels of one series that name a vehicle or a person."""
    found = []
    for name, value in labels.items():
        if name in FORBIDDEN_LABELS:
            found.append(f"{labels['__name__']} has a label {name}")
        canonical = plate_format.canonical(value)
        if (value in plates or canonical in plates or value in usernames
                or PLATE_LIKE.search(value) or plate_format.is_valid(canonical)):
            found.append(f"{labels['__name__']}{{{name}={value!r}}}")
    return found


def test_the_label_check_sees_plates_and_users() -> None:
    for labels in ({"__name__": "m", "camera": "51F-869.88"}, {"__name__": "m", "route": "x 29B123456"},
                   {"__name__": "m", "plate": "x"}, {"__name__": "m", "who": "jdoe"}):
        assert _identifying(labels, plates=frozenset(), usernames=frozenset({"jdoe"})), labels
    clean = {"__name__": "ioc_x_total", "camera": "TN-CP01-CAM1", "le": "0.25", "instance": "127.0.0.1:9108",
             "route": "/api/alerts/{alert_id}", "topic": "mon-0a1b2c3d4e.camera-frames", "partition": "1"}
    assert not _identifying(clean, plates=frozenset(), usernames=frozenset())


def test_no_label_value_is_a_plate_or_a_user(demo: MonitoredDemo) -> None:
    leaks = [leak for labels in demo.series('{__name__=~"ioc_.+"}')
             for leak in _identifying(labels, plates=demo.plates, usernames=demo.usernames)]
    assert not leaks, "label values that identify a vehicle or a person:\n" + "\n".join(sorted(set(leaks)))


def test_recording_rules_evaluate_and_record(demo: MonitoredDemo) -> None:
    rules = [rule for group in demo.rule_groups() for rule in group["rules"]]
    assert {r["name"] for r in rules if r["type"] == "recording"} == {r["record"] for r in recording_rules()}
    broken = [f"{r['name']}: {r.get('lastError')}" for r in rules if r["health"] != "ok"]
    assert not broken, broken
    empty = [r["record"] for r in recording_rules() if not has_data(demo.query(r["record"]))]
    assert not empty, f"recording rules with no data after the demo: {empty}"


# ---------------------------------------------------------------- what the new metrics say
def test_messages_produced_per_topic(demo: MonitoredDemo) -> None:
    t = demo.settings.topics
    produced = {(m["job"], m["topic"]) for m, v in _vector(demo, "ioc_messages_produced_total > 0")}
    assert {("ioc-worker", t.plate_reads), ("ioc-worker", t.alerts), ("ioc-worker", t.dead_letter),
            ("ioc-api", t.watchlist), ("ioc-api", t.alerts)} <= produced
    worker = _raw_samples(demo.worker_metrics_url)
    dead_letters = _total(worker, "ioc_messages_dead_lettered_total")
    assert _total(worker, "ioc_messages_produced_total", topic=t.dead_letter) == dead_letters > 0


def test_plate_reads_by_layout_and_confidence(demo: MonitoredDemo) -> None:
    series = _vector(demo, "ioc_plates_read_total")
    assert {m["layout"] for m, _ in series} <= {"one_line", "two_line", "motorbike", "unknown"}
    assert {m["confidence"] for m, _ in series} <= {"high", "medium", "low"}
    layouts = {src: {m["layout"] for m, _ in series if m["source"] == src} for src in ("edge", "camera")}
    assert layouts["edge"] == {"unknown"}, "edge reads carry no layout"
    assert layouts["camera"] - {"unknown"}, "camera reads have layouts"
    # the simulator's edge reads are 0.8 to 0.99 confident: medium or high, never low
    assert {m["confidence"] for m, v in series if m["source"] == "edge" and v > 0} <= {"medium", "high"}


def test_passages_hits_and_checkpoint_vehicles(demo: MonitoredDemo) -> None:
    assert {m["status"] for m, _ in _vector(demo, "ioc_passages_total")} == {"provisional", "final"}
    assert "exact" in {m["match_kind"] for m, _ in _vector(demo, "ioc_watchlist_hits_total")}
    vehicles = _vector(demo, "ioc_checkpoint_vehicles_total")
    checkpoints = {"TN-CP01", "TN-CP02", "TN-CP03", "MON-CP09"}
    assert {m["checkpoint"] for m, _ in vehicles} <= checkpoints
    assert {m["direction"] for m, _ in vehicles} <= {"in", "out"}
    assert {m["origin"] for m, _ in vehicles} <= {"home", "out_of_province", "unknown"}
    # vehicles as the count windows count them: an edge read each, and a frame camera's final
    # passage (not its reads, one per frame); counted after the commit: never more than the
    # tables hold, and it catches up with what they held a moment before
    def stored() -> int:
        with psycopg.connect(demo.database.ioc_url) as conn:
            return conn.execute("SELECT (SELECT count(*) FROM plate_reads WHERE source = 'edge')"
                                " + (SELECT count(*) FROM passages WHERE status = 'final')").fetchone()[0]

    def counted() -> float:
        return _total(_raw_samples(demo.worker_metrics_url), "ioc_checkpoint_vehicles_total")

    assert counted() <= (held := stored()), "frame reads counted as vehicles"
    deadline = time.monotonic() + 15
    while counted() < held:
        assert time.monotonic() < deadline, "ioc_checkpoint_vehicles_total lags the stored vehicles"
        time.sleep(0.5)


def test_latency_and_batch_histograms(demo: MonitoredDemo) -> None:
    worker = _raw_samples(demo.worker_metrics_url)
    alerts = _total(worker, "ioc_event_alert_latency_seconds_count")
    assert alerts > 0
    assert 0 < _total(worker, "ioc_event_alert_latency_seconds_sum") / alerts < 30
    batched = _total(worker, "ioc_db_write_batch_rows_sum", table="plate_reads")
    written = _total(worker, "ioc_rows_written_total", table="plate_reads")
    assert batched >= written > 0, "rows handed to writes include every row written"
    batches = _total(worker, "ioc_db_write_batch_rows_count", table="plate_reads")
    assert 0 < batches <= batched, "no batch is empty"


def test_consumer_lag_per_assigned_partition(demo: MonitoredDemo) -> None:
    t = demo.settings.topics
    series = _vector(demo, "ioc_consumer_lag_messages")
    assert {m["topic"] for m, _ in series} == {t.frames, t.edge_plate_reads, t.sensor_readings}
    assert {m["partition"] for m, _ in series} == {"0", "1"}
    assert all(v >= 0 for _, v in series)


def test_silent_camera_keeps_ageing(demo: MonitoredDemo) -> None:
    url = demo.worker_metrics_url
    sample = f'ioc_camera_last_seen_age_seconds{{camera="{SILENT_CAMERA}"}}'
    first = _raw_samples(url)[sample]
    time.sleep(1.5)
    second = _raw_samples(url)[sample]
    assert second >= first + 1.0, "the age is computed when scraped"
    cameras = {m["camera"] for m, _ in _vector(demo, "ioc_camera_last_seen_age_seconds")}
    assert cameras == {f"TN-CP0{i}-CAM{j}" for i in (1, 2, 3) for j in (1, 2)} | {SILENT_CAMERA}
    assert "NOBODY-CAM7" not in cameras, "unregistered cameras are dead-lettered, never labels"


# ---------------------------------------------------------------- every dashboard panel
_LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(?:(.+?)\s*,\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$")


def _variable_query(variable: dict[str, Any]) -> str:
    query = variable.get("query", "")
    if isinstance(query, dict):
        query = query.get("query") or query.get("rawSql") or ""
    return query or variable.get("definition", "")


def _variables(demo: MonitoredDemo, board: dict[str, Any]) -> tuple[dict[str, list[str]], set[str]]:
    """Each template variable's values as Grafana selects them on load (All where offered),
    and the names of the multi-value ones. A variable without values fails here."""
    values: dict[str, list[str]] = {}
    multi: set[str] = set()
    for variable in board.get("templating", {}).get("list", []):
        name, kind, query = variable["name"], variable.get("type"), _variable_query(variable)
        if kind == "query":
            if "prometheus" in str(variable.get("datasource", "")):
                found = _LABEL_VALUES.match(query)
                assert found, f"${name}: unsupported Prometheus variable query {query!r}"
                options = demo.label_values(found[2], found[1])
            else:
                with psycopg.connect(demo.database.grafana_url, autocommit=True) as conn:
                    options = [str(row[0]) for row in conn.execute(query).fetchall()]
        elif kind == "custom":
            options = [option.strip() for option in query.split(",") if option.strip()]
        elif kind in ("constant", "textbox", "interval"):
            options = [query.split(",")[0].strip()]
        else:
            continue
        assert options, f"template variable ${name} has no values during the demo"
        if variable.get("includeAll") or variable.get("multi"):
            multi.add(name)
            values[name] = [variable["allValue"]] if variable.get("includeAll") and variable.get(
                "allValue") else options
        else:
            values[name] = options[:1]
    return values, multi


def _sql_has_data(columns: list[str], rows: list[tuple[Any, ...]]) -> bool:
    data_columns = [i for i, c in enumerate(columns) if c != "time"]
    return any(row[i] is not None for row in rows for i in data_columns)


def _panel_problems(demo: MonitoredDemo, board: dict[str, Any]) -> list[str]:
    end = datetime.now(UTC)
    start = demo.started_at
    range_s = max(1, int((end - start).total_seconds()))
    values, multi = _variables(demo, board)
    problems = []
    for panel, target in dashboard_targets(board):
        if target.get("hide"):
            continue
        where = f"{panel['title']!r} ({target.get('refId', '?')})"
        try:
            if target.get("expr"):
                expr = expand_promql(target["expr"], range_s=range_s, interval_s=RANGE_STEP_S,
                                     scrape_interval_s=SCRAPE_INTERVAL_S, variables=values)
                if target.get("instant") and not target.get("range"):
                    data = demo.query(expr, at=end)
                else:
                    data = demo.query_range(expr, start=start, end=end, step_s=RANGE_STEP_S)
                if not has_data(data):
                    problems.append(f"{where}: no data for {expr}")
            elif target.get("rawSql"):
                sql = expand_macros(target["rawSql"], start=start - timedelta(minutes=5),
                                    end=end + timedelta(minutes=1), variables=values, multi=multi,
                                    interval_s=SQL_INTERVAL_S)
                with psycopg.connect(demo.database.grafana_url, autocommit=True) as conn:
                    cur = conn.execute(sql)  # the dashboard's own SQL
                    columns = [c.name for c in cur.description or []]
                    if not _sql_has_data(columns, cur.fetchall()):
                        problems.append(f"{where}: no rows for {sql}")
            else:
                problems.append(f"{where}: neither expr nor rawSql")
        except (AssertionError, psycopg.Error) as exc:
            problems.append(f"{where}: {type(exc).__name__}: {exc}")
    return problems


def test_the_panel_check_sees_a_panel_without_data(demo: MonitoredDemo) -> None:
    board = {"panels": [{"title": "probe", "targets": [
        {"refId": "A", "expr": 'sum(rate(ioc_frames_processed_total{job="no-such-job"}[$__rate_interval]))'},
        {"refId": "B", "rawSql": "SELECT $__timeGroupAlias(updated_at, $__interval), count(*) AS value"
                                 " FROM cameras WHERE $__timeFilter(updated_at) AND camera_id = 'none'"
                                 " GROUP BY 1"},
        {"refId": "C", "expr": "sum(rate(ioc_frames_processed_total[$__rate_interval]))"},
        {"refId": "D", "rawSql": "SELECT count(*) AS cameras FROM cameras"},
        {"refId": "E", "rawSql": "SELECT count(*) FROM plate_crops"},
    ]}]}
    problems = _panel_problems(demo, board)
    assert [p.split(":")[0] for p in problems] == ["'probe' (A)", "'probe' (B)", "'probe' (E)"], problems
    assert "InsufficientPrivilege" in problems[2], "the SQL runs as the read-only Grafana role"


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_every_panel_returns_data(demo: MonitoredDemo, name: str) -> None:
    board = dashboards()[name]
    assert dashboard_targets(board), f"{name} has no queries"
    problems = _panel_problems(demo, board)
    assert not problems, f"{name}: panels without data during the demo:\n" + "\n".join(problems)
