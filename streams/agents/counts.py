"""Checkpoint counts: 1-minute windows recomputed from stored rows.

Counting from the stored (deduplicated) reads instead of in-memory windows
makes replays harmless: a refresh writes absolute values, so a replayed read
can never be counted twice and a crashed worker loses no window.

A refresh recomputes only the minutes rows were stored in since the last one
(queued with them, :mod:`ioc.storage.uncounted_minutes`, and taken off by the
transaction that recounts them): recomputing the last 15 minutes every 10 s read
every row of them again, each time and in every worker (seconds of database time
per refresh at 1,000 reads/s, which delayed alerts). Every few minutes a sweep
recomputes the whole ``LOOKBACK`` anyway, for rows written by other means.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from ioc.schemas import utcnow
from ioc.storage.checkpoint_counts import refresh_counts
from ioc.storage.database import connect
from ioc.storage.late_rollups import past_the_policies, refresh_late_rollups
from ioc.storage.uncounted_minutes import as_ranges, take_minutes
from streams.context import WorkerContext
from streams.sinks import DATABASE_UNAVAILABLE, write_batch

logger = logging.getLogger(__name__)

REFRESH_EVERY_S = 10.0
SWEEP_EVERY_S = 300.0
LOOKBACK = timedelta(minutes=15)


def register(ctx: WorkerContext) -> None:
    swept_at = float("-inf")  # the first refresh after start-up is a sweep

    @ctx.timer(REFRESH_EVERY_S, name="refresh-checkpoint-counts")
    async def refresh_checkpoint_counts() -> None:
        nonlocal swept_at
        sweep = time.monotonic() - swept_at >= SWEEP_EVERY_S
        now = utcnow()
        recounted: list[tuple[datetime, datetime]] = []

        async def recount(conn: AsyncConnection, _: object) -> int:
            ranges = [(now - LOOKBACK, now)] if sweep else []
            ranges += as_ranges(await take_minutes(conn))
            recounted[:] = ranges  # of the try that committed
            return await _refresh(conn, ranges)

        pool = await ctx.pool()
        _, refused = await write_batch(pool, "checkpoint_counts", recount, [None])
        if refused:
            logger.error("checkpoint counts: the refresh was refused by the database (%s); recounting "
                         "range by range", refused[0])
            recounted[:] = await _recount_apart(pool, [(now - LOOKBACK, now)] if sweep else [])
        if sweep:
            swept_at = time.monotonic()
        if past_the_policies(recounted, now=utcnow()):  # only then a connection for it
            await _refresh_late_rollups(ctx, recounted)


async def _recount_apart(
    pool: AsyncConnectionPool, swept: list[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    """Recount the queued minutes (and ``swept``) range by range, the ranges the database refuses
    logged and left uncounted; returns those recounted. Not expected (a value it cannot sum): one
    such range had rolled back every refresh after it, the same minutes taken again each time,
    and nothing was counted any more. The minutes are taken off in a transaction of their own
    first: a worker stopped in between loses them (the sweep recounts the last 15 minutes)."""
    async with pool.connection() as conn:
        ranges = [*swept, *as_ranges(await take_minutes(conn))]
    _, refused = await write_batch(pool, "checkpoint_counts", _refresh, ranges)
    for rejected in refused:
        logger.error("checkpoint counts: %s to %s refused by the database (%s); not recounted",
                     *rejected.row, rejected.error)
    dropped = {id(rejected.row) for rejected in refused}
    return [span for span in ranges if id(span) not in dropped]


async def _refresh(conn: AsyncConnection, ranges: list[tuple[datetime, datetime]]) -> int:
    changed = 0
    for since, until in ranges:
        changed += await refresh_counts(conn, since=since, until=until)
    return changed


async def _refresh_late_rollups(ctx: WorkerContext, ranges: list[tuple[datetime, datetime]]) -> None:
    """Minutes recounted further back than the roll-ups' refresh policies look: refresh those
    (``ioc.storage.late_rollups``; nothing to do where the roll-ups are plain tables)."""
    try:
        async with await connect(ctx.settings.database_conninfo(), autocommit=True) as conn:
            for view, start, end in await refresh_late_rollups(conn, ranges, now=utcnow()):
                logger.info("late counts: %s refreshed from %s to %s", view, start, end)
    except DATABASE_UNAVAILABLE as exc:  # the minutes are right; the roll-ups wait for the next late ones
        logger.error("late counts: the roll-ups could not be refreshed (%s)", exc)
