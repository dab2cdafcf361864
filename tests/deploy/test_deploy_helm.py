"""The Helm chart: values against values.schema.json, then real Helm (the CLI, or Helm's Go
library from the helm-sdkpy wheel, see helm_engine.py) lints and renders it with default
and all-features values; rendered objects are checked against the Kubernetes schemas."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
from deploy_files import CHART, RULES_FILE, load_yaml, settings_env_names
from helm_engine import Helm, RenderError, deep_merge

KUBERNETES_VERSION = "1.32.0"
HELM = Helm.find()
needs_helm = pytest.mark.skipif(
    HELM is None,
    reason="no Helm: neither a helm CLI on PATH nor the helm-sdkpy library in .cache/helm-sdkpy "
    "(docs/deployment.md, 'Checking the deployment files')",
)
DEFAULTS: dict[str, Any] = load_yaml(CHART / "values.yaml")
ALL_FEATURES: dict[str, Any] = {
    "image": {"digest": "sha256:" + "a" * 64},
    "config": {"extra": {"IOC_SINK_BATCH_SIZE": "500"}},
    "worker": {"autoscaling": {"enabled": True, "maxReplicas": 8}},
    "api": {
        "ingress": {
            "enabled": True,
            "className": "nginx",
            "tls": [{"secretName": "ioc-tls", "hosts": ["ioc.example.internal"]}],
        }
    },
    "metrics": {
        "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
        "prometheusRule": {"enabled": True},
    },
    "networkPolicy": {
        "enabled": True,
        "apiFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}],
        "metricsFrom": [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
        ],
        "egress": {"restrict": True, "to": [{"ports": [{"protocol": "TCP", "port": 9092}]}]},
    },
    "kafkaTopics": {"strimzi": {"enabled": True, "clusterName": "ioc-kafka"}},
    "secrets": {"databaseUrl": {"secretName": "ioc-db-app", "key": "uri"}},
}
WORKLOAD_KINDS = {"Deployment", "Job", "CronJob"}


def values(**overrides: Any) -> dict[str, Any]:
    return deep_merge(DEFAULTS, overrides)


def _schema() -> dict[str, Any]:
    return json.loads((CHART / "values.schema.json").read_text())


# ---------------------------------------------------------------- without Helm
def test_chart_metadata() -> None:
    chart = load_yaml(CHART / "Chart.yaml")
    assert chart["apiVersion"] == "v2" and chart["name"] == "ioc" and chart["type"] == "application"
    assert re.fullmatch(r"\d+\.\d+\.\d+", chart["version"])
    templates = {p.name for p in (CHART / "templates").iterdir()}
    assert {
        "_helpers.tpl",
        "NOTES.txt",
        "worker-deployment.yaml",
        "worker-hpa.yaml",
        "api-deployment.yaml",
        "api-service.yaml",
        "api-ingress.yaml",
        "migrate-job.yaml",
        "configmap.yaml",
        "serviceaccount.yaml",
        "servicemonitor.yaml",
        "worker-pdb.yaml",
        "api-pdb.yaml",
        "networkpolicy.yaml",
    } <= templates


def test_values_match_their_schema() -> None:
    jsonschema.Draft7Validator.check_schema(_schema())
    jsonschema.validate(DEFAULTS, _schema())
    jsonschema.validate(values(**ALL_FEATURES), _schema())


@pytest.mark.parametrize(
    "bad",
    [
        {"worker": {"replicas": "two"}},
        {"config": {"extra": {"IOC_AUTH_SECRET": "plain-text"}}},
        {"config": {"extra": {"NOT_IOC": "x"}}},
        {"config": {"env": "staging"}},
        {"secrets": {"existingSecret": ""}},
        {"podSecurityContext": {"runAsNonRoot": False}},
        {"typo": True},
    ],
    ids=["replicas-type", "secret-in-extra", "non-ioc-extra", "env", "no-secret-name", "root", "unknown-key"],
)
def test_schema_rejects_bad_values(bad: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(values(**bad), _schema())


def test_prometheus_rules_file_is_the_deploy_one() -> None:
    linked = CHART / "files" / "prometheus-rules.yml"
    assert linked.resolve() == RULES_FILE.resolve(), (
        "helm/ioc/files/prometheus-rules.yml must link to the deploy rules"
    )


def test_migrate_job_is_a_pre_install_and_pre_upgrade_hook() -> None:
    text = (CHART / "templates" / "migrate-job.yaml").read_text()
    assert re.search(r"helm\.sh/hook:\s*pre-install,pre-upgrade", text)
    assert re.search(r"helm\.sh/hook-delete-policy:\s*before-hook-creation,hook-succeeded", text)


# ---------------------------------------------------------------- with Helm
@needs_helm
@pytest.mark.parametrize("overrides", [{}, ALL_FEATURES], ids=["defaults", "all-features"])
def test_helm_lint_passes(overrides: dict[str, Any]) -> None:
    result = HELM.lint(CHART, values(**overrides))
    assert result.ok, (
        f"{HELM.description}: errors {result.errors}, refusals {result.refusals}\n{result.output[-3000:]}"
    )


@needs_helm
@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"config": {"kafkaBootstrap": ""}}, "config.kafkaBootstrap is required"),
        ({"worker": {"autoscaling": {"enabled": True, "maxReplicas": 12}}}, "exceeds config.topicPartitions"),
        ({"kafkaTopics": {"strimzi": {"enabled": True}}}, "kafkaTopics.strimzi.clusterName is required"),
    ],
    ids=["no-kafka", "hpa-beyond-partitions", "strimzi-without-cluster"],
)
def test_helm_refuses_unusable_values(overrides: dict[str, Any], expected: str) -> None:
    result = HELM.lint(CHART, values(**overrides))
    assert any(expected in refusal for refusal in result.refusals), result.refusals


@needs_helm
def test_helm_lint_reports_schema_violations() -> None:
    assert not HELM.lint(CHART, values(worker={"replicas": "two"})).ok


@pytest.fixture(scope="module", params=["defaults", "all-features"])
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    if HELM is None:
        pytest.skip("no Helm (see module docstring)")
    overrides = {} if request.param == "defaults" else ALL_FEATURES
    try:
        return request.param, HELM.render(CHART, values(**overrides))
    except RenderError as exc:
        pytest.fail(f"{HELM.description} could not render the chart: {exc}")


def _objects(rendered: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in rendered if o["kind"] == kind}


def _pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def test_rendered_objects_match_kubernetes_schemas(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = rendered
    checked = 0
    for obj in objects:
        try:
            kubernetes_validate.validate(copy.deepcopy(obj), KUBERNETES_VERSION, strict=True)
            checked += 1
        except kubernetes_validate.utils.SchemaNotFoundError:
            assert obj["apiVersion"].split("/")[0] in {"monitoring.coreos.com", "kafka.strimzi.io"}, obj[
                "kind"
            ]
        except kubernetes_validate.utils.ValidationError as exc:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message} at {list(exc.path)}")
    assert checked >= 8


def test_rendered_kinds(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    name, objects = rendered
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objects}
    expected = {
        ("Deployment", "ioc-worker"),
        ("Deployment", "ioc-api"),
        ("Service", "ioc-api"),
        ("Service", "ioc-worker-metrics"),
        ("ConfigMap", "ioc-config"),
        ("Job", "ioc-migrate"),
        ("CronJob", "ioc-retention"),
        ("PodDisruptionBudget", "ioc-worker"),
        ("PodDisruptionBudget", "ioc-api"),
        ("Pod", "ioc-test-api"),  # the `helm test` hook
    }
    if name == "all-features":
        expected |= {
            ("HorizontalPodAutoscaler", "ioc-worker"),
            ("Ingress", "ioc-api"),
            ("NetworkPolicy", "ioc-api"),
            ("NetworkPolicy", "ioc-worker"),
            ("ServiceMonitor", "ioc-api"),
            ("ServiceMonitor", "ioc-worker"),
            ("PrometheusRule", "ioc"),
        }
    else:
        expected |= {("ServiceAccount", "ioc")}
    assert expected <= kinds, sorted(expected - kinds)
    assert not any(o["kind"] == "Secret" for o in objects), "the chart must never create a Secret"


def test_pods_are_locked_down_and_sized(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = rendered
    workloads = [o for o in objects if o["kind"] in WORKLOAD_KINDS]
    assert len(workloads) == 4
    for obj in workloads:
        pod = _pod_spec(obj)
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["automountServiceAccountToken"] is False, where
        for container in pod["containers"]:
            security = container["securityContext"]
            assert (
                security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
            )
            assert security["capabilities"]["drop"] == ["ALL"], where
            assert container["resources"]["requests"] and container["resources"]["limits"], where
            assert {"mountPath": "/tmp", "name": "tmp"} in container["volumeMounts"], where


def test_secrets_come_from_secret_references(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    name, objects = rendered
    database_secret = ("ioc-db-app", "uri") if name == "all-features" else ("ioc-secrets", "database-url")
    for obj in (o for o in objects if o["kind"] in WORKLOAD_KINDS):
        env = {e["name"]: e for c in _pod_spec(obj)["containers"] for e in c.get("env", [])}
        database = env["IOC_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        assert (database["name"], database["key"]) == database_secret
        assert env["IOC_AUTH_SECRET"]["valueFrom"]["secretKeyRef"] == {
            "name": "ioc-secrets",
            "key": "auth-secret",
        }
    config = _objects(objects, "ConfigMap")["ioc-config"]["data"]
    assert not {"IOC_DATABASE_URL", "IOC_AUTH_SECRET"} & config.keys()


def test_settings_are_real_ioc_settings(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = rendered
    config = _objects(objects, "ConfigMap")["ioc-config"]["data"]
    assert config["IOC_ENV"] == "prod" and config["IOC_API_HOST"] == "0.0.0.0"
    assert config["IOC_WORKER_WEB_HOST"] == "0.0.0.0", "workers' /metrics must be reachable from Prometheus"
    names = set(config) | {
        e["name"]
        for o in objects
        if o["kind"] in WORKLOAD_KINDS
        for c in _pod_spec(o)["containers"]
        for e in c.get("env", [])
    }
    unknown = {n for n in names if n.startswith("IOC_")} - settings_env_names()
    assert not unknown, f"not settings in ioc/config.py: {sorted(unknown)}"


def test_probes_and_commands(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = rendered
    deployments = _objects(objects, "Deployment")
    api = deployments["ioc-api"]["spec"]["template"]["spec"]["containers"][0]
    worker = deployments["ioc-worker"]["spec"]["template"]["spec"]["containers"][0]
    assert api["args"] == ["api"] and worker["args"] == ["worker"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert api[probe]["httpGet"]["path"] == "/healthz"
        assert probe in worker
    assert worker["livenessProbe"]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    env = {e["name"]: e.get("value") for e in worker["env"]}
    assert env["IOC_RECOGNITION_THREADS"] == str(DEFAULTS["worker"]["recognitionThreads"])
    assert _objects(objects, "Job")["ioc-migrate"]["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "migrate"
    ]
    cron = _pod_spec(_objects(objects, "CronJob")["ioc-retention"])
    assert cron["containers"][0]["args"] == ["migrate", "--retention"]


def test_monitoring_objects_use_the_rule_job_names(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    name, objects = rendered
    if name != "all-features":
        pytest.skip("monitoring objects are off by default")
    for component, monitor in _objects(objects, "ServiceMonitor").items():
        relabel = monitor["spec"]["endpoints"][0]["relabelings"][0]
        assert relabel["targetLabel"] == "job" and relabel["replacement"] == component  # ioc-api / ioc-worker
    rule = _objects(objects, "PrometheusRule")["ioc"]
    assert rule["spec"]["groups"] == load_yaml(RULES_FILE)["groups"]
    hpa = _objects(objects, "HorizontalPodAutoscaler")["ioc-worker"]
    assert hpa["spec"]["maxReplicas"] <= DEFAULTS["config"]["topicPartitions"]
    assert "replicas" not in _objects(objects, "Deployment")["ioc-worker"]["spec"], (
        "the HPA owns the replica count"
    )


def test_strimzi_topics_match_the_topic_layout(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    name, objects = rendered
    if name != "all-features":
        pytest.skip("KafkaTopics are off by default")
    from ioc.config import Settings
    from streams.topics import topic_specs

    settings = Settings(topic_partitions=DEFAULTS["config"]["topicPartitions"], topic_prefix="ioc")
    expected = {s.name: (s.partitions, s.compacted) for s in topic_specs(settings)}
    got = {
        t["spec"]["topicName"]: (
            t["spec"]["partitions"],
            t["spec"]["config"].get("cleanup.policy") == "compact",
        )
        for t in _objects(objects, "KafkaTopic").values()
    }
    assert got == expected
