"""Database writes that survive outages: back off, retry, never drop or duplicate.

Agents call :func:`write_batch` before acknowledging their events, so Kafka
offsets are committed only after the database commit. Writes are idempotent
(deterministic ids, ``ON CONFLICT``), so a retry after an ambiguous failure
cannot double-count.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ioc import metrics
from streams.retries import Backoff

logger = logging.getLogger(__name__)

T = TypeVar("T")
Writer = Callable[[AsyncConnection, Sequence[T]], Awaitable[int]]

# The database cannot take writes right now, whatever the rows: wait it out, never
# dead-letter. Lost connections and missing resources (disk full, out of memory, too
# many connections, shutting down) are OperationalError; a read-only database (a
# standby after a failover, default_transaction_read_only) is an InternalError; a table,
# column or grant missing (a worker deployed before `ioc migrate`, a role without its
# grants) is a ProgrammingError that no row causes: each row would be refused in turn.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout, psycopg.errors.ReadOnlySqlTransaction,
    psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn, psycopg.errors.InsufficientPrivilege,
)


class RowRejectedError(Exception):
    """A row the database refuses for what it is (not for an outage)."""

    def __init__(self, row: object, error: Exception) -> None:
        super().__init__(str(error))
        self.row = row
        self.error = error


async def write_batch(
    pool: AsyncConnectionPool, table: str, write: Writer[T], rows: Sequence[T]
) -> tuple[int, list[RowRejectedError]]:
    """Write ``rows`` in one transaction; returns (new rows, rows the database refused).

    Outages (connection errors) are retried with exponential back-off for as long
    as it takes. A batch refused for its content is retried row by row so one bad
    row cannot block the others; the refused rows are returned for dead-lettering.
    """
    if not rows:
        return 0, []
    metrics.DB_WRITE_BATCH_ROWS.labels(table).observe(len(rows))
    try:
        return await _write_with_retry(pool, table, write, rows), []
    except (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError) as exc:
        logger.warning("batch of %d refused by %s (%s); writing row by row", len(rows), table, exc)
    written, rejected = 0, []
    for row in rows:
        try:
            written += await _write_with_retry(pool, table, write, [row])
        except (psycopg.DataError, psycopg.IntegrityError, psycopg.ProgrammingError) as exc:
            rejected.append(RowRejectedError(row, exc))
    return written, rejected


async def _write_with_retry(
    pool: AsyncConnectionPool, table: str, write: Writer[T], rows: Sequence[T]
) -> int:
    backoff = Backoff()
    while True:
        started = time.perf_counter()
        try:
            async with pool.connection() as conn:
                try:
                    async with conn.transaction():
                        new = await write(conn, rows)
                except psycopg.errors.ReadOnlySqlTransaction:
                    # A read-only session stays read-only (a standby, or a database default
                    # read at connect): close it so the retry gets a new one.
                    await conn.close()
                    raise
        except DATABASE_UNAVAILABLE as exc:
            metrics.DB_ERRORS.labels(table).inc()
            logger.warning("database unavailable writing %s (%s); retrying in %.1fs", table, exc,
                           backoff.delay)
            await backoff.wait()
            continue
        metrics.DB_WRITE_SECONDS.labels(table).observe(time.perf_counter() - started)
        metrics.ROWS_WRITTEN.labels(table).inc(new)
        return new

