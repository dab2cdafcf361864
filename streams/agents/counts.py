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
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from functools import partial

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from ioc.schemas import utcnow
from ioc.storage.checkpoint_counts import refresh_counts
from ioc.storage.database import connect
from ioc.storage.late_rollups import past_the_policies, refresh_late_rollups
from ioc.storage.uncounted_minutes import as_ranges, take_minute, take_minutes
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
        swept = [(now - LOOKBACK, now)] if sweep else []
        taken: list[datetime] = []
        recounted: list[tuple[datetime, datetime]] = []

        async def recount(conn: AsyncConnection, _: object) -> int:
            taken[:] = await take_minutes(conn)  # of the last try: back on the queue if it rolled back
            recounted[:] = [*swept, *as_ranges(taken)]
            return await _refresh(conn, recounted)

        pool = await ctx.pool()
        try:
            _, refused = await write_batch(pool, "checkpoint_counts", recount, [None])
            error: Exception | None = refused[0].error if refused else None
        except DATABASE_UNAVAILABLE:
            raise  # the guard logs it and the next refresh takes the minutes again
        except psycopg.Error as exc:  # write_batch refuses data errors only; any other (a compressed
            # chunk it cannot update) had rolled back every refresh after it, for good
            error = exc
        if error is not None:
            logger.error("checkpoint counts: the refresh was refused by the database (%s); recounting "
                         "minute by minute", error)
            recounted[:] = await _recount_apart(pool, swept, taken)
        if sweep:
            swept_at = time.monotonic()
        if past_the_policies(recounted, now=utcnow()):  # only then a connection for it
            await _refresh_late_rollups(ctx, recounted)


async def _recount_apart(
    pool: AsyncConnectionPool, swept: list[tuple[datetime, datetime]], queued: list[datetime]
) -> list[tuple[datetime, datetime]]:
    """Recount ``swept`` (minute by minute if refused whole) and the ``queued`` minutes one by one;
    returns those recounted. One minute refused had made the whole refresh refused, the same
    minutes taken again each time, and nothing was counted any more."""
    recounted: list[tuple[datetime, datetime]] = []
    minutes: list[datetime] = []
    for since, until in swept:
        if await _refusal(pool, partial(refresh_counts, since=since, until=until)) is None:
            recounted.append((since, until))
        else:
            minutes += [minute for minute in _minutes(since, until)
                        if await _recount_minute(pool, minute, queued=False)]
    minutes += [minute for minute in queued if await _recount_minute(pool, minute, queued=True)]
    return [*recounted, *as_ranges(minutes)]


async def _recount_minute(pool: AsyncConnectionPool, minute: datetime, *, queued: bool) -> bool:
    """Recount ``minute``, taking it off the queue in the same transaction (a crash leaves it
    queued); whether the database took it. One it refuses is logged and taken off on its own: left
    queued, it would make every refresh after it refused."""

    async def take_and_recount(conn: AsyncConnection) -> None:
        if queued:
            await take_minute(conn, minute)
        await refresh_counts(conn, since=minute, until=minute)

    if (error := await _refusal(pool, take_and_recount)) is None:
        return True
    logger.error("checkpoint counts: %s refused by the database (%s); not recounted", minute, error)
    if queued:
        async with pool.connection() as conn, conn.transaction():
            await take_minute(conn, minute)
    return False


async def _refusal(pool: AsyncConnectionPool, write: Callable[[AsyncConnection], Awaitable[object]]
                   ) -> psycopg.Error | None:
    """Run ``write`` in a transaction of its own; the error if the database refused it (any but an
    outage, which propagates: the timer's guard logs it and the next refresh tries again)."""
    try:
        async with pool.connection() as conn, conn.transaction():
            await write(conn)
    except DATABASE_UNAVAILABLE:
        raise
    except psycopg.Error as exc:
        return exc
    return None


def _minutes(since: datetime, until: datetime) -> list[datetime]:
    """The minutes ``refresh_counts(since=since, until=until)`` recounts."""
    minute, last = since.replace(second=0, microsecond=0), until.replace(second=0, microsecond=0)
    minutes = []
    while minute <= last:
        minutes.append(minute)
        minute += timedelta(minutes=1)
    return minutes


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
