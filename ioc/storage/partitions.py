"""Daily partitions for plain PostgreSQL, where TimescaleDB's chunks are not available.

Each time-series table has one partition per UTC day plus a DEFAULT partition,
so a row with an unexpected timestamp (a camera clock years off, a late
backfill) is stored instead of refused. :func:`ensure_partitions` creates the
days ahead of time and moves any rows that landed in DEFAULT into the new day.
On TimescaleDB these functions find no partitioned tables and do nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

from psycopg import AsyncConnection, sql

logger = logging.getLogger(__name__)

__all__ = ["PARTITIONED_TABLES", "drop_partitions_before", "ensure_partitions", "partition_name"]

# table -> partitioning (time) column
PARTITIONED_TABLES: dict[str, str] = {
    "plate_reads": "captured_at",
    "plate_crops": "captured_at",
    "sensor_readings": "captured_at",
}

_LOCK_KEY = 0x10C_0002  # serialises partition DDL between processes
# Partition DDL locks the parent table; behind a long query it would stall every
# writer queued after it. Better to fail and try again on the next run.
_LOCK_TIMEOUT = "SET LOCAL lock_timeout = '10s'"
_DAY_SUFFIX = re.compile(r"_p(\d{8})$")


def partition_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def _day_of(moment: datetime | date) -> date:
    if isinstance(moment, datetime):
        return moment.astimezone(UTC).date()
    return moment


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


async def partitioned_tables(conn: AsyncConnection) -> list[str]:
    """Those of our time-series tables that are declaratively partitioned here."""
    cur = await conn.execute(
        """SELECT c.relname FROM pg_partitioned_table p
             JOIN pg_class c ON c.oid = p.partrelid
            WHERE c.relname = ANY(%s) AND c.relnamespace = current_schema()::regnamespace
            ORDER BY c.relname""",
        [list(PARTITIONED_TABLES)],
    )
    return [name for (name,) in await cur.fetchall()]


async def _partitions_of(conn: AsyncConnection, table: str) -> set[str]:
    cur = await conn.execute(
        """SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = %s::regclass""",
        [table],
    )
    return {name for (name,) in await cur.fetchall()}


async def _insertable_columns(conn: AsyncConnection, table: str) -> list[str]:
    cur = await conn.execute(
        """SELECT attname FROM pg_attribute
            WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped AND attgenerated = ''
            ORDER BY attnum""",
        [table],
    )
    return [name for (name,) in await cur.fetchall()]


async def _create_day(conn: AsyncConnection, table: str, day: date) -> None:
    """Create one day's partition, first moving that day's rows out of DEFAULT."""
    column = PARTITIONED_TABLES[table]
    low, high = _midnight(day), _midnight(day + timedelta(days=1))
    ident = sql.Identifier
    default, part, col = ident(f"{table}_default"), ident(partition_name(table, day)), ident(column)
    cur = await conn.execute(
        sql.SQL("SELECT EXISTS (SELECT 1 FROM ONLY {} WHERE {} >= %s AND {} < %s)").format(default, col, col),
        [low, high],
    )
    row = await cur.fetchone()
    stray = bool(row and row[0])
    if stray:
        await conn.execute(
            sql.SQL("CREATE TEMP TABLE _ioc_moving AS SELECT * FROM ONLY {} WHERE {} >= %s AND {} < %s")
            .format(default, col, col), [low, high])
        await conn.execute(
            sql.SQL("DELETE FROM ONLY {} WHERE {} >= %s AND {} < %s").format(default, col, col), [low, high])
    await conn.execute(
        sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
            part, ident(table), sql.Literal(low), sql.Literal(high)))
    if stray:
        columns = sql.SQL(", ").join(map(ident, await _insertable_columns(conn, table)))
        await conn.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM _ioc_moving").format(
            ident(table), columns, columns))
        await conn.execute("DROP TABLE _ioc_moving")
        logger.info("moved %s rows of %s out of its default partition", table, day)


async def ensure_partitions(
    conn: AsyncConnection, until: datetime | date, *, since: datetime | date | None = None
) -> list[str]:
    """Create the daily partitions from ``since`` (default: today, UTC) to ``until``
    inclusive for every partitioned time-series table; returns the names created.

    Safe to run from several processes at once (advisory lock) and to re-run.
    """
    tables = await partitioned_tables(conn)
    if not tables:
        return []
    first = _day_of(since if since is not None else datetime.now(UTC))
    last = _day_of(until)
    created: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        await conn.execute(_LOCK_TIMEOUT)
        for table in tables:
            await conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} PARTITION OF {} DEFAULT").format(
                sql.Identifier(f"{table}_default"), sql.Identifier(table)))
            existing = await _partitions_of(conn, table)
            for day in _days(first, last):
                name = partition_name(table, day)
                if name not in existing:
                    await _create_day(conn, table, day)
                    created.append(name)
    return created


async def drop_partitions_before(
    conn: AsyncConnection, table: str, cutoff: datetime
) -> tuple[list[str], int]:
    """Drop the day partitions of ``table`` that end at or before ``cutoff`` and delete
    older rows from its DEFAULT partition; returns (dropped partitions, rows deleted)."""
    column = PARTITIONED_TABLES[table]
    dropped: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        await conn.execute(_LOCK_TIMEOUT)
        for name in sorted(await _partitions_of(conn, table)):
            match = _DAY_SUFFIX.search(name)
            if not match:
                continue
            day = datetime.strptime(match.group(1), "%Y%m%d").date()
            if _midnight(day + timedelta(days=1)) <= cutoff:
                await conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
                dropped.append(name)
        cur = await conn.execute(
            sql.SQL("DELETE FROM ONLY {} WHERE {} < %s").format(
                sql.Identifier(f"{table}_default"), sql.Identifier(column)), [cutoff])
        return dropped, cur.rowcount
