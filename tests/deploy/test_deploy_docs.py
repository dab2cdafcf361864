"""docs/operations.md against the files it describes: every alert has a runbook entry with
its severity, every dashboard is listed, the measured figures it sizes with are the ones
in docs/benchmarks.md, its arithmetic gives the example values in helm/examples, and its
links point at files that exist. docs/deployment.md: its commands fit the chart and the
compose file."""

from __future__ import annotations

import math
import re

import yaml
from deploy_files import CHART, COMPOSE_FILE, REPO, alerting_rules, dashboards, load_yaml, registered_metrics

DOCS = REPO / "docs"
OPERATIONS = (DOCS / "operations.md").read_text()
PROVINCE_FILE = REPO / "helm" / "examples" / "province.yaml"
PROVINCE = load_yaml(PROVINCE_FILE)


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_every_alert_has_a_runbook_row_with_its_severity() -> None:
    rows = {
        m[1]: m[2]
        for m in re.finditer(r"^\| `(IOC\w+)` \| (\w+) \|", OPERATIONS, flags=re.MULTILINE)
    }
    rules = {rule["alert"]: rule["labels"]["severity"] for rule in alerting_rules()}
    assert rows == rules, "docs/operations.md 'When an alert fires' must list every alert of rules.yml"


def test_metrics_table_lists_every_registered_metric() -> None:
    """The Metrics table names every family ioc.metrics registers, exactly, with its type and labels."""
    section = OPERATIONS.split("### Metrics", 1)[1].split("\n### ", 1)[0]
    rows = {
        m[1]: (m[2], m[3].strip())
        for m in re.finditer(r"^\| `(ioc_\w+)` \| (\w+) \| ([^|]*) \|", section, flags=re.MULTILINE)
    }
    registered = {
        info.family + ("_total" if info.type == "counter" else ""):
            (info.type, ", ".join(sorted(info.labels - {"le", "quantile"})) or "–")
        for info in registered_metrics().values()
    }
    documented = {name: (kind, ", ".join(sorted(labels.split(", "))) if labels != "–" else labels)
                  for name, (kind, labels) in rows.items()}
    assert documented == registered, "docs/operations.md 'Metrics' must list ioc.metrics exactly"


def test_every_dashboard_is_described() -> None:
    deployment = (DOCS / "deployment.md").read_text()
    for board in dashboards().values():
        assert f"**{board['title']}**" in OPERATIONS, f"operations.md does not describe {board['title']}"
        assert f"*{board['title']}*" in deployment, f"deployment.md does not list {board['title']}"


# The measured figures the sizing uses, as operations.md writes them.
MEASURED = ("14.9 ms", "23.2 ms", "42.8 frames/s", "16,916", "53.7", "665.8", "19.66 ms", "278 MB", "1,000")


def test_sizing_uses_the_measured_figures() -> None:
    benchmarks = _flat((DOCS / "benchmarks.md").read_text() + (DOCS / "benchmark-history.md").read_text())
    flat = _flat(OPERATIONS)
    for figure in MEASURED:
        assert figure in flat, f"operations.md does not use {figure}"
        assert figure.split()[0] in benchmarks, f"{figure} is not measured in docs/benchmarks.md or history"


def test_sizing_arithmetic_gives_the_example_values() -> None:
    cameras, frames_per_s, per_core, target = 400, 5, 42, 0.75
    peak = cameras * frames_per_s
    cores = math.ceil(math.ceil(peak / per_core) / target)
    workers = cores // 2  # 2-CPU workers
    assert (peak, cores, workers) == (2000, 64, 32)
    flat = _flat(OPERATIONS)
    for figure in ("**2,000 frames/s**", "**64 cores**", "**32 workers**", "**64 partitions**"):
        assert figure in flat, figure
    autoscaling = PROVINCE["worker"]["autoscaling"]
    assert autoscaling["maxReplicas"] == workers
    partitions = PROVINCE["config"]["topicPartitions"]
    assert partitions == 64 and partitions % workers == 0, "each worker gets the same share at the peak"
    assert PROVINCE["kafkaTopics"]["strimzi"]["retentionMsByTopic"]["camera-frames"] == 12 * 3600 * 1000


def test_links_point_at_files_that_exist() -> None:
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", OPERATIONS):
        if "://" in target:
            continue
        assert (DOCS / target).resolve().exists(), f"operations.md links to a missing {target}"


def _documented_database_cluster() -> dict:
    """The CloudNativePG Cluster that docs/deployment.md tells a province to create."""
    deployment = (DOCS / "deployment.md").read_text()
    for block in re.findall(r"```yaml\n(.*?)```", deployment, flags=re.DOTALL):
        for document in yaml.safe_load_all(block):
            if isinstance(document, dict) and document.get("kind") == "Cluster":
                assert str(document["apiVersion"]).startswith("postgresql.cnpg.io/")
                return document
    raise AssertionError("docs/deployment.md has no CloudNativePG Cluster")


def test_documented_database_admits_every_pool_of_the_province_example() -> None:
    """(most worker pods + API pods, each with one surging in a rollout) x databasePoolSize + about
    20 for the Jobs, Grafana and an admin must fit max_connections (PostgreSQL's default: 100)."""
    cluster = _documented_database_cluster()
    max_connections = int(cluster["spec"]["postgresql"].get("parameters", {}).get("max_connections", 100))
    pods = PROVINCE["worker"]["autoscaling"]["maxReplicas"] + 1 + PROVINCE["api"]["replicas"] + 1
    needed = pods * PROVINCE["config"]["databasePoolSize"] + 20
    assert needed <= max_connections, f"{needed} connections, max_connections {max_connections}"
    assert f"= {needed}" in _flat((DOCS / "deployment.md").read_text()), "the docs work out the sum"


def _commands(text: str) -> list[str]:
    """The shell commands of the ```sh blocks, continuation lines joined."""
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL)
    return [line.strip() for block in blocks for line in block.replace("\\\n", " ").splitlines()]


def _seconds(duration: str) -> float:
    """A Go duration (Helm's --timeout): 20m, 1h30m, 900s."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"not a duration: {duration}"
    return sum(float(number) * units[unit] for number, unit in parts)


def test_documented_helm_installs_wait_for_the_migrate_job() -> None:
    """Helm waits for a hook Job only --timeout (default 5m); the migrate Job may run
    migrate.activeDeadlineSeconds (900 s). A shorter wait failed the release of a long migration,
    and the next upgrade deleted the running Job and started it over."""
    deadline = load_yaml(CHART / "values.yaml")["migrate"]["activeDeadlineSeconds"]
    province_comment = "\n".join(
        line.removeprefix("#").strip()
        for line in PROVINCE_FILE.read_text().splitlines()
        if line.startswith("#")
    )
    commands = [
        (source, command)
        for source, text in (
            ("deployment.md", (DOCS / "deployment.md").read_text()),
            ("operations.md", OPERATIONS),
            ("province.yaml", f"```sh\n{province_comment}\n```"),
        )
        for command in _commands(text)
        if re.match(r"helm (upgrade|install)\b", command)
    ]
    assert {source for source, _ in commands} >= {"deployment.md", "province.yaml"}
    for source, command in commands:
        timeout = re.search(r"--timeout[ =](\S+)", command)
        assert timeout, f"{source}: {command} waits Helm's default 5m for the migrate Job"
        assert _seconds(timeout.group(1)) >= deadline, (
            f"{source}: {command} gives up before the Job's {deadline} s"
        )


def test_first_user_is_created_in_the_running_api() -> None:
    """Nobody can sign in to a new deployment until a user exists: the docs show how, with a
    command the image has, in the API container (compose) and the API Deployment (Helm)."""
    from ioc.cli import build_parser

    commands = _commands((DOCS / "deployment.md").read_text())
    users_add = "ioc users add --role admin NAME"
    (compose,) = [c for c in commands if c.startswith("docker compose") and c.endswith(users_add)]
    (kubectl,) = [c for c in commands if c.startswith("kubectl") and c.endswith(users_add)]
    args = build_parser().parse_args(users_add.split()[1:])
    assert (args.action, args.role, args.username) == ("add", "admin", "NAME")

    service = re.fullmatch(rf"docker compose -f deploy/compose\.yaml exec (?:-T )?(\S+) {users_add}", compose)
    assert service and load_yaml(COMPOSE_FILE)["services"][service.group(1)]["command"] == ["api"]
    deployment = re.fullmatch(rf"kubectl -n ioc exec -it? deploy/(\S+) -- {users_add}", kubectl)
    template = (CHART / "templates" / "api-deployment.yaml").read_text()
    assert deployment and deployment.group(1) == "ioc-api"  # release "ioc": ioc.fullname is "ioc"
    assert re.search(r'^  name: \{\{ include "ioc\.fullname" \. \}\}-api$', template, re.MULTILINE)
    assert "ioc users add --role admin" in (CHART / "templates" / "NOTES.txt").read_text()
