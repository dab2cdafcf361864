"""Versioned schema migrations that adapt to the server.

Each migration runs once, in its own transaction, and is recorded in
``schema_migrations``. A session advisory lock lets several processes (workers,
the API, ``ioc migrate``) call :func:`migrate` at the same time: one applies,
the others wait and then find nothing left to do.

The storage *layout* is chosen once, on the first run, and recorded in
``storage_layout``: ``timescaledb`` (hypertables; the extension must be in
``shared_preload_libraries``) or ``postgres`` (declarative daily partitions).
A migration may require a capability (``pg_trgm``, Timescale-License
features); where it is missing the migration stays pending and is applied by
the first ``migrate`` after the server gains it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from importlib import resources

import psycopg
from psycopg import AsyncConnection

from ioc.storage.database import MIN_SERVER_VERSION, Capabilities, Layout, connect, detect_capabilities
from ioc.storage.partitions import ensure_partitions
from ioc.storage.plate_text import skeleton_function_sql

logger = logging.getLogger(__name__)

__all__ = [
    "MIGRATIONS", "Migration", "MigrationError", "PARTITION_DAYS_AHEAD", "create_hypertable", "migrate",
]

_LOCK_KEY = 0x10C_0001
PARTITION_DAYS_AHEAD = 7

# table, time column, chunk interval
_HYPERTABLES = (
    ("plate_reads", "captured_at", "1 day"),
    ("plate_crops", "captured_at", "1 day"),
    ("sensor_readings", "captured_at", "1 day"),
    ("checkpoint_counts", "bucket", "7 days"),
)

_BOOTSTRAP_SQL = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    name       text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS storage_layout (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    layout    text NOT NULL CHECK (layout IN ('timescaledb', 'postgres')),
    chosen_at timestamptz NOT NULL DEFAULT now()
);
"""

_TIME_BUCKET_SQL = {
    # date_bin with time_bucket's default origin (a Monday), so both give the same buckets
    "postgres": "date_bin(width, ts, timestamptz '2000-01-03 00:00:00+00')",
    "timescaledb": "time_bucket(width, ts)",
}


class MigrationError(RuntimeError):
    """The database cannot be brought to the expected schema as configured."""


@dataclass(frozen=True)
class Migration:
    name: str
    apply: Callable[[AsyncConnection, Capabilities], Awaitable[None]]
    requires: Callable[[Capabilities], bool] = lambda caps: True


def _sql_file(name: str, **fragments: str) -> str:
    """A migration's SQL with its ``{{fragment}}`` placeholders filled from code constants."""
    text = resources.files("ioc.storage").joinpath("migrations", name).read_text(encoding="utf-8")
    for key, value in fragments.items():
        text = text.replace("{{" + key + "}}", value)
    leftover = re.search(r"\{\{\w+\}\}", text)
    if leftover:
        raise MigrationError(f"{name}: unfilled placeholder {leftover.group(0)}")
    return text


async def _core(conn: AsyncConnection, caps: Capabilities) -> None:
    await conn.execute(_sql_file("0001_core.sql"))


async def _time_series(conn: AsyncConnection, caps: Capabilities) -> None:
    await conn.execute(skeleton_function_sql())
    partition_by = "" if caps.timescaledb else "PARTITION BY RANGE (captured_at)"
    await conn.execute(_sql_file("0002_time_series.sql", partition_by=partition_by))
    if caps.timescaledb:
        for table, column, interval in _HYPERTABLES:
            await create_hypertable(conn, table, column, interval)
    else:
        today = datetime.now(UTC)
        await ensure_partitions(conn, today + timedelta(days=PARTITION_DAYS_AHEAD),
                                since=today - timedelta(days=1))


async def create_hypertable(
    conn: AsyncConnection, table: str, column: str, interval: str | timedelta
) -> None:
    """Chunk ``table`` by ``column``; its indexes are the schema's own, not TimescaleDB's defaults."""
    await conn.execute(
        "SELECT create_hypertable(%s::regclass, by_range(%s, %s::interval), create_default_indexes => false)",
        [table, column, interval],
    )


async def _counts(conn: AsyncConnection, caps: Capabilities) -> None:
    await conn.execute(
        "CREATE OR REPLACE FUNCTION ioc_time_bucket(width interval, ts timestamptz)"
        " RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE"
        f" RETURN {_TIME_BUCKET_SQL[caps.layout]}"
    )
    await conn.execute(_sql_file("0003_counts.sql"))


async def _trigram_index(conn: AsyncConnection, caps: Capabilities) -> None:
    """Partial plates with a leading wildcard (``*123??``) cannot use the btree."""
    await conn.execute("CREATE INDEX plate_reads_text_trgm_idx ON plate_reads USING gin (text gin_trgm_ops)")


async def _timescale_license(conn: AsyncConnection, caps: Capabilities) -> None:
    await conn.execute(_sql_file("0005_timescale_license.sql"))


async def _passages(conn: AsyncConnection, caps: Capabilities) -> None:
    await conn.execute(_sql_file("0006_passages.sql"))


async def _camera_look_closer(conn: AsyncConnection, caps: Capabilities) -> None:
    await conn.execute(_sql_file("0007_camera_look_closer.sql"))


MIGRATIONS: tuple[Migration, ...] = (
    Migration("0001_core", _core),
    Migration("0002_time_series", _time_series),
    Migration("0003_counts", _counts),
    Migration("0004_trigram_index", _trigram_index, requires=lambda caps: caps.pg_trgm),
    Migration("0005_timescale_license", _timescale_license, requires=lambda caps: caps.tsl),
    Migration("0006_passages", _passages),
    Migration("0007_camera_look_closer", _camera_look_closer),
)


async def _available_extensions(conn: AsyncConnection) -> set[str]:
    cur = await conn.execute(
        "SELECT name FROM pg_available_extensions WHERE name IN ('timescaledb', 'pg_trgm')"
    )
    return {name for (name,) in await cur.fetchall()}


async def _timescaledb_preloaded(conn: AsyncConnection) -> bool:
    cur = await conn.execute("SELECT current_setting('shared_preload_libraries')")
    row = await cur.fetchone()
    libraries = {lib.strip().strip('"') for lib in (row[0] if row else "").split(",")}
    return "timescaledb" in libraries


async def _recorded_layout(conn: AsyncConnection) -> Layout | None:
    cur = await conn.execute("SELECT layout FROM storage_layout")
    row = await cur.fetchone()
    return row[0] if row else None


async def _choose_layout(conn: AsyncConnection, requested: Layout | None) -> Layout:
    recorded = await _recorded_layout(conn)
    if recorded is not None:
        if requested is not None and requested != recorded:
            raise MigrationError(f"database already uses the {recorded!r} layout, not {requested!r}")
        return recorded
    cur = await conn.execute("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')")
    row = await cur.fetchone()
    installed = bool(row and row[0])
    usable = installed or ("timescaledb" in await _available_extensions(conn)
                           and await _timescaledb_preloaded(conn))
    if requested == "timescaledb" and not usable:
        raise MigrationError("TimescaleDB requested but not installed or not in shared_preload_libraries")
    layout: Layout = requested or ("timescaledb" if usable else "postgres")
    await conn.execute("INSERT INTO storage_layout (layout) VALUES (%s)", [layout])
    return layout


async def _install_extensions(conn: AsyncConnection, layout: Layout) -> None:
    available = await _available_extensions(conn)
    if layout == "timescaledb":
        await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    if "pg_trgm" in available:
        try:
            async with conn.transaction():
                await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        except psycopg.errors.InsufficientPrivilege as exc:
            logger.warning("pg_trgm is available but cannot be installed (%s); "
                           "partial look-ups fall back to the btree", exc)


async def _migrate_locked(conn: AsyncConnection, requested: Layout | None) -> list[str]:
    await conn.execute(_BOOTSTRAP_SQL)
    layout = await _choose_layout(conn, requested)
    await _install_extensions(conn, layout)
    caps = await detect_capabilities(conn)
    if caps.server_version < MIN_SERVER_VERSION:
        raise MigrationError(f"PostgreSQL >= 15 required, server is {caps.server_version}")
    if layout == "postgres":
        # an extension left over in the database must not turn tables into hypertables
        caps = replace(caps, timescaledb=False, timescaledb_version=None, tsl=False)
    cur = await conn.execute("SELECT name FROM schema_migrations")
    done = {name for (name,) in await cur.fetchall()}
    applied: list[str] = []
    for migration in MIGRATIONS:
        if migration.name in done or not migration.requires(caps):
            continue
        async with conn.transaction():
            await migration.apply(conn, caps)
            await conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", [migration.name])
        logger.info("applied migration %s (%s layout)", migration.name, layout)
        applied.append(migration.name)
    return applied


async def migrate(conninfo: str, *, layout: Layout | None = None) -> list[str]:
    """Bring the database to the current schema; returns the migrations applied now.

    ``layout`` forces a layout on a fresh database (tests use it); by default
    TimescaleDB is used when the server has it preloaded.
    """
    async with await connect(conninfo, autocommit=True) as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", [_LOCK_KEY])
        try:
            return await _migrate_locked(conn, layout)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])
