"""Real Helm for the chart tests: lint, and render the chart's manifests.

Two ways, tried in order:

1. a ``helm`` binary on PATH: ``helm lint`` and ``helm template``;
2. the Helm Go library compiled into the ``helm-sdkpy`` wheel (``libhelm_sdkpy.so``).
   It exposes Helm's lint and install actions (no ``template``): lint runs as is, and
   rendering is an install against :class:`fake_kube_api.FakeKubeApi`, which keeps what
   Helm sends. The wheel declares Python >= 3.12, so it is not installed into the 3.11
   venv; its library is unpacked into ``.cache/helm-sdkpy/`` (docs/deployment.md,
   "Checking the deployment files") or named by ``IOC_HELM_SDK_LIB``. It runs in a child
   process (this file as a script), so the Go runtime stays out of pytest's process.

Both work on a copy of the chart whose ``values.yaml`` is the defaults merged with the
overrides under test (the library reads only ``values.yaml``).
"""

from __future__ import annotations

import copy
import ctypes
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
SDK_LIB_RELATIVE = Path("helm_sdkpy/_lib/linux-amd64/libhelm_sdkpy.so")
SEVERITY_ERROR = 3  # Helm's support.ErrorSev
RELEASE, NAMESPACE = "ioc", "ioc"
# In lint mode Helm turns `required` and `fail` into log lines instead of errors.
_REFUSAL = re.compile(r'(?:funcMap fail|missing required values?) message="(?P<message>.*)"')
_HOOK_ANNOTATION = re.compile(r"^\s*helm\.sh/hook(-weight|-delete-policy)?:.*\n", re.MULTILINE)


@dataclass(frozen=True)
class LintResult:
    """``errors``: chart paths (library) or lines (CLI) with error severity.
    ``refusals``: messages of `required`/`fail`, i.e. why an install would be refused.
    """

    errors: list[str]
    refusals: list[str]
    output: str

    @property
    def ok(self) -> bool:
        return not self.errors and not self.refusals


class RenderError(RuntimeError):
    """Helm refused to render the chart with these values."""


def deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Helm's rule for -f files: maps merge key by key, anything else replaces."""
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def chart_copy(chart: Path, values: dict[str, Any], dest: Path, *, hooks_as_resources: bool = False) -> Path:
    """The chart with symlinks resolved (as `helm package` does) and ``values`` as values.yaml.

    ``hooks_as_resources`` drops the helm.sh/hook annotations so hook templates render as
    ordinary objects (the fake API cannot validate hooks against OpenAPI schemas).
    """
    target = dest / chart.name
    shutil.copytree(chart, target, symlinks=False)
    (target / "values.yaml").write_text(yaml.safe_dump(values, sort_keys=False))
    if hooks_as_resources:
        for template in (target / "templates").rglob("*.yaml"):
            text = template.read_text()
            template.write_text(_HOOK_ANNOTATION.sub("", text))
    return target


def sdk_library() -> Path | None:
    """The Helm library from the helm-sdkpy wheel, if it is on this machine."""
    candidates = [os.environ.get("IOC_HELM_SDK_LIB", ""), str(REPO / ".cache/helm-sdkpy" / SDK_LIB_RELATIVE)]
    try:
        import helm_sdkpy  # type: ignore[import-not-found]  # Python >= 3.12 environments

        candidates.append(str(Path(helm_sdkpy.__file__).parent.parent / SDK_LIB_RELATIVE))
    except ImportError:
        pass
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


class Helm:
    """Lints and renders the chart with values overrides, through the CLI or the library."""

    def __init__(self, *, cli: str | None, library: Path | None) -> None:
        if cli is None and library is None:
            raise ValueError("need the helm CLI or the Helm library")
        self.cli = cli
        self.library = library

    @classmethod
    def find(cls) -> Helm | None:
        cli, library = shutil.which("helm"), sdk_library()
        return cls(cli=cli, library=library) if (cli or library) else None

    @property
    def description(self) -> str:
        return f"helm CLI {self.cli}" if self.cli else f"Helm library {self.library}"

    def lint(self, chart: Path, values: dict[str, Any]) -> LintResult:
        with tempfile.TemporaryDirectory() as tmp:
            copied = chart_copy(chart, values, Path(tmp))
            return self._lint_cli(copied) if self.cli else self._lint_library(copied)

    def render(self, chart: Path, values: dict[str, Any]) -> list[dict[str, Any]]:
        """Every manifest the chart produces with these values (hooks included), as dicts."""
        with tempfile.TemporaryDirectory() as tmp:
            if self.cli:
                copied = chart_copy(chart, values, Path(tmp))
                done = self._run([self.cli, "template", RELEASE, str(copied), "--namespace", NAMESPACE])
                if done.returncode != 0:
                    raise RenderError(done.stderr.strip())
                return [doc for doc in yaml.safe_load_all(done.stdout) if doc]
            copied = chart_copy(chart, values, Path(tmp), hooks_as_resources=True)
            done = self._run([sys.executable, __file__, "render", str(self.library), str(copied)])
            if done.returncode != 0:
                raise RenderError(done.stderr.strip()[-4000:])
            return json.loads(done.stdout)

    @staticmethod
    def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, capture_output=True, text=True, timeout=180)

    def _lint_cli(self, chart: Path) -> LintResult:
        done = self._run([self.cli, "lint", str(chart)])
        output = done.stdout + done.stderr
        errors = [line for line in output.splitlines() if "[ERROR]" in line]
        if done.returncode != 0 and not errors:
            errors = [output.strip() or f"helm lint exited {done.returncode}"]
        rendered = self._run([self.cli, "template", RELEASE, str(chart)])
        refusals = [rendered.stderr.strip()] if rendered.returncode != 0 else []
        return LintResult(errors, refusals, output + rendered.stderr)

    def _lint_library(self, chart: Path) -> LintResult:
        done = self._run([sys.executable, __file__, "lint", str(self.library), str(chart)])
        if done.returncode != 0:
            raise RuntimeError(f"Helm library lint failed to run: {done.stderr[-2000:]}")
        result = json.loads(done.stdout)
        errors = [m["Path"] for m in result.get("Messages") or [] if m.get("Severity", 0) >= SEVERITY_ERROR]
        refusals = sorted({m["message"] for m in _REFUSAL.finditer(done.stderr)})
        return LintResult(errors, refusals, done.stdout + done.stderr)


# ---------------------------------------------------------------- child-process side
def _load(library: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(library))
    lib.helm_sdkpy_config_create.argtypes = [ctypes.c_char_p] * 4 + [ctypes.POINTER(ctypes.c_ulonglong)]
    lib.helm_sdkpy_lint.argtypes = [ctypes.c_ulonglong, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.helm_sdkpy_install.argtypes = (
        [ctypes.c_ulonglong] + [ctypes.c_char_p] * 5 + [ctypes.POINTER(ctypes.c_void_p)]
    )
    lib.helm_sdkpy_last_error.restype = ctypes.c_void_p
    return lib


def _check(lib: ctypes.CDLL, status: int) -> None:
    if status != 0:
        raise RuntimeError(ctypes.string_at(lib.helm_sdkpy_last_error()).decode())


def _config(lib: ctypes.CDLL, kubeconfig: str = "") -> ctypes.c_ulonglong:
    handle = ctypes.c_ulonglong()
    context = b"fake" if kubeconfig else b""
    _check(
        lib,
        lib.helm_sdkpy_config_create(
            NAMESPACE.encode(), kubeconfig.encode(), context, b"{}", ctypes.byref(handle)
        ),
    )
    return handle


def _library_lint(library: Path, chart: Path) -> dict[str, Any]:
    lib = _load(library)
    out = ctypes.c_void_p()
    _check(lib, lib.helm_sdkpy_lint(_config(lib), str(chart).encode(), ctypes.byref(out)))
    return json.loads(ctypes.string_at(out.value).decode())


def _library_render(library: Path, chart: Path) -> list[dict[str, Any]]:
    sys.path.insert(0, str(Path(__file__).parent))
    from fake_kube_api import FakeKubeApi

    lib = _load(library)
    with FakeKubeApi() as api, tempfile.TemporaryDirectory() as tmp:
        kubeconfig = Path(tmp) / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump(api.kubeconfig(NAMESPACE)))
        options = {
            "wait": False,
            "timeout_seconds": 60,
            "disable_openapi_validation": True,
            "server_side_apply": "false",
        }
        out = ctypes.c_void_p()
        _check(
            lib,
            lib.helm_sdkpy_install(
                _config(lib, str(kubeconfig)),
                RELEASE.encode(),
                str(chart).encode(),
                b"{}",
                b"",
                json.dumps(options).encode(),
                ctypes.byref(out),
            ),
        )
        manifests = [copy.deepcopy(obj) for obj in api.created]
    for obj in manifests:
        for key in ("resourceVersion", "uid"):
            obj["metadata"].pop(key, None)
    return manifests


if __name__ == "__main__":
    action, library_path, chart_path = sys.argv[1:4]
    if action == "lint":
        print(json.dumps(_library_lint(Path(library_path), Path(chart_path))))
    else:
        print(json.dumps(_library_render(Path(library_path), Path(chart_path))))
