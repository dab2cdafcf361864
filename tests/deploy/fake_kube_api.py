"""A recording stand-in for the Kubernetes API, so Helm's own install action renders the chart.

No Kubernetes API server can run here, and the Helm library we have (helm-sdkpy) exposes
install but not ``helm template``. Installing against this server gives the same thing:
Helm renders every template with the chart's values and sends each manifest here, where
it is kept, as JSON, for the tests to inspect. It answers discovery for the API groups the
chart uses, says "not found" for objects that do not exist yet, and stores what is created.

Helm validates hook resources against the server's OpenAPI schemas, which this server does
not have; callers render hooks as plain resources (see ``helm_engine``).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["FakeKubeApi"]

# group -> (version, [(plural, kind, namespaced)])
API_GROUPS: dict[str, tuple[str, list[tuple[str, str, bool]]]] = {
    "": (
        "v1",
        [
            ("secrets", "Secret", True),
            ("configmaps", "ConfigMap", True),
            ("services", "Service", True),
            ("serviceaccounts", "ServiceAccount", True),
            ("pods", "Pod", True),
            ("namespaces", "Namespace", False),
        ],
    ),
    "apps": ("v1", [("deployments", "Deployment", True)]),
    "batch": ("v1", [("jobs", "Job", True), ("cronjobs", "CronJob", True)]),
    "autoscaling": ("v2", [("horizontalpodautoscalers", "HorizontalPodAutoscaler", True)]),
    "policy": ("v1", [("poddisruptionbudgets", "PodDisruptionBudget", True)]),
    "networking.k8s.io": ("v1", [("networkpolicies", "NetworkPolicy", True), ("ingresses", "Ingress", True)]),
    "monitoring.coreos.com": (
        "v1",
        [("servicemonitors", "ServiceMonitor", True), ("prometheusrules", "PrometheusRule", True)],
    ),
    "kafka.strimzi.io": ("v1beta2", [("kafkatopics", "KafkaTopic", True)]),
}
_PLURALS = {plural for _, resources in API_GROUPS.values() for plural, _, _ in resources}


def _resource_list(group: str) -> dict[str, Any]:
    version, resources = API_GROUPS[group]
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": [
            {
                "name": plural,
                "singularName": kind.lower(),
                "namespaced": namespaced,
                "kind": kind,
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
            }
            for plural, kind, namespaced in resources
        ],
    }


def _group_list() -> dict[str, Any]:
    groups = []
    for group, (version, _) in API_GROUPS.items():
        if group:
            entry = {"groupVersion": f"{group}/{version}", "version": version}
            groups.append({"name": group, "versions": [entry], "preferredVersion": entry})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


class FakeKubeApi:
    """Serves on 127.0.0.1 (a free port) in a thread; ``created`` holds the chart's objects."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.created: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeKubeApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def kubeconfig(self, namespace: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {}}],
            "contexts": [
                {"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": namespace}}
            ],
        }

    def _store(self, path: str, obj: dict[str, Any], *, created: bool) -> None:
        with self._lock:
            self.objects[path] = obj
            if created:
                self.created.append(obj)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                """Quiet: the tests read results, not access logs."""

            def _send(self, code: int, obj: dict[str, Any]) -> None:
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _not_found(self) -> None:
                self._send(
                    404,
                    {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "status": "Failure",
                        "reason": "NotFound",
                        "code": 404,
                        "message": "not found",
                    },
                )

            def _body(self) -> dict[str, Any] | None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if "json" not in (self.headers.get("Content-Type") or ""):
                    return None  # Helm's own release record goes as protobuf: not a chart object
                return json.loads(raw or b"{}")

            def do_GET(self) -> None:  # noqa: N802
                path = self.path.split("?")[0]
                parts = path.strip("/").split("/")
                if path == "/version":
                    return self._send(200, {"major": "1", "minor": "32", "gitVersion": "v1.32.0"})
                if path == "/api":
                    return self._send(200, {"kind": "APIVersions", "versions": ["v1"]})
                if path == "/apis":
                    return self._send(200, _group_list())
                if path == "/api/v1":
                    return self._send(200, _resource_list(""))
                if len(parts) == 3 and parts[0] == "apis" and parts[1] in API_GROUPS:
                    return self._send(200, _resource_list(parts[1]))
                if path in api.objects:
                    return self._send(200, api.objects[path])
                if parts[-1] in _PLURALS:
                    items = [o for p, o in api.objects.items() if p.rsplit("/", 1)[0] == path]
                    return self._send(
                        200,
                        {
                            "kind": "List",
                            "apiVersion": "v1",
                            "metadata": {"resourceVersion": "1"},
                            "items": items,
                        },
                    )
                return self._not_found()

            def do_POST(self) -> None:  # noqa: N802
                obj = self._body()
                path = self.path.split("?")[0]
                if obj is None:
                    return self._send(
                        201, {"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "release"}}
                    )
                obj.setdefault("metadata", {}).update(resourceVersion="1", uid=f"uid-{len(api.objects)}")
                api._store(f"{path}/{obj['metadata']['name']}", obj, created=True)
                return self._send(201, obj)

            def do_PUT(self) -> None:  # noqa: N802
                obj = self._body()
                if obj is not None:
                    api._store(self.path.split("?")[0], obj, created=False)
                self._send(
                    200, obj or {"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "release"}}
                )

            def do_PATCH(self) -> None:  # noqa: N802
                self._body()
                path = self.path.split("?")[0]
                return self._send(200, api.objects[path]) if path in api.objects else self._not_found()

            def do_DELETE(self) -> None:  # noqa: N802
                self._not_found()

        return Handler
