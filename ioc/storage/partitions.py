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
from psycopg.pq import TransactionStatus

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


async def _lock_parent(conn: AsyncConnection, table: str) -> None:
    """ACCESS EXCLUSIVE on ``table`` and its partitions until the transaction ends.

    ``CREATE TABLE ... PARTITION OF`` takes this lock on the parent anyway (and on
    the DEFAULT partition, which it scans); taking it first, before looking in
    DEFAULT, means no writer can add a row for the day between the check, the move
    and the creation (a row committed there was lost, or made the creation fail),
    and there is no upgrade from a weaker lock for another session to deadlock with.
    """
    await conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(table)))


async def _take_from_default(
    conn: AsyncConnection, table: str, low: datetime, high: datetime
) -> sql.Composable | None:
    """Move DEFAULT's rows in ``[low, high)`` into the temporary ``_ioc_moving``; returns its
    columns, or None when there were none (and no table was made)."""
    ident = sql.Identifier
    default, col = ident(f"{table}_default"), ident(PARTITIONED_TABLES[table])
    cur = await conn.execute(
        sql.SQL("SELECT EXISTS (SELECT 1 FROM ONLY {} WHERE {} >= %s AND {} < %s)").format(default, col, col),
        [low, high],
    )
    row = await cur.fetchone()
    if not (row and row[0]):
        return None
    columns = sql.SQL(", ").join(map(ident, await _insertable_columns(conn, table)))
    await conn.execute(sql.SQL("CREATE TEMP TABLE _ioc_moving AS SELECT {} FROM ONLY {} WITH NO DATA")
                       .format(columns, default))
    # one statement: what is deleted is exactly what is kept
    await conn.execute(
        sql.SQL("WITH moved AS (DELETE FROM ONLY {} WHERE {} >= %s AND {} < %s RETURNING {})"
                " INSERT INTO _ioc_moving SELECT * FROM moved").format(default, col, col, columns),
        [low, high])
    return columns


async def _create_day(conn: AsyncConnection, table: str, day: date) -> None:
    """Create one day's partition, first moving that day's rows out of DEFAULT (with the
    parent locked: see :func:`_lock_parent`)."""
    low, high = _midnight(day), _midnight(day + timedelta(days=1))
    ident = sql.Identifier
    await _lock_parent(conn, table)
    columns = await _take_from_default(conn, table, low, high)
    await conn.execute(
        sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
            ident(partition_name(table, day)), ident(table), sql.Literal(low), sql.Literal(high)))
    if columns is not None:
        cur = await conn.execute(sql.SQL("INSERT INTO {} ({}) SELECT {} FROM _ioc_moving").format(
            ident(table), columns, columns))
        await conn.execute("DROP TABLE _ioc_moving")
        logger.info("moved %d rows of %s for %s out of its default partition", cur.rowcount, table, day)


async def ensure_partitions(
    conn: AsyncConnection, until: datetime | date, *, since: datetime | date | None = None
) -> list[str]:
    """Create the daily partitions from ``since`` (default: today, UTC) to ``until``
    inclusive for every partitioned time-series table; returns the names created.

    Safe to run from several processes at once (advisory lock) and to re-run. Called
    outside a transaction, each table is done in a transaction of its own, committed, so
    a table's writers wait only while its own days are created, and a session never
    holds one parent while waiting for another (writers lock plate_reads, then
    plate_crops); inside the caller's transaction (a migration), in savepoints.
    """
    own = conn.info.transaction_status == TransactionStatus.IDLE
    tables = await partitioned_tables(conn)
    if own and not conn.autocommit:
        await conn.commit()  # the query above began a transaction: the tables' must be their own
    if not tables:
        return []
    first = _day_of(since if since is not None else datetime.now(UTC))
    last = _day_of(until)
    created: list[str] = []
    for table in tables:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
            await conn.execute(_LOCK_TIMEOUT)
            created += await _ensure_days(conn, table, first, last)
    return created


async def _ensure_days(conn: AsyncConnection, table: str, first: date, last: date) -> list[str]:
    await conn.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} PARTITION OF {} DEFAULT").format(
        sql.Identifier(f"{table}_default"), sql.Identifier(table)))
    existing = await _partitions_of(conn, table)
    created: list[str] = []
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
