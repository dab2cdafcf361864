"""Versioned schema migrations that adapt to the server.

Each migration runs once, in its own transaction (or, for statements that refuse
one, on the autocommit connection, recorded once it has finished), and is recorded in
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

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from importlib import resources

import psycopg
from psycopg import AsyncConnection, sql

from ioc.storage.database import MIN_SERVER_VERSION, Capabilities, Layout, connect, detect_capabilities
from ioc.storage.online_indexes import create_index_online
from ioc.storage.partitions import ensure_partitions
from ioc.storage.plate_text import skeleton_function_sql

logger = logging.getLogger(__name__)

__all__ = [
    "MIGRATIONS", "Migration", "MigrationError", "PARTITION_DAYS_AHEAD", "create_hypertable", "migrate",
    "recorded_layout",
]

_LOCK_KEY = 0x10C_0001
_LOCK_POLL_S = 0.5
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
    # False for statements that refuse a transaction block; such a migration must be safe to
    # re-run, as it is recorded only after it has finished
    in_transaction: bool = True


def _sql_file(name: str, **fragments: str) -> str:
    """A migration's SQL with its ``{{fragment}}`` placeholders filled from code constants."""
    text = resources.files("ioc.storage").joinpath("migrations", name).read_text(encoding="utf-8")
    for key, value in fragments.items():
        text = text.replace("{{" + key + "}}", value)
    leftover = re.search(r"\{\{\w+\}\}", text)
    if leftover:
        raise MigrationError(f"{name}: unfilled placeholder {leftover.group(0)}")
    return text


def _its_file(name: str) -> Callable[[AsyncConnection, Capabilities], Awaitable[None]]:
    """A migration that is its SQL file, ``migrations/<name>.sql``, and nothing else."""

    async def apply(conn: AsyncConnection, caps: Capabilities) -> None:
        await conn.execute(_sql_file(f"{name}.sql"))

    return apply


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
    """Partial plates with a leading wildcard (``*123??``) cannot use the btree. Built without
    stopping plate-read writers (:mod:`ioc.storage.online_indexes`): a server that gains pg_trgm,
    or a deployment upgraded from before this, builds it over every read it holds."""
    await create_index_online(conn, caps.layout, "plate_reads", "plate_reads_text_trgm_idx",
                              "gin (text gin_trgm_ops)")


async def _skeleton_trigram_index(conn: AsyncConnection, caps: Capabilities) -> None:
    """A fuzzy pattern with a leading wildcard (``*12345``, ``skeleton LIKE '%12345'``) cannot
    use the skeleton btree: without this it read every row of its window. Built as 0004's."""
    await create_index_online(conn, caps.layout, "plate_reads", "plate_reads_skeleton_trgm_idx",
                              "gin (skeleton gin_trgm_ops)")


async def _fill_aggregates(conn: AsyncConnection, caps: Capabilities) -> None:
    """Materialise the hourly and daily continuous aggregates from their first bucket, once.

    0005 replaced the populated roll-up tables with aggregates created WITH NO DATA, and
    their refresh policies look back 3 and 10 days: once a policy had run, older hours and
    days were gone from them. The minute windows they are computed from are kept, so this
    brings them back. It stops where the policies stop (their end offsets): materialising
    the latest hour or day would end real-time aggregation of it, so the newest minutes
    would not show until a policy refreshed them. ``refresh_continuous_aggregate`` refuses
    a transaction block.
    """
    # the daily aggregate reads the hourly one: hourly first
    for view, end_offset in (("checkpoint_counts_hourly", "1 hour"), ("checkpoint_counts_daily", "1 day")):
        call = sql.SQL("CALL refresh_continuous_aggregate({}, NULL, now() - {}::interval)")
        await conn.execute(call.format(sql.Literal(view), sql.Literal(end_offset)))


MIGRATIONS: tuple[Migration, ...] = (
    Migration("0001_core", _its_file("0001_core")),
    Migration("0002_time_series", _time_series),
    Migration("0003_counts", _counts),
    Migration("0004_trigram_index", _trigram_index, requires=lambda caps: caps.pg_trgm, in_transaction=False),
    Migration("0005_timescale_license", _its_file("0005_timescale_license"), requires=lambda caps: caps.tsl),
    Migration("0006_passages", _its_file("0006_passages")),
    Migration("0007_camera_look_closer", _its_file("0007_camera_look_closer")),
    Migration("0008_skeleton_trigram_index", _skeleton_trigram_index, requires=lambda caps: caps.pg_trgm,
              in_transaction=False),
    Migration("0009_incident_reads", _its_file("0009_incident_reads")),
    Migration("0010_fold_d_stroke", _its_file("0010_fold_d_stroke")),
    Migration("0011_fill_aggregates", _fill_aggregates, requires=lambda caps: caps.tsl, in_transaction=False),
    Migration("0012_consumer_progress", _its_file("0012_consumer_progress")),
    Migration("0013_alert_evidence", _its_file("0013_alert_evidence")),
    Migration("0014_token_generation", _its_file("0014_token_generation")),
    Migration("0015_past_read_searches", _its_file("0015_past_read_searches")),
    Migration("0016_sighting_evidence", _its_file("0016_sighting_evidence")),
    Migration("0017_signed_out_tokens", _its_file("0017_signed_out_tokens")),
    Migration("0018_alert_outbox", _its_file("0018_alert_outbox")),
    Migration("0019_uncounted_minutes", _its_file("0019_uncounted_minutes")),
)


async def _available_extensions(conn: AsyncConnection) -> set[str]:
    cur = await conn.execute(
        "SELECT name FROM pg_available_extensions WHERE name IN ('timescaledb', 'pg_trgm')"
    )
    return {name for (name,) in await cur.fetchall()}


async def _timescaledb_preloaded(conn: AsyncConnection) -> bool | None:
    """Whether the server preloads TimescaleDB; None when this role may not know
    (``shared_preload_libraries`` is readable by superusers and pg_read_all_settings only)."""
    try:
        async with conn.transaction():
            cur = await conn.execute("SELECT current_setting('shared_preload_libraries')")
            row = await cur.fetchone()
    except psycopg.errors.InsufficientPrivilege:
        return None
    libraries = {lib.strip().strip('"') for lib in (row[0] if row else "").split(",")}
    return "timescaledb" in libraries


async def _timescaledb_installs(conninfo: str) -> bool:
    """Whether ``CREATE EXTENSION timescaledb`` works here, tried on a connection of its own
    and rolled back: where the library is not preloaded the attempt ends the session."""
    try:
        async with await connect(conninfo) as probe:
            try:
                await probe.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            finally:
                if not probe.closed:
                    await probe.rollback()
    except psycopg.Error as exc:
        logger.warning("TimescaleDB is available but cannot be installed as this role (%s): "
                       "using the postgres layout (daily partitions)", str(exc).strip().splitlines()[0])
        return False
    return True


async def _timescaledb_usable(conn: AsyncConnection, conninfo: str) -> bool:
    """Installed in this database, or available and preloaded (so CREATE EXTENSION works)."""
    cur = await conn.execute("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')")
    row = await cur.fetchone()
    if row and row[0]:
        return True
    if "timescaledb" not in await _available_extensions(conn):
        return False
    preloaded = await _timescaledb_preloaded(conn)
    if preloaded is None:
        logger.info("cannot read shared_preload_libraries (not a superuser): "
                    "trying CREATE EXTENSION timescaledb")
        return await _timescaledb_installs(conninfo)
    return preloaded


async def recorded_layout(conn: AsyncConnection) -> Layout | None:
    """The layout the first run chose (None before it): an installed extension does not tell it."""
    cur = await conn.execute("SELECT layout FROM storage_layout")
    row = await cur.fetchone()
    return row[0] if row else None


async def _choose_layout(conn: AsyncConnection, requested: Layout | None, conninfo: str) -> Layout:
    recorded = await recorded_layout(conn)
    if recorded is not None:
        if requested is not None and requested != recorded:
            raise MigrationError(f"database already uses the {recorded!r} layout, not {requested!r}")
        return recorded
    # a forced postgres layout needs no probe (which an ordinary database owner may not run)
    usable = requested != "postgres" and await _timescaledb_usable(conn, conninfo)
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


async def _apply(conn: AsyncConnection, migration: Migration, caps: Capabilities) -> None:
    """Apply and record one migration: in one transaction, or (``in_transaction=False``) as
    it runs on the autocommit connection, recorded once it has finished."""
    if not migration.in_transaction:
        await migration.apply(conn, caps)
        await conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", [migration.name])
        return
    async with conn.transaction():
        await migration.apply(conn, caps)
        await conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", [migration.name])


async def _migrate_locked(conn: AsyncConnection, requested: Layout | None, conninfo: str) -> list[str]:
    await conn.execute(_BOOTSTRAP_SQL)
    layout = await _choose_layout(conn, requested, conninfo)
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
        await _apply(conn, migration, caps)
        logger.info("applied migration %s (%s layout)", migration.name, layout)
        applied.append(migration.name)
    return applied


async def _lock(conn: AsyncConnection) -> None:
    """Take the migrations' advisory lock, asking again every :data:`_LOCK_POLL_S` while another
    process holds it. Not by waiting in ``pg_advisory_lock``: a statement waiting there is a
    transaction in progress, which ``CREATE INDEX CONCURRENTLY`` (ioc.storage.online_indexes)
    in the holder's migration waits for in turn, and the server ends one of them as deadlocked."""
    while True:
        cur = await conn.execute("SELECT pg_try_advisory_lock(%s)", [_LOCK_KEY])
        if (await cur.fetchone())[0]:
            return
        await asyncio.sleep(_LOCK_POLL_S)


async def migrate(conninfo: str, *, layout: Layout | None = None) -> list[str]:
    """Bring the database to the current schema; returns the migrations applied now.

    ``layout`` forces a layout on a fresh database (tests use it); by default
    TimescaleDB is used when the server has it preloaded.
    """
    async with await connect(conninfo, autocommit=True) as conn:
        await _lock(conn)
        try:
            return await _migrate_locked(conn, layout, conninfo)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])
