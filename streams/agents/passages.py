"""Passages: several frames of one vehicle at one lane -> one voted result.

Built from the reads recognised in frames as they are stored
(``streams.live_passages``; an edge camera already sends one read per vehicle)
and written every second: ``provisional`` while the vehicle may still be in
view, then ``final``.
Rows hold absolute values, so a replay or a rewrite cannot corrupt them. After a
start, the reads of the last minute are loaded to rebuild the open passages a
crash may have left unwritten.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from ioc import metrics
from ioc.schemas import utcnow
from ioc.storage.passages import lane_reads, upsert_passages
from streams.checkpoint_vehicles import count_final_passages
from streams.context import WorkerContext
from streams.sinks import write_batch

EVERY_S = 1.0
# longer than a passage of look-alike reads lasts (detectors.passages.MAX_DURATION_S) plus its
# gaps; a vehicle standing in view longer than this across a restart gets a second passage
STARTUP_LOOKBACK = timedelta(minutes=1)


def register(ctx: WorkerContext) -> None:
    seeded = False

    @ctx.timer(EVERY_S, name="passages")
    async def write_passages() -> None:
        nonlocal seeded
        pool = await ctx.pool()
        if not seeded:
            async with pool.connection() as conn:
                for read in await lane_reads(conn, since=utcnow() - STARTUP_LOOKBACK, source="camera"):
                    ctx.passages.seed(read)
            seeded = True
        cameras = await ctx.cameras()  # before the flush, which forgets what it hands over
        if rows := ctx.passages.flush():
            _, rejected = await write_batch(pool, "passages", upsert_passages, rows)
            refused = {id(r.row) for r in rejected}
            written = [row for row in rows if id(row) not in refused]
            # a frame camera's vehicles are counted by passage: refresh their windows
            ctx.touched_minutes.add(row.started_at for row in written)
            for status, n in Counter(row.status for row in written).items():
                metrics.PASSAGES.labels(status).inc(n)
            first_final = [row for row in written if row.passage_id not in ctx.passages.rewritten]
            count_final_passages(first_final, cameras, ctx.settings.home_province)
