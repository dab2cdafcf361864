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
from deploy_files import CHART, DASHBOARDS, REPO, RULES_FILE, load_yaml, settings_env_names
from helm_engine import Helm, RenderError, deep_merge

from ioc.commands.cameras import read_camera_file

KUBERNETES_VERSION = "1.32.0"
HELM = Helm.find()
needs_helm = pytest.mark.skipif(
    HELM is None,
    reason="no Helm: neither a helm CLI on PATH nor the helm-sdkpy library in .cache/helm-sdkpy "
    "(docs/deployment.md, 'Checking the deployment files')",
)
DEFAULTS: dict[str, Any] = load_yaml(CHART / "values.yaml")
DASHBOARD_NAMES = sorted(p.stem.removeprefix("ioc-") for p in DASHBOARDS.glob("*.json"))
PROVINCE_FILE = REPO / "helm" / "examples" / "province.yaml"
ALL_FEATURES: dict[str, Any] = {
    "image": {"digest": "sha256:" + "a" * 64},
    "config": {"extra": {"IOC_SINK_BATCH_SIZE": "500"}},
    "worker": {"autoscaling": {"enabled": True, "maxReplicas": 8}, "preStopSleepSeconds": 3},
    "api": {
        # a list is joined into IOC_API_TRUSTED_PROXIES
        "trustedProxies": ["10.244.0.0/16", "fd00:10:244::/56"],
        "ingress": {
            "enabled": True,
            "className": "nginx",
            "tls": [{"secretName": "ioc-tls", "hosts": ["ioc.example.internal"]}],
        },
    },
    "metrics": {
        "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
        "prometheusRule": {"enabled": True},
        "grafanaDashboards": {"enabled": True, "annotations": {"grafana_folder": "IOC"}},
    },
    "networkPolicy": {
        "enabled": True,
        "apiFrom": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}],
        "metricsFrom": [
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
        ],
        "egress": {"restrict": True, "to": [{"ports": [{"protocol": "TCP", "port": 9092}]}]},
    },
    "kafkaTopics": {
        "strimzi": {
            "enabled": True,
            "clusterName": "ioc-kafka",
            "retentionMsByTopic": {"camera-frames": 43_200_000},
        }
    },
    "secrets": {"databaseUrl": {"secretName": "ioc-db-app", "key": "uri"}},
    "cameras": [
        {"id": "TN-CP03-CAM1", "checkpoint": "TN-CP03", "intervalSeconds": 30, "lookCloser": "never"},
        {"id": "HN-ST12-CAM1", "checkpoint": "HN-ST12", "lookCloser": "always"},
        {"id": "TN-CP03-CAM2", "checkpoint": "TN-CP03"},
    ],
    "camerasPrune": True,
}
WORKLOAD_KINDS = {"Deployment", "Job", "CronJob"}
# Renderings with the optional objects switched on.
FEATURED = {"all-features", "province"}


_TLS_INGRESS = {"enabled": True, "tls": [{"secretName": "ioc-tls", "hosts": ["ioc.example.internal"]}]}


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
        "prometheusrule.yaml",
        "grafana-dashboards.yaml",
        "kafkatopics.yaml",
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
        {"api": {"preStopSleepSeconds": -1}},
        {"kafkaTopics": {"strimzi": {"retentionMsByTopic": {"frames": 1000}}}},
        {"metrics": {"grafanaDashboards": {"labels": {"grafana_dashboard": 1}}}},
        {"cameras": [{"id": "CAM,1", "checkpoint": "CP01"}]},
        {"cameras": [{"id": "CAM1"}]},
        {"cameras": [{"id": "CAM1", "checkpoint": "CP01", "lookCloser": "sometimes"}]},
        {"cameras": [{"id": "CAM1", "checkpoint": "CP01", "intervalSeconds": 0}]},
        {"cameras": [{"id": "CAM1", "checkpoint": "CP01", "intervalSeconds": 86401}]},
        {"api": {"trustedProxies": "*"}},
        {"api": {"trustedProxies": "proxy.example.internal"}},
        {"api": {"trustedProxies": ["10.244.0.0/16", "*"]}},
        {"worker": {"minReadySeconds": -1}},
    ],
    ids=[
        "replicas-type",
        "secret-in-extra",
        "non-ioc-extra",
        "env",
        "no-secret-name",
        "root",
        "unknown-key",
        "negative-prestop",
        "unknown-topic-retention",
        "label-not-string",
        "camera-id-with-comma",
        "camera-without-checkpoint",
        "camera-look-closer",
        "camera-interval",
        "camera-interval-over-a-day",  # as the API and ioc cameras refuse it
        "trust-everyone",  # anyone could then write X-Forwarded-For
        "trusted-proxy-by-name",  # never matches a client address
        "trusted-proxies-list-with-everyone",
        "negative-min-ready",
    ],
)
def test_schema_rejects_bad_values(bad: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(values(**bad), _schema())


def test_prometheus_rules_file_is_the_deploy_one() -> None:
    linked = CHART / "files" / "prometheus-rules.yml"
    assert linked.resolve() == RULES_FILE.resolve(), (
        "helm/ioc/files/prometheus-rules.yml must link to the deploy rules"
    )


def test_dashboards_folder_is_the_deploy_one() -> None:
    linked = CHART / "files" / "dashboards"
    assert linked.resolve() == DASHBOARDS.resolve(), "helm/ioc/files/dashboards must link to deploy/grafana"


def test_province_example_matches_the_schema() -> None:
    province = values(**load_yaml(PROVINCE_FILE))
    jsonschema.validate(province, _schema())
    assert province["worker"]["autoscaling"]["maxReplicas"] <= province["config"]["topicPartitions"]


# Figures values.yaml cites for its resource requests; each must be a measured one.
CITED_FIGURES = ("42.8 frames/s", "14.9 ms", "16,916", "278 MB", "665.8", "1.5 ms")


def test_resource_sizing_cites_the_measured_figures() -> None:
    comments = " ".join(
        line.split("#", 1)[1] for line in (CHART / "values.yaml").read_text().splitlines() if "#" in line
    )
    measured = [REPO / "docs" / name for name in ("benchmarks.md", "benchmark-history.md")]
    benchmarks = " ".join(" ".join(path.read_text().split()) for path in measured)
    for figure in CITED_FIGURES:
        assert figure in comments, f"values.yaml no longer cites {figure}"
        number = figure.split()[0]
        assert number in benchmarks, f"{figure} is not a figure of docs/benchmarks.md or its history"


def test_migrate_job_is_a_pre_install_and_pre_upgrade_hook() -> None:
    text = (CHART / "templates" / "migrate-job.yaml").read_text()
    assert re.search(r"helm\.sh/hook:\s*pre-install,pre-upgrade", text)
    assert re.search(r"helm\.sh/hook-delete-policy:\s*before-hook-creation,hook-succeeded", text)


_TEMPLATE_NAME = re.compile(r'^  name: \{\{ include "ioc\.fullname" [.$] \}\}(?P<suffix>\S*)$', re.MULTILINE)


def _hooks() -> dict[tuple[str, str], dict[str, str]]:
    """(kind, name as rendered for release "ioc") -> its helm.sh/hook* annotations, read from the
    templates: the Helm library renders hooks as plain objects (helm_engine.chart_copy)."""
    hooks: dict[tuple[str, str], dict[str, str]] = {}
    for template in (CHART / "templates").glob("*.yaml"):
        for document in template.read_text().split("\n---"):
            found = re.findall(r"^\s+helm\.sh/(hook[-a-z]*):\s*(\S+)\s*$", document, re.MULTILINE)
            annotations = {key: value.strip("'\"") for key, value in found}
            kind, name = re.search(r"^kind: (\w+)$", document, re.MULTILINE), _TEMPLATE_NAME.search(document)
            if annotations and kind and name:
                hooks[(kind.group(1), "ioc" + name.group("suffix"))] = annotations
    return hooks


def test_cameras_are_registered_after_the_migrations_and_before_the_workers() -> None:
    """A post-install hook ran after the workers had started: on a first install onto a Kafka that
    already holds camera traffic they dead-lettered every frame as from an unknown camera."""
    hooks = _hooks()
    migrate, job, configmap = (
        hooks[("Job", "ioc-migrate")],
        hooks[("Job", "ioc-cameras")],
        hooks[("ConfigMap", "ioc-cameras")],
    )
    for hook in (job, configmap):
        assert hook["hook"] == "pre-install,pre-upgrade"
        assert hook["hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    weight = {name: int(hook.get("hook-weight", "0")) for name, hook in
              (("migrate", migrate), ("job", job), ("configmap", configmap))}
    assert weight["migrate"] < weight["job"], "the cameras table exists once the migrations ran"
    assert weight["configmap"] < weight["job"], "the Job mounts the ConfigMap: it must exist first"


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
        ({"worker": {"replicas": 9}}, "worker.replicas (9) exceeds config.topicPartitions (8)"),
        ({"api": {"preStopSleepSeconds": 30}}, "must be shorter than api.terminationGracePeriodSeconds"),
        (
            {"worker": {"preStopSleepSeconds": 90, "terminationGracePeriodSeconds": 60}},
            "must be shorter than worker.terminationGracePeriodSeconds",
        ),
        ({"api": {"ingress": {"enabled": True}}}, "api.ingress.tls is empty"),
        ({"api": {"metricsPort": 8000}}, "api.metricsPort must differ from api.port"),
        ({"api": {"ingress": _TLS_INGRESS}}, "api.trustedProxies is empty"),
        ({"api": {"ingress": _TLS_INGRESS, "trustedProxies": []}}, "api.trustedProxies is empty"),
        (
            {
                "api": {"trustedProxies": "10.0.0.0/8"},
                "config": {"extra": {"IOC_API_TRUSTED_PROXIES": "10.0.0.1"}},
            },
            "IOC_API_TRUSTED_PROXIES is set twice",
        ),
    ],
    ids=[
        "no-kafka",
        "hpa-beyond-partitions",
        "strimzi-without-cluster",
        "replicas-beyond-partitions",
        "api-prestop-beyond-grace",
        "worker-prestop-beyond-grace",
        "ingress-without-tls",
        "api-metrics-on-the-api-port",
        "ingress-without-trusted-proxies",  # sign-in throttling would key on the controller
        "ingress-with-no-trusted-proxy-listed",
        "trusted-proxies-twice",
    ],
)
def test_helm_refuses_unusable_values(overrides: dict[str, Any], expected: str) -> None:
    result = HELM.lint(CHART, values(**overrides))
    assert any(expected in refusal for refusal in result.refusals), result.refusals


@needs_helm
def test_helm_lint_reports_schema_violations() -> None:
    assert not HELM.lint(CHART, values(worker={"replicas": "two"})).ok


@needs_helm
def test_a_numeric_image_tag_is_a_tag() -> None:
    """The schema takes a number (``--set image.tag=1234`` gives one); the image reference must
    still read repository:1234."""
    overrides = {"image": {"tag": 1234}}
    jsonschema.validate(values(**overrides), _schema())
    objects = HELM.render(CHART, values(**overrides))
    pods = [_pod_spec(o) for o in objects if o["kind"] in WORKLOAD_KINDS]
    pods += [o["spec"] for o in objects if o["kind"] == "Pod"]  # the `helm test` hook
    assert {c["image"] for pod in pods for c in pod["containers"]} == {"ioc:1234"}


def _policy_rules(objects: list[dict[str, Any]], component: str) -> dict[int, list[dict[str, Any]] | None]:
    """Port -> the peers a NetworkPolicy's ingress rule admits there (None: any source)."""
    policy = _objects(objects, "NetworkPolicy")[f"ioc-{component}"]
    rules: dict[int, list[dict[str, Any]] | None] = {}
    for rule in policy["spec"]["ingress"]:
        for port in rule["ports"]:
            rules[port["port"]] = rule.get("from")
    return rules


@needs_helm
def test_scrapers_reach_the_api_metrics_when_only_the_api_is_restricted() -> None:
    """apiFrom set, metricsFrom empty (any source): Prometheus still scrapes the API."""
    ingress_nginx = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    objects = HELM.render(CHART, values(networkPolicy={"enabled": True, "apiFrom": [ingress_nginx]}))
    api = DEFAULTS["api"]
    rules = _policy_rules(objects, "api")
    assert set(rules) == {api["port"], api["metricsPort"]}
    assert rules[api["metricsPort"]] is None, "metricsFrom empty means any source"
    assert ingress_nginx in rules[api["port"]]
    assert _policy_rules(objects, "worker") == {DEFAULTS["worker"]["metricsPort"]: None}


@needs_helm
def test_ingress_without_tls_only_when_asked_for() -> None:
    plain = {
        "api": {"trustedProxies": "10.244.0.0/16", "ingress": {"enabled": True, "allowWithoutTls": True}}
    }
    assert HELM.lint(CHART, values(**plain)).ok
    ingress = _objects(HELM.render(CHART, values(**plain)), "Ingress")["ioc-api"]
    assert "tls" not in ingress["spec"]


@pytest.fixture(scope="module", params=["defaults", "all-features", "province"])
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    if HELM is None:
        pytest.skip("no Helm (see module docstring)")
    overrides = {"defaults": {}, "all-features": ALL_FEATURES, "province": load_yaml(PROVINCE_FILE)}[
        request.param
    ]
    try:
        return request.param, HELM.render(CHART, values(**overrides))
    except RenderError as exc:
        pytest.fail(f"{HELM.description} could not render the chart: {exc}")


def _objects(rendered: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in rendered if o["kind"] == kind}


def _partitions(objects: list[dict[str, Any]]) -> int:
    return int(_objects(objects, "ConfigMap")["ioc-config"]["data"]["IOC_TOPIC_PARTITIONS"])


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
        ("Service", "ioc-api-metrics"),
        ("ConfigMap", "ioc-config"),
        ("Job", "ioc-migrate"),
        ("CronJob", "ioc-retention"),
        ("PodDisruptionBudget", "ioc-worker"),
        ("PodDisruptionBudget", "ioc-api"),
        ("Pod", "ioc-test-api"),  # the `helm test` hook
    }
    if name in FEATURED:
        expected |= {
            ("HorizontalPodAutoscaler", "ioc-worker"),
            ("Ingress", "ioc-api"),
            ("NetworkPolicy", "ioc-api"),
            ("NetworkPolicy", "ioc-worker"),
            ("ServiceMonitor", "ioc-api"),
            ("ServiceMonitor", "ioc-worker"),
            ("PrometheusRule", "ioc"),
        } | {("ConfigMap", f"ioc-dashboard-{board}") for board in DASHBOARD_NAMES}
    else:
        expected |= {("ServiceAccount", "ioc")}
    assert expected <= kinds, sorted(expected - kinds)
    assert not any(o["kind"] == "Secret" for o in objects), "the chart must never create a Secret"


def test_pods_are_locked_down_and_sized(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    name, objects = rendered
    workloads = [o for o in objects if o["kind"] in WORKLOAD_KINDS]
    assert len(workloads) == (5 if name == "all-features" else 4)  # its cameras' Job
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
    database_secret = ("ioc-db-app", "uri") if name in FEATURED else ("ioc-secrets", "database-url")
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
    for probe in ("startupProbe", "readinessProbe"):
        assert api[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    # /healthz fails while the database is away: restarting would drop every live alert stream
    assert api["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "http"}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert probe in worker
    assert worker["livenessProbe"]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    env = {e["name"]: e.get("value") for e in worker["env"]}
    assert env["IOC_RECOGNITION_THREADS"] == str(DEFAULTS["worker"]["recognitionThreads"])
    assert _objects(objects, "Job")["ioc-migrate"]["spec"]["template"]["spec"]["containers"][0]["args"] == [
        "migrate"
    ]
    cron = _pod_spec(_objects(objects, "CronJob")["ioc-retention"])
    assert cron["containers"][0]["args"] == ["migrate", "--retention"]


def test_cameras_in_values_are_registered_before_install_and_upgrade(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    """The Job runs `ioc cameras import` on a file that the command reads back as the cameras
    listed in values (with camerasPrune, as the whole registry); without cameras there is no Job.
    When it runs: test_cameras_are_registered_after_the_migrations_and_before_the_workers."""
    name, objects = rendered
    jobs = _objects(objects, "Job")
    if name != "all-features":
        assert "ioc-cameras" not in jobs
        return
    job = jobs["ioc-cameras"]
    container = _pod_spec(job)["containers"][0]
    assert container["args"][:2] == ["cameras", "import"] and container["args"][3:] == ["--prune"]
    folder, file = container["args"][2].rsplit("/", 1)
    assert {"name": "cameras", "mountPath": folder, "readOnly": True} in container["volumeMounts"]
    volume = next(v for v in _pod_spec(job)["volumes"] if v["name"] == "cameras")
    text = _objects(objects, "ConfigMap")[volume["configMap"]["name"]]["data"][file]
    cameras, errors = read_camera_file(text)
    assert not errors
    assert [(c.camera_id, c.checkpoint_id, c.expected_interval_s, c.look_closer) for c in cameras] == [
        ("TN-CP03-CAM1", "TN-CP03", 30.0, "never"),
        ("HN-ST12-CAM1", "HN-ST12", 60.0, "always"),
        ("TN-CP03-CAM2", "TN-CP03", 60.0, None),
    ]


def test_api_metrics_have_a_port_the_ingress_does_not_route_to(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    """The API serves /metrics on api.metricsPort (IOC_API_METRICS_PORT), never on the port the
    Ingress routes to (the metrics say what the watchlist matches); the ServiceMonitor scrapes it."""
    name, objects = rendered
    config = _objects(objects, "ConfigMap")["ioc-config"]["data"]
    container = _pod_spec(_objects(objects, "Deployment")["ioc-api"])["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": int(config["IOC_API_PORT"]), "metrics": int(config["IOC_API_METRICS_PORT"])}
    assert ports["http"] != ports["metrics"]
    services = _objects(objects, "Service")
    # api.service.type may make the API Service a LoadBalancer or NodePort: /metrics is not on it
    http = services["ioc-api"]["spec"]["ports"]
    assert [(p["name"], p["targetPort"]) for p in http] == [("http", "http")]
    assert ports["metrics"] not in {p["port"] for p in http}
    metrics = services["ioc-api-metrics"]["spec"]
    assert metrics.get("type", "ClusterIP") == "ClusterIP" and metrics["clusterIP"] == "None"
    assert [(p["name"], p["port"], p["targetPort"]) for p in metrics["ports"]] == [
        ("metrics", ports["metrics"], "metrics")
    ]
    assert metrics["selector"] == services["ioc-api"]["spec"]["selector"]
    for ingress in _objects(objects, "Ingress").values():
        backends = [path["backend"]["service"] for rule in ingress["spec"]["rules"]
                    for path in rule["http"]["paths"]]
        assert backends and all(b["port"] == {"name": "http"} for b in backends)
    if name in FEATURED:
        for component, monitor in _objects(objects, "ServiceMonitor").items():
            assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
            selector = monitor["spec"]["selector"]["matchLabels"].items()
            selected = [n for n, svc in services.items() if selector <= svc["metadata"]["labels"].items()]
            assert selected == [f"{component}-metrics"], f"{component}: scrapes {selected}"


def test_api_metrics_service_stays_inside_the_cluster_whatever_the_api_service_type() -> None:
    if HELM is None:
        pytest.skip("no Helm (see module docstring)")
    objects = HELM.render(CHART, values(api={"service": {"type": "LoadBalancer"}}))
    services = _objects(objects, "Service")
    assert services["ioc-api"]["spec"]["type"] == "LoadBalancer"
    assert [p["name"] for p in services["ioc-api"]["spec"]["ports"]] == ["http"]
    assert services["ioc-api-metrics"]["spec"]["type"] == "ClusterIP"


def test_api_trusts_its_reverse_proxies(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    """IOC_API_TRUSTED_PROXIES, comma-separated, from api.trustedProxies; unset without it."""
    name, objects = rendered
    config = _objects(objects, "ConfigMap")["ioc-config"]["data"]
    expected = {
        "defaults": None,
        "all-features": "10.244.0.0/16,fd00:10:244::/56",
        "province": "10.244.0.0/16",
    }
    assert config.get("IOC_API_TRUSTED_PROXIES") == expected[name]
    if name in FEATURED:
        assert _objects(objects, "Ingress"), "an Ingress in front: the proxies must be known"
        from ioc.config import Settings

        assert Settings(api_trusted_proxies=config["IOC_API_TRUSTED_PROXIES"]).api_trusted_proxies


@needs_helm
@pytest.mark.parametrize(
    "overrides",
    [
        {"api": {"ingress": {**_TLS_INGRESS, "allowWithoutTrustedProxies": True}}},
        {
            "api": {
                "ingress": _TLS_INGRESS,
                "extraEnv": [{"name": "IOC_API_TRUSTED_PROXIES", "value": "10.0.0.0/8"}],
            }
        },
        {"api": {"ingress": _TLS_INGRESS}, "config": {"extra": {"IOC_API_TRUSTED_PROXIES": "10.0.0.0/8"}}},
    ],
    ids=["opted-out", "in-extra-env", "in-config-extra"],  # the last two: where this chart used to say
)
def test_ingress_with_proxies_set_elsewhere_or_explicitly_without(overrides: dict[str, Any]) -> None:
    result = HELM.lint(CHART, values(**overrides))
    assert result.ok, result.refusals


def test_worker_rollout_waits_for_each_rebalance(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    """Readiness (/metrics) comes before the group join: minReadySeconds holds the rollout
    so that replacements do not rebalance back to back."""
    _, objects = rendered
    spec = _objects(objects, "Deployment")["ioc-worker"]["spec"]
    assert spec["minReadySeconds"] == DEFAULTS["worker"]["minReadySeconds"] == 30
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


def test_pre_install_hooks_need_no_ordinary_release_object(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    """Pre-install hooks run before the release's own objects exist: what a hook Job mounts or reads
    its settings from must be a hook of a lower weight, and it may not run under the release's
    ServiceAccount (created with the ordinary objects)."""
    _, objects = rendered
    hooks = _hooks()
    jobs = {n: j for n, j in _objects(objects, "Job").items() if ("Job", n) in hooks}
    assert "ioc-migrate" in jobs
    for name, job in jobs.items():
        assert "pre-install" in hooks[("Job", name)]["hook"].split(","), name
        weight = int(hooks[("Job", name)].get("hook-weight", "0"))
        pod = _pod_spec(job)
        assert "serviceAccountName" not in pod, f"{name}: the release's ServiceAccount does not exist yet"
        configmaps = {v["configMap"]["name"] for v in pod.get("volumes", []) if "configMap" in v}
        for container in pod["containers"]:
            configmaps |= {
                e["configMapRef"]["name"] for e in container.get("envFrom", []) if "configMapRef" in e
            }
            env = {e["name"]: e.get("value") for e in container["env"]}
            assert env["IOC_KAFKA_BOOTSTRAP"] and env["IOC_TOPIC_PREFIX"], f"{name}: settings inline"
        for configmap in configmaps:
            hook = hooks.get(("ConfigMap", configmap))
            assert hook and "pre-install" in hook["hook"].split(","), f"{name} needs {configmap}: not a hook"
            assert int(hook.get("hook-weight", "0")) < weight, f"{configmap} must exist before {name}"


def test_network_policy_admits_clients_scrapers_and_the_helm_test(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    """With apiFrom set: those peers and the release's `helm test` pod on the API port, the
    scrapers (metricsFrom) on the metrics ports and nowhere else."""
    name, objects = rendered
    if name not in FEATURED:
        assert not _objects(objects, "NetworkPolicy"), "network policies are off by default"
        return
    overrides = ALL_FEATURES if name == "all-features" else load_yaml(PROVINCE_FILE)
    policy = values(**overrides)["networkPolicy"]
    api, worker = values(**overrides)["api"], values(**overrides)["worker"]
    test_pod = _objects(objects, "Pod")["ioc-test-api"]
    rules = _policy_rules(objects, "api")
    assert set(rules) == {api["port"], api["metricsPort"]}
    clients = rules[api["port"]]
    assert clients[: len(policy["apiFrom"])] == policy["apiFrom"]
    (test_peer,) = clients[len(policy["apiFrom"]):]
    assert set(test_peer) == {"podSelector"}, "the test pod runs in the release's namespace"
    assert test_peer["podSelector"]["matchLabels"].items() <= test_pod["metadata"]["labels"].items()
    assert test_pod["metadata"]["labels"]["app.kubernetes.io/component"] == "test"
    assert rules[api["metricsPort"]] == policy["metricsFrom"]
    assert _policy_rules(objects, "worker") == {worker["metricsPort"]: policy["metricsFrom"]}


def test_monitoring_objects_use_the_rule_job_names(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    name, objects = rendered
    if name not in FEATURED:
        pytest.skip("monitoring objects are off by default")
    for component, monitor in _objects(objects, "ServiceMonitor").items():
        relabel = monitor["spec"]["endpoints"][0]["relabelings"][0]
        assert relabel["targetLabel"] == "job" and relabel["replacement"] == component  # ioc-api / ioc-worker
    rule = _objects(objects, "PrometheusRule")["ioc"]
    assert rule["spec"]["groups"] == load_yaml(RULES_FILE)["groups"]
    hpa = _objects(objects, "HorizontalPodAutoscaler")["ioc-worker"]
    assert hpa["spec"]["maxReplicas"] <= _partitions(objects)
    assert "replicas" not in _objects(objects, "Deployment")["ioc-worker"]["spec"], (
        "the HPA owns the replica count"
    )


def test_strimzi_topics_match_the_topic_layout(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    name, objects = rendered
    if name not in FEATURED:
        pytest.skip("KafkaTopics are off by default")
    from ioc.config import Settings
    from streams.topics import topic_specs

    settings = Settings(topic_partitions=_partitions(objects), topic_prefix="ioc")
    expected = {s.name: (s.partitions, s.compacted) for s in topic_specs(settings)}
    got = {
        t["spec"]["topicName"]: (
            t["spec"]["partitions"],
            t["spec"]["config"].get("cleanup.policy") == "compact",
        )
        for t in _objects(objects, "KafkaTopic").values()
    }
    assert got == expected

    retention = {
        topic["spec"]["topicName"]: topic["spec"]["config"].get("retention.ms")
        for topic in _objects(objects, "KafkaTopic").values()
    }
    assert retention["ioc.camera-frames"] == 43_200_000, "frames keep their own, shorter retention"
    assert retention["ioc.plate-reads"] == DEFAULTS["kafkaTopics"]["strimzi"]["retentionMs"]
    assert retention["ioc.watchlist"] is None, "the compacted watchlist keeps every entry"


def test_graceful_shutdown(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    """SIGTERM leaves time to finish: the API first leaves the Service (preStop pause), the
    worker finishes its batch and commits; a pause never eats the whole grace period."""
    name, objects = rendered
    deployments = _objects(objects, "Deployment")
    for deployment in ("ioc-api", "ioc-worker"):
        pod = deployments[deployment]["spec"]["template"]["spec"]
        grace = pod["terminationGracePeriodSeconds"]
        hook = pod["containers"][0].get("lifecycle", {}).get("preStop")
        if hook is not None:
            assert hook["exec"]["command"][0] == "sleep"
            assert int(hook["exec"]["command"][1]) < grace, deployment
        if deployment == "ioc-api":
            assert hook is not None, "the API needs a pause to leave the Service's endpoints"
        else:
            assert grace >= 60, "a worker needs time to flush its batches and commit offsets"
            assert (hook is not None) == (name == "all-features"), "worker preStop only when asked for"


def test_dashboards_are_shipped_for_the_grafana_sidecar(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    name, objects = rendered
    maps = {n: o for n, o in _objects(objects, "ConfigMap").items() if n.startswith("ioc-dashboard-")}
    if name not in FEATURED:
        assert not maps, "dashboards are off by default"
        return
    assert set(maps) == {f"ioc-dashboard-{board}" for board in DASHBOARD_NAMES}
    for configmap in maps.values():
        assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert configmap["metadata"]["annotations"]["grafana_folder"] == "IOC"
        ((filename, text),) = configmap["data"].items()
        assert json.loads(text) == json.loads((DASHBOARDS / filename).read_text())


def test_province_sizing(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    """The example for docs/operations.md: workers within the partitions, 2 CPUs each."""
    name, objects = rendered
    if name != "province":
        pytest.skip("the province example only")
    hpa = _objects(objects, "HorizontalPodAutoscaler")["ioc-worker"]["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"], _partitions(objects)) == (8, 32, 64)
    worker = _objects(objects, "Deployment")["ioc-worker"]["spec"]["template"]["spec"]["containers"][0]
    assert worker["resources"]["limits"]["cpu"] == "2"
