"""Prometheus config and rules: promtool checks, rule unit tests, and every metric name and
label the rules and dashboards use exists in ioc.metrics (renaming a metric fails here)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from deploy_files import (
    DEPLOY,
    RULES_FILE,
    TARGET_LABELS,
    MetricInfo,
    alerting_rules,
    dashboard_targets,
    dashboards,
    histogram_bounds,
    label_values_refs,
    load_yaml,
    promql_refs,
    recording_rules,
)

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not on PATH (Debian package 'prometheus'; scripts/test-services.sh installs it)",
)
# Grafana's variables, replaced by values PromQL accepts so promtool can parse the expressions.
GRAFANA_SUBSTITUTIONS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "$topic": ".*"}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120)


def _prometheus_expressions() -> list[tuple[str, str]]:
    """(where, PromQL) for every rule and every Prometheus query of the dashboards."""
    found = [
        (f"rules.yml {r.get('alert') or r.get('record')}", r["expr"])
        for r in alerting_rules() + recording_rules()
    ]
    for name, board in dashboards().items():
        for panel, target in dashboard_targets(board):
            if "expr" in target:
                found.append((f"{name} / {panel['title']}", target["expr"]))
    return found


def _grafana_to_promql(expr: str) -> str:
    for variable, value in GRAFANA_SUBSTITUTIONS.items():
        expr = expr.replace(variable, value)
    return expr


@needs_promtool
def test_promtool_check_config() -> None:
    done = _promtool("check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_promtool_check_rules() -> None:
    done = _promtool("check", "rules", str(RULES_FILE))
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_alert_rules_fire_and_stay_silent_as_specified() -> None:
    """deploy/prometheus/tests/rules_test.yml drives each alert with synthetic series."""
    done = _promtool("test", "rules", str(DEPLOY / "prometheus" / "tests" / "rules_test.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_dashboard_promql_parses(tmp_path: Path) -> None:
    """Every dashboard query is valid PromQL: promtool parses each one as a recording rule."""
    queries = [
        (where, expr) for where, expr in _prometheus_expressions() if not where.startswith("rules.yml")
    ]
    assert queries, "no Prometheus queries found in the dashboards"
    rules = {
        "groups": [
            {
                "name": "dashboard-queries",
                "rules": [
                    {"record": f"dashboard:query_{i}:check", "expr": _grafana_to_promql(expr)}
                    for i, (_, expr) in enumerate(queries)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules))
    done = _promtool("check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr


def test_rule_tests_feed_the_buckets_the_histograms_export() -> None:
    """A rule test fed buckets the code never exports proves nothing about real series."""
    bounds = histogram_bounds()
    tests = load_yaml(DEPLOY / "prometheus" / "tests" / "rules_test.yml")["tests"]
    wrong = []
    for case in tests:
        for item in case["input_series"]:
            found = re.match(r'(ioc_\w+)_bucket\{.*le="([^"]+)"', item["series"])
            if found and found[2] != "+Inf" and float(found[2]) not in bounds[found[1]]:
                wrong.append(f"{case['name']}: {found[1]} has no bucket le={found[2]}")
    assert not wrong, "\n".join(wrong)


def test_quantile_alerts_threshold_below_the_top_bucket() -> None:
    """histogram_quantile() reports at most the top finite bound, so a threshold at or above it
    can never be crossed."""
    bounds = histogram_bounds()
    checked = 0
    for rule in alerting_rules():
        for metric, threshold in re.findall(r":(ioc_\w+):p\d+_5m\s*>\s*([\d.]+)", rule["expr"]):
            checked += 1
            assert float(threshold) < max(bounds[metric]), f"{rule['alert']} can never fire"
    assert checked >= 3


def test_every_metric_referenced_exists_in_ioc_metrics(metric_samples: dict[str, MetricInfo]) -> None:
    missing = {}
    for where, expr in _prometheus_expressions():
        unknown = promql_refs(expr).metrics - metric_samples.keys()
        if unknown:
            missing[where] = sorted(unknown)
    for name, board in dashboards().items():
        for variable in board["templating"]["list"]:
            query = variable.get("definition", "")
            for metric, _label in label_values_refs(query):
                if metric.startswith("ioc_") and metric not in metric_samples:
                    missing[f"{name} variable {variable['name']}"] = [metric]
    assert not missing, f"metrics not registered by ioc.metrics: {missing}"


def test_label_matchers_and_groupings_use_real_labels(metric_samples: dict[str, MetricInfo]) -> None:
    """A label in {...} must be one of the metric's labels; a label in by (...) must be one
    of the labels of the metrics in that expression (plus job and instance)."""
    wrong = []
    for where, expr in _prometheus_expressions():
        refs = promql_refs(expr)
        for metric, labels in refs.matcher_labels.items():
            if metric in metric_samples:
                unknown = labels - metric_samples[metric].labels - TARGET_LABELS
                if unknown:
                    wrong.append(f"{where}: {metric} has no label(s) {sorted(unknown)}")
        if refs.metrics and not refs.recorded:
            available = set(TARGET_LABELS).union(
                *(metric_samples[m].labels for m in refs.metrics if m in metric_samples)
            )
            unknown = refs.grouping_labels - available
            if unknown:
                wrong.append(f"{where}: grouping by {sorted(unknown)}, not a label of {sorted(refs.metrics)}")
    for name, board in dashboards().items():
        for variable in board["templating"]["list"]:
            for metric, label in label_values_refs(variable.get("definition", "")):
                if metric in metric_samples and label not in metric_samples[metric].labels:
                    wrong.append(f"{name} variable {variable['name']}: {metric} has no label {label}")
    assert not wrong, "\n".join(wrong)


def test_recorded_series_used_are_defined() -> None:
    defined = {r["record"] for r in recording_rules()}
    used = {name for _, expr in _prometheus_expressions() for name in promql_refs(expr).recorded}
    assert used <= defined, f"recording rules used but not defined: {sorted(used - defined)}"


def test_required_alerts_exist_with_severity_and_summary() -> None:
    alerts = {r["alert"]: r for r in alerting_rules()}
    required = {
        "IOCWorkerDown": "up",
        "IOCDeadLetters": "ioc_messages_dead_lettered_total",
        "IOCRecognitionSlow": "ioc_recognition_seconds:p99",
        "IOCConsumerNotStoring": "ioc_messages_stored",
        "IOCApiErrorRate": "ioc_http_requests_errors",
        "IOCConsumerLag": "ioc_consumer_lag_messages",
        "IOCCameraOffline": "ioc_camera_last_seen_age_seconds",
        "IOCNoReads": "ioc_plates_read_total",
        "IOCAlertLatencyHigh": "ioc_event_alert_latency_seconds",
    }
    for name, needle in required.items():
        assert name in alerts, f"missing alert {name}"
        assert needle in alerts[name]["expr"], f"{name} does not look at {needle}"
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}, name
        assert rule["annotations"]["summary"], name


# What a worker or an API process reports about a loss or a delay nobody else sees: each is alerted
# on and shown on a dashboard.
WATCHED = (
    "ioc_broker_data_lost_messages_total",
    "ioc_broker_topics_recreated_total",
    "ioc_watchlist_publish_behind_seconds",
)


@pytest.mark.parametrize("metric", WATCHED)
def test_losses_and_publishing_delays_are_alerted_and_shown(metric: str) -> None:
    alerted = [r["alert"] for r in alerting_rules() if metric in promql_refs(r["expr"]).metrics]
    shown = [where for where, expr in _prometheus_expressions()
             if not where.startswith("rules.yml") and metric in promql_refs(expr).metrics]
    assert alerted, f"no alert rule looks at {metric}"
    assert shown, f"no dashboard shows {metric}"


def test_scrape_jobs_are_the_ones_rules_match_on() -> None:
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert {"ioc-api", "ioc-worker"} <= jobs
    used = {
        job
        for _, expr in _prometheus_expressions()
        for job in ("ioc-api", "ioc-worker")
        if f'"{job}"' in expr
    }
    assert used <= jobs
    assert config["rule_files"] == ["rules.yml"]
