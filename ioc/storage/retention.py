"""Retention: plate reads and sensor data go after ``read_days``, alerts and counts after
``alert_days``; the audit trail stays. Each run is logged in ``retention_runs``.

An alert's own copy of its read's crop (``alert_evidence``) and of its route sightings' crops
(``sighting_evidence``), its history and its incident's reads go with the alert (``ON DELETE
CASCADE``), not with the reads: an alert shows its evidence for as long as it is kept.

Old data leaves by whole days: TimescaleDB chunks (``drop_chunks``) or daily
partitions (``DROP TABLE``), which is instant and leaves no bloat. A chunk or
partition goes once all of it is older than the cutoff, so rows live up to one
day past it. We run this job ourselves on every layout (rather than only a
Timescale retention policy) because the run must be logged and the periods are
settings; with Timescale-License features the run also keeps the server's own
retention policies at the same periods, so data still goes if this job stops.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from psycopg import AsyncConnection, sql
from psycopg.types.json import Jsonb

from ioc.storage.database import Capabilities, json_dumps
from ioc.storage.migrations import PARTITION_DAYS_AHEAD, recorded_layout
from ioc.storage.partitions import drop_partitions_before, ensure_partitions
from ioc.storage.past_read_searches import forget_replaced_searches

logger = logging.getLogger(__name__)

__all__ = ["RetentionResult", "run_retention"]

_LOCK_KEY = 0x10C_0004
_READ_TABLES = ("plate_reads", "plate_crops", "sensor_readings")
_ROLLUPS = ("checkpoint_counts_hourly", "checkpoint_counts_daily")

TableKind = Literal["hypertable", "continuous_aggregate", "partitioned", "table", "view", "missing"]


@dataclass(frozen=True, slots=True)
class RetentionResult:
    run_id: int
    started_at: datetime
    finished_at: datetime
    layout: str
    read_cutoff: datetime
    alert_cutoff: datetime
    dropped: dict[str, list[str]]  # table -> chunks or partitions dropped
    deleted: dict[str, int]        # table -> rows deleted one by one


async def _table_kind(conn: AsyncConnection, caps: Capabilities, table: str) -> TableKind:
    cur = await conn.execute(
        "SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass(%s)", [table])
    row = await cur.fetchone()
    if row is None:
        return "missing"
    relkind = row[0]
    if relkind == "p":
        return "partitioned"
    if relkind in ("v", "m"):
        if caps.tsl:
            cur = await conn.execute(
                "SELECT 1 FROM timescaledb_information.continuous_aggregates"
                " WHERE view_name = %s AND view_schema = current_schema()", [table])
            if await cur.fetchone():
                return "continuous_aggregate"
        return "view"
    if caps.timescaledb:
        cur = await conn.execute(
            "SELECT 1 FROM timescaledb_information.hypertables"
            " WHERE hypertable_name = %s AND hypertable_schema = current_schema()", [table])
        if await cur.fetchone():
            return "hypertable"
    return "table"


async def _drop_chunks(conn: AsyncConnection, table: str, cutoff: datetime) -> list[str]:
    cur = await conn.execute(
        "SELECT drop_chunks(%s::regclass, older_than => %s::timestamptz)", [table, cutoff])
    return [name for (name,) in await cur.fetchall()]


async def _expire(
    conn: AsyncConnection, caps: Capabilities, table: str, column: str, cutoff: datetime,
    dropped: dict[str, list[str]], deleted: dict[str, int],
) -> None:
    kind = await _table_kind(conn, caps, table)
    # a continuous aggregate keeps its own chunks (the roll-ups were kept for ever where they are
    # ones); they are wide (ten times its source's), so a bucket leaves up to that long after its cutoff
    if kind in ("hypertable", "continuous_aggregate"):
        dropped[table] = await _drop_chunks(conn, table, cutoff)
    elif kind == "partitioned":
        dropped[table], deleted[table] = await drop_partitions_before(conn, table, cutoff)
    elif kind == "table":
        cur = await conn.execute(
            sql.SQL("DELETE FROM {} WHERE {} < %s").format(sql.Identifier(table), sql.Identifier(column)),
            [cutoff])
        deleted[table] = cur.rowcount


async def _sync_policy(conn: AsyncConnection, table: str, days: int) -> None:
    """Keep the server's own retention policy for ``table`` at ``days`` (TSL only)."""
    cur = await conn.execute(
        "SELECT config->>'drop_after' FROM timescaledb_information.jobs"
        " WHERE proc_name = 'policy_retention' AND hypertable_name = %s", [table])
    row = await cur.fetchone()
    wanted = timedelta(days=days)
    if row is not None:
        current = await conn.execute("SELECT %s::interval = %s::interval", [row[0], wanted])
        same = await current.fetchone()
        if same and same[0]:
            return
        await conn.execute("SELECT remove_retention_policy(%s::regclass)", [table])
    await conn.execute(
        "SELECT add_retention_policy(%s::regclass, drop_after => %s::interval)", [table, wanted])


async def _expire_all(
    conn: AsyncConnection, caps: Capabilities, read_cutoff: datetime, alert_cutoff: datetime, read_days: int,
) -> tuple[dict[str, list[str]], dict[str, int]]:
    """Drop and delete what is past its cutoff: (dropped chunks or partitions, rows deleted) per table.

    Rows are deleted first and the hot tables' chunks or partitions dropped last, so the
    ACCESS EXCLUSIVE locks those drops take are held until the commit, not for the run."""
    dropped: dict[str, list[str]] = {}
    deleted: dict[str, int] = {}
    # alerts is a plain table on every layout: its evidence (its crop and its route's), history and
    # incident reads cascade
    cur = await conn.execute("DELETE FROM alerts WHERE raised_at < %s", [alert_cutoff])
    deleted["alerts"] = cur.rowcount
    for table in ("checkpoint_counts", *_ROLLUPS):
        await _expire(conn, caps, table, "bucket", alert_cutoff, dropped, deleted)
    # past-read searches of watchlist versions no entry has now, or expired before the reads kept
    deleted["past_read_searches"] = await forget_replaced_searches(conn, read_cutoff)
    # passages name plates too, so they follow the reads
    await _expire(conn, caps, "passages", "started_at", read_cutoff, dropped, deleted)
    for table in _READ_TABLES:
        await _expire(conn, caps, table, "captured_at", read_cutoff, dropped, deleted)
    if caps.tsl:
        for table in _READ_TABLES:
            if await _table_kind(conn, caps, table) == "hypertable":
                await _sync_policy(conn, table, read_days)
    return dropped, deleted


async def _log_run(conn: AsyncConnection, result: RetentionResult) -> int:
    """Write the run's row in ``retention_runs``; returns its id."""
    cur = await conn.execute(
        "INSERT INTO retention_runs (started_at, finished_at, layout, read_cutoff, alert_cutoff,"
        " dropped, deleted) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING run_id",
        [result.started_at, result.finished_at, result.layout, result.read_cutoff, result.alert_cutoff,
         Jsonb(result.dropped, dumps=json_dumps), Jsonb(result.deleted, dumps=json_dumps)],
    )
    row = await cur.fetchone()
    assert row is not None
    return row[0]


async def run_retention(
    conn: AsyncConnection,
    caps: Capabilities,
    *,
    read_days: int,
    alert_days: int,
    now: datetime | None = None,
) -> RetentionResult:
    """Create the next days' partitions, drop what is past its retention period, log the run.

    Commits as it goes, starting with whatever transaction ``conn`` has open. The new
    partitions are committed first, on their own: a later step that fails (a lock
    timeout behind a long query) must not take them back, or writers would fall into
    DEFAULT. Drops, deletions and the log row are then one transaction, so a run is
    logged exactly when it took effect.
    """
    if read_days < 1 or alert_days < 1:
        raise ValueError("retention periods must be at least one day")
    started = datetime.now(UTC)
    now = now or started
    read_cutoff, alert_cutoff = now - timedelta(days=read_days), now - timedelta(days=alert_days)
    await conn.commit()
    # from the oldest day kept, not today: days this job was not run for (stopped a week) had their
    # rows fall into DEFAULT, which were never moved out, and every new day's partition scanned
    # DEFAULT under an exclusive lock until retention deleted them. Existing days cost nothing.
    await ensure_partitions(conn, now + timedelta(days=PARTITION_DAYS_AHEAD), since=read_cutoff)
    await conn.commit()
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        # dropping chunks or partitions locks the tables: fail rather than stall writers
        await conn.execute("SET LOCAL lock_timeout = '10s'")
        dropped, deleted = await _expire_all(conn, caps, read_cutoff, alert_cutoff, read_days)
        layout = await recorded_layout(conn) or caps.layout
        result = RetentionResult(0, started, datetime.now(UTC), layout, read_cutoff, alert_cutoff, dropped,
                                 deleted)
        result = replace(result, run_id=await _log_run(conn, result))
    logger.info("retention run %d: dropped %s, deleted %s", result.run_id,
                {t: len(names) for t, names in dropped.items()}, deleted)
    return result
