"""Checkpoint counts: 1-minute windows recomputed from stored rows.

Counting from the stored (deduplicated) reads instead of in-memory windows
makes replays harmless: a refresh writes absolute values, so a replayed read
can never be counted twice and a crashed worker loses no window.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from ioc.schemas import utcnow
from ioc.storage.checkpoint_counts import refresh_counts
from streams.context import WorkerContext
from streams.sinks import write_batch

logger = logging.getLogger(__name__)

REFRESH_EVERY_S = 10.0
LOOKBACK = timedelta(minutes=15)


def register(ctx: WorkerContext) -> None:
    @ctx.timer(REFRESH_EVERY_S, name="refresh-checkpoint-counts")
    async def refresh_checkpoint_counts() -> None:
        until = utcnow()
        pool = await ctx.pool()

        async def refresh(conn, windows):  # noqa: ANN001
            since, end = windows[0]
            return await refresh_counts(conn, since=since, until=end)

        await write_batch(pool, "checkpoint_counts", refresh, [(until - LOOKBACK, until)])
