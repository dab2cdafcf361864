"""Passages: several frames of one vehicle at one lane -> one voted result.

Built from the reads recognised in frames as they are stored
(``streams.live_passages``; an edge camera already sends one read per vehicle)
and written every second: ``provisional`` while the vehicle may still be in
view, then ``final``.
Rows hold absolute values, so a replay or a rewrite cannot corrupt them. Whenever
partitions are assigned (a start, a rebalance), the reads of the last minute of the lanes
this worker is not fed yet are loaded before the new partitions are read: the open passages
a crash left unwritten are rebuilt, and a vehicle in view while its lane moves to this worker
keeps its passage (the same first read, so the same id) instead of being counted again.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import timedelta

from faust.types import TP

from detectors.passages import GAP_S, MAX_DURATION_S
from ioc import metrics
from ioc.schemas import utcnow
from ioc.storage.passages import lane_reads, upsert_passages
from streams.checkpoint_vehicles import count_final_passages
from streams.context import WorkerContext
from streams.sinks import write_batch

logger = logging.getLogger(__name__)

EVERY_S = 1.0
# longer than a passage of look-alike reads lasts (detectors.passages.MAX_DURATION_S) plus its
# gaps; a vehicle standing in view longer than this across a restart or a rebalance gets a
# second passage
SEED_LOOKBACK = timedelta(minutes=1)
# the reads before that window too, as far back as a passage in it may have opened: a passage cut
# at the window's start would open on a later read, so under another id than its vehicle's
SEED_CONTEXT = timedelta(seconds=MAX_DURATION_S + 2 * GAP_S)
# a rebalance waits for the seeding (the new partitions are paused meanwhile); past this, or with
# the database away, the passages timer seeds instead, as the reads already flow
SEED_TIMEOUT_S = 10.0


def register(ctx: WorkerContext) -> None:
    unseeded = True

    async def seed_lanes() -> None:
        """Load the recent reads of the lanes this worker is not fed yet into its passages."""
        nonlocal unseeded
        whole_from = utcnow() - SEED_LOOKBACK
        async with (await ctx.pool()).connection() as conn:
            reads = await lane_reads(conn, since=whole_from - SEED_CONTEXT, source="camera")
        for read in reads:
            if (read.camera_id, read.lane) not in ctx.passages.owned:
                ctx.passages.seed(read, whole_from=whole_from)
        ctx.passages.reclaim()  # seeded first: the reads stored by the lanes' owner meanwhile are in
        unseeded = False

    @ctx.app.on_partitions_revoked.connect
    async def release_revoked_lanes(app: object, revoked: set[TP], **_: object) -> None:  # noqa: ARG001 - Faust signal
        ctx.passages.release(revoked)

    @ctx.app.on_partitions_assigned.connect
    async def seed_assigned_lanes(app: object, assigned: set[TP], **_: object) -> None:  # noqa: ARG001 - Faust signal
        nonlocal unseeded
        ctx.passages.assign(assigned)
        unseeded = True
        try:  # a failure here would crash the worker: the timer tries again instead
            async with asyncio.timeout(SEED_TIMEOUT_S):
                await seed_lanes()
        except Exception as exc:  # noqa: BLE001
            logger.warning("passages: the lanes' recent reads could not be loaded as partitions were "
                           "assigned (%r); the passages timer loads them", exc)

    @ctx.timer(EVERY_S, name="passages")
    async def write_passages() -> None:
        if unseeded:
            await seed_lanes()
        pool = await ctx.pool()
        cameras = await ctx.cameras()  # before the flush, which forgets what it hands over
        if rows := ctx.passages.flush():
            _, rejected = await write_batch(pool, "passages", upsert_passages, rows)
            refused = {id(r.row) for r in rejected}
            written = [row for row in rows if id(row) not in refused]
            for status, n in Counter(row.status for row in written).items():
                metrics.PASSAGES.labels(status).inc(n)
            first_final = [row for row in written if row.passage_id not in ctx.passages.rewritten]
            count_final_passages(first_final, cameras, ctx.settings.home_province)
