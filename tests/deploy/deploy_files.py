"""Readers for the deployment files (deploy/, helm/ioc/) shared by the deploy tests."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
CHART = REPO / "helm" / "ioc"
COMPOSE_FILE = DEPLOY / "compose.yaml"
RULES_FILE = DEPLOY / "prometheus" / "rules.yml"
DASHBOARDS = DEPLOY / "grafana" / "dashboards"
DATASOURCES_FILE = DEPLOY / "grafana" / "provisioning" / "datasources" / "datasources.yaml"

# Sample-name suffixes per metric type, as prometheus_client exposes them.
_SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "enum": ("",),
    "unknown": ("",),
}
_EXTRA_LABELS = {"histogram": {"le"}, "summary": {"quantile"}}
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = frozenset({"job", "instance"})


@dataclass(frozen=True)
class MetricInfo:
    family: str
    type: str
    labels: frozenset[str]


def registered_metrics() -> dict[str, MetricInfo]:
    """Every sample name ioc.metrics exposes, from the live registry (import registers them).

    Names and types come from the registry's public ``collect()``; label names from each
    collector's ``_labelnames`` (prometheus_client has no public accessor for a metric
    that has no children yet).
    """
    from prometheus_client import REGISTRY

    import ioc.metrics as metrics_module

    labels_by_family: dict[str, frozenset[str]] = {}
    for value in vars(metrics_module).values():
        described = getattr(value, "describe", None)
        if callable(described) and hasattr(value, "_labelnames"):
            for family in described():
                labels_by_family[family.name] = frozenset(value._labelnames)
    samples: dict[str, MetricInfo] = {}
    for family in REGISTRY.collect():
        if not family.name.startswith("ioc_"):
            continue
        labels = labels_by_family.get(family.name, frozenset()) | _EXTRA_LABELS.get(family.type, set())
        for suffix in _SAMPLE_SUFFIXES.get(family.type, ("",)):
            samples[family.name + suffix] = MetricInfo(family.name, family.type, frozenset(labels))
    return samples


def histogram_bounds() -> dict[str, tuple[float, ...]]:
    """Each ioc_* histogram's finite bucket bounds, as ioc.metrics declares them."""
    from prometheus_client import Histogram

    import ioc.metrics as metrics_module

    return {
        value._name: tuple(b for b in value._upper_bounds if b != float("inf"))
        for value in vars(metrics_module).values()
        if isinstance(value, Histogram)
    }


def settings_env_names() -> set[str]:
    """IOC_<FIELD> for every field of ioc.config.Settings."""
    from ioc.config import Settings

    return {f"IOC_{name.upper()}" for name in Settings.model_fields}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def dashboards() -> dict[str, dict[str, Any]]:
    return {path.name: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def dashboard_targets(board: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(panel, target) for every query of every panel, rows' nested panels included."""
    found = []
    stack = list(board.get("panels", []))
    while stack:
        panel = stack.pop(0)
        stack.extend(panel.get("panels", []))
        found.extend((panel, target) for target in panel.get("targets", []))
    return found


def dashboard_panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    panels, stack = [], list(board.get("panels", []))
    while stack:
        panel = stack.pop(0)
        stack.extend(panel.get("panels", []))
        panels.append(panel)
    return panels


def alerting_rules() -> list[dict[str, Any]]:
    return [r for g in load_yaml(RULES_FILE)["groups"] for r in g["rules"] if "alert" in r]


def recording_rules() -> list[dict[str, Any]]:
    return [r for g in load_yaml(RULES_FILE)["groups"] for r in g["rules"] if "record" in r]


# ---------------------------------------------------------------- PromQL reading
_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_RANGE = re.compile(r"\[[^\]]*\]")  # [5m], a subquery's [1h:1m]: durations, not names
_SELECTOR = re.compile(r"\b([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
_LABEL_VALUES = re.compile(r"label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*,\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)")


@dataclass(frozen=True)
class PromqlRefs:
    metrics: set[str]  # ioc_* sample names
    recorded: set[str]  # level:metric:operation names
    matcher_labels: dict[str, set[str]]  # metric -> labels used in its {...}
    grouping_labels: set[str]  # labels in by (...) / without (...)


def promql_refs(expr: str) -> PromqlRefs:
    """What an expression refers to; string literals (label values) are blanked first."""
    blank = _RANGE.sub("[]", _STRING.sub('""', expr))
    idents = set(_IDENT.findall(blank))
    matcher_labels: dict[str, set[str]] = {}
    for name, body in _SELECTOR.findall(blank):
        matcher_labels.setdefault(name, set()).update(_MATCHER.findall(body))
    grouping = {
        label.strip() for group in _GROUPING.findall(blank) for label in group.split(",") if label.strip()
    }
    return PromqlRefs(
        metrics={i for i in idents if i.startswith("ioc_")},
        recorded={i for i in idents if ":" in i},
        matcher_labels=matcher_labels,
        grouping_labels=grouping,
    )


def label_values_refs(query: str) -> list[tuple[str, str]]:
    """(metric, label) of Grafana's label_values(metric, label) variable queries."""
    return _LABEL_VALUES.findall(query)
