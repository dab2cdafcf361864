"""Passages: several frames of one vehicle at one lane -> one voted result.

Recomputed from the stored reads every few seconds (absolute values, so a
crash, a replay or two workers doing it cannot corrupt a passage). A passage
is ``provisional`` while its vehicle may still be in view, then ``final``.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from itertools import groupby

from detectors import plate_format
from detectors.passages import Observation, group_passages, vote
from ioc.schemas import utcnow
from ioc.storage.passages import LaneRead, PassageRow, lane_reads, replace_passages
from streams.context import WorkerContext
from streams.sinks import write_batch

EVERY_S = 5.0
GAP_S = 3.0
MAX_DURATION_S = 30.0
WINDOW = timedelta(minutes=10)


def passages_from_reads(reads: list[LaneRead], *, now_s: float) -> list[PassageRow]:
    rows = []
    for _, lane in groupby(reads, key=lambda r: (r.camera_id, r.lane)):
        lane_list = list(lane)
        by_id = {str(r.read_id): r for r in lane_list}
        observations = [
            Observation(str(r.read_id), r.captured_at.timestamp(), r.text, r.confidence,
                        tuple((c["text"], c["confidence"]) for c in r.candidates))
            for r in lane_list
        ]
        for passage in group_passages(observations, gap_s=GAP_S, max_duration_s=MAX_DURATION_S):
            result = vote(passage)
            first, last = by_id[passage[0].read_id], by_id[passage[-1].read_id]
            rows.append(PassageRow(
                passage_id=uuid.uuid5(first.read_id, "passage"),
                camera_id=first.camera_id, checkpoint_id=first.checkpoint_id, lane=first.lane,
                direction=first.direction, started_at=first.captured_at, ended_at=last.captured_at,
                text=result.text, display=plate_format.display(result.text),
                confidence=result.confidence, reads=len(passage), support=result.support,
                read_ids=[uuid.UUID(o.read_id) for o in passage],
                best_read_id=uuid.UUID(result.best_read_id),
                status="final" if now_s - passage[-1].at > 2 * GAP_S else "provisional",
            ))
    return rows


def register(ctx: WorkerContext) -> None:
    @ctx.timer(EVERY_S, name="passages")
    async def build_passages() -> None:
        now = utcnow()
        since = now - WINDOW
        # passages starting in the first seconds of the window may be cut: leave them be
        settled_since = since + timedelta(seconds=MAX_DURATION_S)

        async def rebuild(conn, _rows) -> int:  # noqa: ANN001
            rows = passages_from_reads(await lane_reads(conn, since=since), now_s=now.timestamp())
            return await replace_passages(
                conn, [p for p in rows if p.started_at >= settled_since], started_since=settled_since
            )

        await write_batch(await ctx.pool(), "passages", rebuild, [None])
