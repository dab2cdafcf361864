"""deploy/compose.yaml, deploy/Dockerfile and deploy/.env.example, checked statically
(no Docker engine here): the compose-spec schema, healthchecks, start order, loopback-only
ports, required secret references, and settings that exist in ioc.config."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
from deploy_files import COMPOSE_FILE, DEPLOY, load_yaml, settings_env_names

IOC_SERVICES = {"topics", "migrate", "retention", "worker", "api", "simulator", "demo-cameras"}
LONG_RUNNING = {"kafka", "timescaledb", "worker", "api", "prometheus", "grafana"}
ONE_SHOT = {"topics", "migrate", "db-grants", "demo-cameras"}
# Interpolations: ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}
_INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?:(:?[-?])([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE_FILE)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def test_compose_file_is_valid_compose_spec(compose: dict[str, Any]) -> None:
    import check_jsonschema
    import jsonschema

    schema_path = Path(check_jsonschema.__file__).parent / "builtin_schemas" / "vendor" / "compose-spec.json"
    schema = json.loads(schema_path.read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(compose), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])


def test_all_services_present(services: dict[str, Any]) -> None:
    assert {"kafka", "timescaledb", "migrate", "worker", "api", "prometheus", "grafana"} <= services.keys()
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert re.match(
        r"^\$\{TIMESCALEDB_IMAGE:-timescale/timescaledb(-ha)?:pg1[67]", services["timescaledb"]["image"]
    )


def test_long_running_services_have_healthchecks(services: dict[str, Any]) -> None:
    for name in LONG_RUNNING:
        check = services[name].get("healthcheck")
        assert check and not check.get("disable") and check.get("test"), f"{name} has no healthcheck"
        assert services[name].get("restart") == "unless-stopped", name
    for name in ONE_SHOT:
        assert services[name].get("restart") == "no", f"{name} is one-shot and must not restart"


def test_start_order_uses_conditions(services: dict[str, Any]) -> None:
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on must name a condition per dependency"
        for dependency, spec in depends.items():
            condition = spec["condition"]
            if dependency in ONE_SHOT:
                assert condition == "service_completed_successfully", f"{name} -> {dependency}"
            elif dependency in {"kafka", "timescaledb", "prometheus"}:
                assert condition == "service_healthy", f"{name} -> {dependency}"
    assert "migrate" in services["worker"]["depends_on"] and "migrate" in services["api"]["depends_on"]
    assert "topics" in services["worker"]["depends_on"]


def test_published_ports_listen_on_loopback_only(services: dict[str, Any]) -> None:
    published = 0
    for name, service in services.items():
        for port in service.get("ports", []):
            published += 1
            if isinstance(port, dict):
                assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"
            else:
                assert str(port).startswith("127.0.0.1:"), f"{name}: {port} is not bound to 127.0.0.1"
        assert "expose" not in service or all(isinstance(p, (int, str)) for p in service["expose"])
    assert published >= 3


def test_workers_scale(services: dict[str, Any]) -> None:
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker, (
        "a scaled service cannot own names or ports"
    )
    assert str(worker["deploy"]["replicas"]).startswith("${IOC_WORKER_REPLICAS")
    assert worker["command"] == ["worker"]
    env = _env(worker)
    assert env["IOC_RECOGNITION_THREADS"].startswith("${IOC_WORKER_CPUS")
    assert str(worker["deploy"]["resources"]["limits"]["cpus"]).startswith("${IOC_WORKER_CPUS")


def test_ioc_processes_run_in_prod_with_secrets_from_env_file(services: dict[str, Any]) -> None:
    for name in IOC_SERVICES:
        env = _env(services[name])
        assert env["IOC_ENV"] == "prod", name
        assert env["IOC_API_HOST"] == "0.0.0.0" and env["IOC_WORKER_WEB_HOST"] == "0.0.0.0", name
        userinfo = env["IOC_DATABASE_URL"].split("//", 1)[1].rpartition("@")[0]
        assert ":" not in userinfo, f"{name}: a password in IOC_DATABASE_URL (use PGPASSWORD)"
        for secret in ("IOC_AUTH_SECRET", "PGPASSWORD"):
            match = _INTERPOLATION.fullmatch(env[secret])
            assert match and match.group(2) == ":?", (
                f"{name}: {secret} must be a required ${{VAR:?}} reference"
            )
        assert services[name].get("read_only") is True and "ALL" in services[name].get("cap_drop", []), name


def test_api_metrics_are_scraped_on_a_port_of_their_own(services: dict[str, Any]) -> None:
    """/metrics is not on the API port (the one a proxy exposes): Prometheus scrapes the API on
    IOC_API_METRICS_PORT, which is not published; the image sets it too."""
    env = _env(services["api"])
    api_port, metrics_port = env["IOC_API_PORT"], env["IOC_API_METRICS_PORT"]
    assert metrics_port not in {"", "0", api_port}
    assert not any(metrics_port in str(port) for port in services["api"].get("ports", []))
    prometheus = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    (job,) = [job for job in prometheus["scrape_configs"] if job["job_name"] == "ioc-api"]
    assert [t for c in job["static_configs"] for t in c["targets"]] == [f"api:{metrics_port}"]
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(rf"^\s+IOC_API_METRICS_PORT={metrics_port}\b", dockerfile, re.MULTILINE)
    assert re.search(rf"^EXPOSE .*\b{metrics_port}\b", dockerfile, re.MULTILINE)


def test_settings_names_exist_in_ioc_config(services: dict[str, Any]) -> None:
    known = settings_env_names()
    used = {key for service in services.values() for key in _env(service) if key.startswith("IOC_")}
    env_example = (DEPLOY / ".env.example").read_text()
    used |= {m.group(1) for m in re.finditer(r"^#?\s*(IOC_[A-Z0-9_]+)=", env_example, re.MULTILINE)}
    # IOC_IMAGE, IOC_DB_PASSWORD, IOC_WORKER_* are the compose file's own variables, not settings.
    compose_only = {"IOC_IMAGE", "IOC_DB_PASSWORD", "IOC_WORKER_REPLICAS", "IOC_WORKER_CPUS"}
    unknown = used - known - compose_only
    assert not unknown, f"not settings in ioc/config.py: {sorted(unknown)}"


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in _strings(key) + _strings(value)]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    return [node] if isinstance(node, str) else []


def test_every_required_variable_is_documented_in_env_example(compose: dict[str, Any]) -> None:
    text = "\n".join(_strings(compose))
    documented = set(
        re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", (DEPLOY / ".env.example").read_text(), re.MULTILINE)
    )
    referenced = {m.group(1) for m in _INTERPOLATION.finditer(text)}
    assert referenced <= documented, f"undocumented in .env.example: {sorted(referenced - documented)}"
    required = {m.group(1) for m in _INTERPOLATION.finditer(text) if m.group(2) in {":?", "?"}}
    assert {
        "POSTGRES_PASSWORD",
        "IOC_DB_PASSWORD",
        "IOC_AUTH_SECRET",
        "GRAFANA_ADMIN_PASSWORD",
        "GRAFANA_DB_PASSWORD",
    } <= required


def test_env_file_is_git_ignored() -> None:
    ignored = (DEPLOY / ".gitignore").read_text().split()
    assert ".env" in ignored


def test_bind_mounts_exist(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source} does not exist"


def test_dockerfile() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    instructions = [
        line.split(None, 1) for line in text.splitlines() if line and not line.startswith(("#", " "))
    ]
    froms = [args for keyword, *args in instructions if keyword == "FROM"]
    assert len(froms) >= 2, "multi-stage build expected"
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.MULTILINE)
    runs = " ".join(" ".join(args) for keyword, *args in instructions if keyword == "RUN")
    assert re.search(r"pip install \.(\s|$)", runs) and "[dev]" not in runs and "pip install -e" not in runs
    user = re.search(r"^USER (\S+)", text, re.MULTILINE)
    assert user and user.group(1) not in {"root", "0", "0:0"}
    assert re.search(r"^ARG IOC_UID=(\d+)", text, re.MULTILINE).group(1) != "0"
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", text, re.MULTILINE)
    assert 'ENTRYPOINT ["ioc"]' in text
    ignore = [
        line
        for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert ignore[0] == "*", "the build context must start from nothing and add what pip install needs"
    assert {"!pyproject.toml", "!ioc/", "!streams/", "!detectors/"} <= set(ignore)


def test_docker_build_context_holds_the_files_pyproject_names() -> None:
    """setuptools refuses to build without the readme and licence files pyproject.toml names."""
    project = tomllib.loads((DEPLOY.parent / "pyproject.toml").read_text())["project"]
    top_level = [project["readme"]] + [name for name in project["license-files"] if "/" not in name]
    text = (DEPLOY / "Dockerfile").read_text()
    copied = {word for line in text.splitlines() if line.startswith("COPY ") for word in line.split()[1:-1]}
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    for name in top_level:
        assert (DEPLOY.parent / name).is_file(), name
        assert name in copied, f"the Dockerfile does not copy {name}"
        assert f"!{name}" in ignore, f"the build context leaves out {name}"


def test_commands_used_exist_in_the_cli(services: dict[str, Any]) -> None:
    from ioc.cli import build_parser

    parser = build_parser()
    commands = set(parser._subparsers._group_actions[0].choices)  # argparse has no public accessor
    used = {
        service["command"][0]
        for name, service in services.items()
        if name in IOC_SERVICES and isinstance(service.get("command"), list) and "entrypoint" not in service
    }
    used |= {"migrate"}  # retention runs `ioc migrate --retention` through sh
    assert used <= commands, f"ioc has no command(s) {sorted(used - commands)}"


def _default(value: str) -> str:
    """The default of a ${NAME:-default} interpolation (the value itself when there is none)."""
    match = _INTERPOLATION.fullmatch(value)
    return match.group(3) if match and match.group(2) == ":-" else value


def test_api_trusts_the_reverse_proxy_named_in_the_env_file(services: dict[str, Any]) -> None:
    """Behind a reverse proxy every sign-in comes from the proxy: without IOC_API_TRUSTED_PROXIES the
    throttle (per user and client address) lets anyone lock any user out. Optional, empty by default
    (the header is then ignored), and documented in .env.example."""
    env = _env(services["api"])
    match = _INTERPOLATION.fullmatch(env["IOC_API_TRUSTED_PROXIES"])
    assert match and match.group(1) == "IOC_API_TRUSTED_PROXIES" and match.groups()[1:] == (":-", "")
    assert re.search(r"^# IOC_API_TRUSTED_PROXIES=$", (DEPLOY / ".env.example").read_text(), re.MULTILINE)


def test_database_admits_every_connection_pool(services: dict[str, Any], compose: dict[str, Any]) -> None:
    """Every worker (up to the partitions, the most that get work) and the API hold a pool of
    IOC_DATABASE_POOL_SIZE connections; about 20 more go to the jobs, Grafana and an admin."""
    from ioc.config import Settings

    shared = {key: str(value) for key, value in compose["x-ioc-environment"].items()}
    pool_default = str(Settings.model_fields["database_pool_size"].default)
    pool = int(_default(shared.get("IOC_DATABASE_POOL_SIZE", pool_default)))
    workers = int(_default(shared["IOC_TOPIC_PARTITIONS"]))
    command = services["timescaledb"].get("command", [])
    settings = [arg for arg in command if arg.startswith("max_connections=")]
    assert settings, "PostgreSQL's default max_connections (100) is too few"
    max_connections = int(_default(settings[-1].split("=", 1)[1]))
    assert (workers + 1) * pool + 20 <= max_connections, (workers, pool, max_connections)
    assert services["timescaledb"]["command"][:1] == ["postgres"], "the image's entrypoint runs postgres"


def test_grafana_admin_password_rotation_is_documented() -> None:
    """GF_SECURITY_ADMIN_PASSWORD counts only when Grafana creates its database: changing it in .env
    and recreating the service leaves the old password in place."""
    for path in (DEPLOY / ".env.example", DEPLOY.parent / "docs" / "deployment.md"):
        text = path.read_text()
        assert "grafana cli admin reset-admin-password" in text, f"{path.name}: how to rotate Grafana's"


def test_demo_registers_the_simulators_cameras_before_it_starts(services: dict[str, Any]) -> None:
    """Workers dead-letter frames and reads from unregistered cameras (IOC_REQUIRE_KNOWN_CAMERAS,
    on by default): the demo profile's simulator sent only such traffic, so nothing was stored."""
    from ioc.cli import build_parser
    from ioc.commands.cameras import read_camera_file
    from ioc.config import Settings
    from ioc.simulator import build_cameras

    simulator, cameras = services["simulator"], services["demo-cameras"]
    assert cameras["profiles"] == simulator["profiles"] == ["demo"]
    assert simulator["depends_on"]["demo-cameras"]["condition"] == "service_completed_successfully"
    assert cameras["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "IOC_REQUIRE_KNOWN_CAMERAS" not in _env(cameras), "the workers' setting is the one that counts"
    assert cameras["entrypoint"] == ["/bin/sh", "-c"] and len(cameras["command"]) == 1
    listing, _, registrar = cameras["command"][0].rpartition("|")
    assert registrar.split() == ["ioc", "cameras", "import", "-"]
    build_parser().parse_args(registrar.split()[1:])  # a command line ioc takes
    text = subprocess.run(["/bin/sh", "-c", listing], capture_output=True, text=True, check=True).stdout
    registered, errors = read_camera_file(text)
    assert not errors, errors
    checkpoints = int(
        _env(simulator).get("IOC_SIMULATOR_CHECKPOINTS", "")
        or Settings.model_fields["simulator_checkpoints"].default
    )
    sent_from = {(camera.camera_id, camera.checkpoint_id) for camera in build_cameras(checkpoints)}
    assert {(camera.camera_id, camera.checkpoint_id) for camera in registered} == sent_from


def test_init_script_is_mounted_beside_the_images_own(services: dict[str, Any]) -> None:
    """The timescaledb-ha image keeps 000_install_timescaledb.sh and 001_timescaledb_tune.sh in
    /docker-entrypoint-initdb.d: a directory mounted there hid them (no timescaledb-tune)."""
    initdb = "/docker-entrypoint-initdb.d"
    mounted = {}
    for volume in services["timescaledb"]["volumes"]:
        source, target = volume.split(":")[:2]
        assert target.rstrip("/") != initdb, f"{volume} replaces the image's first-start scripts"
        if target.startswith(initdb + "/"):
            mounted[target.removeprefix(initdb + "/")] = source
    scripts = sorted(p.name for p in (DEPLOY / "timescaledb" / "initdb").iterdir())
    assert scripts and sorted(mounted) == scripts
    for name in scripts:
        assert mounted[name] == f"./timescaledb/initdb/{name}"
        assert name > "001_timescaledb_tune.sh", f"{name} must run after the image's scripts"


def test_api_takes_the_display_time_zone_from_the_env_file(services: dict[str, Any]) -> None:
    """docs/deployment.md tells compose users to set IOC_DISPLAY_TIMEZONE for the api service."""
    from ioc.config import Settings

    default = Settings.model_fields["display_timezone"].default
    match = _INTERPOLATION.fullmatch(_env(services["api"]).get("IOC_DISPLAY_TIMEZONE", ""))
    assert match and match.group(1) == "IOC_DISPLAY_TIMEZONE" and match.groups()[1:] == (":-", default)
    assert f"\n# IOC_DISPLAY_TIMEZONE={default}\n" in (DEPLOY / ".env.example").read_text()


def test_look_closer_cost_is_the_settings_figure() -> None:
    """The extra time per frame of IOC_ANPR_LOOK_CLOSER=always, as ioc/config.py states it."""
    from ioc.config import Settings

    cost = re.compile(r"about (\d+) ms more per\s+(?:#\s*)?1280x720")
    (stated,) = cost.findall(Settings.model_fields["anpr_look_closer"].description or "")
    for path in (DEPLOY / ".env.example", DEPLOY.parent / "helm" / "ioc" / "values.yaml"):
        assert cost.findall(path.read_text()) == [stated], f"{path.name}: not {stated} ms"
