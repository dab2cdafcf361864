"""Connections, pools and what the server can do.

The schema adapts to the server (TimescaleDB with or without Timescale-License
features, or plain PostgreSQL), so everything that depends on it asks
:func:`detect_capabilities` instead of assuming.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

import orjson
from psycopg import AsyncConnection, sql
from psycopg_pool import AsyncConnectionPool

logger = logging.getLogger(__name__)

__all__ = [
    "COUNTABLE_TABLES",
    "Capabilities",
    "Layout",
    "connect",
    "detect_capabilities",
    "json_dumps",
    "lock_names",
    "run_committed",
    "open_pool",
    "table_counts",
]

Layout = Literal["timescaledb", "postgres"]

MIN_SERVER_VERSION = 150000

COUNTABLE_TABLES = frozenset({
    "plate_reads", "plate_crops", "sensor_readings", "checkpoint_counts", "alerts",
    "alert_events", "watchlist_entries", "audit_log", "users", "cameras", "retention_runs", "passages",
})


def json_dumps(value: object) -> bytes:
    """JSON for jsonb columns: fast, and tolerant of what evidence dicts carry
    (UUIDs, datetimes, numpy scalars from the recogniser, non-string keys)."""
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What the connected database offers, as found by asking it.

    ``timescaledb`` means the extension is installed in this database;
    ``tsl`` that Timescale-License features (continuous aggregates,
    compression, policies) are enabled, not just the Apache-licensed core.
    """

    server_version: int
    timescaledb: bool
    timescaledb_version: str | None
    tsl: bool
    pg_trgm: bool

    @property
    def layout(self) -> Layout:
        return "timescaledb" if self.timescaledb else "postgres"


_CAPABILITIES_SQL = """
SELECT current_setting('server_version_num')::int AS server_version,
       (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') AS timescaledb_version,
       coalesce(current_setting('timescaledb.license', true), '') AS license,
       EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') AS pg_trgm
"""


async def detect_capabilities(conn: AsyncConnection) -> Capabilities:
    """Ask the server: version, TimescaleDB (and its licence), pg_trgm."""
    cur = await conn.execute(_CAPABILITIES_SQL)
    row = await cur.fetchone()
    assert row is not None
    server_version, ts_version, license_name, pg_trgm = row
    return Capabilities(
        server_version=server_version,
        timescaledb=ts_version is not None,
        timescaledb_version=ts_version,
        tsl=ts_version is not None and license_name == "timescale",
        pg_trgm=bool(pg_trgm),
    )


CHECK_AFTER_IDLE_S = 2.0
_returned_at: weakref.WeakKeyDictionary[AsyncConnection, float] = weakref.WeakKeyDictionary()


async def _mark_returned(conn: AsyncConnection) -> None:
    _returned_at[conn] = time.monotonic()


async def _check_if_idle(conn: AsyncConnection) -> None:
    if time.monotonic() - _returned_at.get(conn, float("-inf")) > CHECK_AFTER_IDLE_S:
        await AsyncConnectionPool.check_connection(conn)


async def _configure(conn: AsyncConnection) -> None:
    """Every session works in UTC so day partitions and buckets line up the same everywhere."""
    await conn.execute("SET TIME ZONE 'UTC'")
    await conn.commit()


def _configure_with_timeout(timeout_s: float) -> Callable[[AsyncConnection], Awaitable[None]]:
    """:func:`_configure`, and a ``statement_timeout`` for the session: the server cancels
    a statement running longer (``QueryCanceled``) instead of it holding a pooled connection."""
    milliseconds = max(1, round(timeout_s * 1000))

    async def configure(conn: AsyncConnection) -> None:
        await conn.execute("SELECT set_config('statement_timeout', %s, false)", [f"{milliseconds}ms"])
        await _configure(conn)

    return configure


async def open_pool(
    conninfo: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    timeout: float = 30.0,
    name: str = "ioc",
    autocommit: bool = False,
    statement_timeout_s: float | None = None,
) -> AsyncConnectionPool:
    """An open pool whose connections work; bad settings fail here, at start-up.

    A connection idle for a few seconds is checked when taken from the pool, so a
    pool outlives a database restart instead of handing out dead connections; one
    used moments ago is not (a round trip per request is a large part of a
    look-up's cost). ``autocommit`` suits request handlers that mark their
    transactions explicitly. ``statement_timeout_s`` bounds every statement of the
    pool's sessions (the API's: a scan a user's query forces must not run for minutes).
    """
    pool = AsyncConnectionPool(
        conninfo,
        min_size=min_size,
        max_size=max_size,
        open=False,
        name=name,
        timeout=timeout,
        configure=_configure if statement_timeout_s is None else _configure_with_timeout(statement_timeout_s),
        check=_check_if_idle,
        reset=_mark_returned,
        kwargs={"application_name": name, "autocommit": autocommit},
    )
    await pool.open()
    try:
        await pool.wait(timeout=timeout)
    except BaseException:
        await pool.close()
        raise
    return pool


async def lock_names(conn: AsyncConnection, names: Iterable[str]) -> None:
    """Take a transaction-level advisory lock per name, in sorted order and in one statement: two
    transactions locking overlapping sets cannot deadlock, and many names cost one round trip."""
    # a function scan returns the array's elements in order: the locks follow it
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest(%s::text[]) AS k",
                       [sorted(names)])


async def connect(conninfo: str, *, autocommit: bool = False) -> AsyncConnection:
    """One connection, configured like the pool's (for CLI commands and scripts)."""
    conn = await AsyncConnection.connect(conninfo, autocommit=autocommit, application_name="ioc")
    await conn.execute("SET TIME ZONE 'UTC'")
    if not autocommit:
        await conn.commit()
    return conn


_T = TypeVar("_T")


def run_committed(conninfo: str, work: Callable[[AsyncConnection], Awaitable[_T]]) -> _T:
    """Run ``work`` on a connection of its own and commit: one command-line action, from a
    synchronous command. An exception rolls back and reaches the caller."""

    async def run() -> _T:
        async with await connect(conninfo) as conn:
            result = await work(conn)
            await conn.commit()
            return result

    return asyncio.run(run())


async def table_counts(conninfo: str, tables: Sequence[str]) -> dict[str, int]:
    """Exact row counts of our own tables (for the demo summary and drain checks)."""
    unknown = set(tables) - COUNTABLE_TABLES
    if unknown:
        raise ValueError(f"not a storage table: {sorted(unknown)}")
    async with await connect(conninfo, autocommit=True) as conn:
        counts: dict[str, int] = {}
        for table in tables:
            cur = await conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
            row = await cur.fetchone()
            counts[table] = int(row[0]) if row else 0
        return counts
