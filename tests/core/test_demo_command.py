"""``ioc demo`` (the README's first command): where it refuses to run, and that a stop by
SIGTERM (``kill``, ``timeout``, a service manager) stops everything it started, as Ctrl-C does."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ioc.embedded.ports import free_port

LONG_SECRET = "x" * 40


def _demo_env(**env: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    return {**clean, **env}


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"IOC_ENV": "prod", "IOC_AUTH_SECRET": LONG_SECRET}, "IOC_ENV=prod"),
        ({"IOC_DATABASE_URL": "postgresql://ioc@127.0.0.1:1/ioc"}, "--use-configured-services"),
        ({"IOC_KAFKA_BOOTSTRAP": "127.0.0.1:1"}, "--use-configured-services"),
    ],
)
def test_the_demo_does_not_seed_made_up_data_into_configured_services(
    tmp_path: Path, env: dict[str, str], expected: str
) -> None:
    done = subprocess.run([sys.executable, "-m", "ioc", "demo"], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path, env=_demo_env(**env), check=False)  # fmt: skip
    assert done.returncode == 2 and expected in done.stderr, done.stderr


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_sigterm_stops_every_process_the_demo_started(tmp_path: Path) -> None:
    ports = {"IOC_API_PORT": free_port(), "IOC_WORKER_METRICS_PORT": free_port(),
             "IOC_WORKER_WEB_PORT": free_port()}  # fmt: skip
    demo = subprocess.Popen([sys.executable, "-m", "ioc", "demo"], cwd=tmp_path, text=True,
                            stdout=subprocess.PIPE, stderr=(tmp_path / "demo.err").open("w"),
                            env=_demo_env(**{k: str(v) for k, v in ports.items()}))  # fmt: skip
    try:
        assert demo.stdout is not None
        ready = demo.stdout.readline()  # the operator page's address, once everything has started
        assert ready.startswith("Operator page:"), (tmp_path / "demo.err").read_text()
        url = re.search(r"http://\S+/", ready)
        assert url and httpx.get(url[0], timeout=10).status_code == 200
        started = [int(p) for p in re.findall(r"\bpid (\d+)", (tmp_path / "demo.err").read_text())]
        assert len(started) == 4, started  # broker, database, worker, API
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(60) == 0
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in started) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in started if _alive(pid)], "left running after SIGTERM"
    finally:  # a failed test must not leave the demo's services running: SIGTERM stops them all
        if demo.poll() is None:
            demo.send_signal(signal.SIGTERM)
            try:
                demo.wait(60)
            except subprocess.TimeoutExpired:
                demo.kill()


def test_worker_metrics_ports_step_over_the_apis() -> None:
    """With the image's ports (workers 9108 up, API metrics 9109) a second worker took 9109 and
    the API could not start."""
    from ioc.config import Settings
    from ioc.demo import _worker_metrics_ports

    settings = Settings(worker_metrics_port=9108, api_metrics_port=9109, api_port=8000)
    assert _worker_metrics_ports(settings, 3) == [9108, 9110, 9111]
