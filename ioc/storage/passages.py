"""Passages (multi-frame votes per vehicle) derived from stored plate reads."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import class_row

from ioc.storage.staged_insert import StagedTable, copy_and_insert
from ioc.storage.uncounted_minutes import queue_minutes

__all__ = ["LaneRead", "PassageRow", "lane_reads", "upsert_passages"]


@dataclass(frozen=True, slots=True)
class LaneRead:
    read_id: uuid.UUID
    camera_id: str
    checkpoint_id: str
    lane: int
    direction: str
    captured_at: datetime
    text: str
    display: str
    confidence: float
    candidates: list[dict]
    source_event_id: uuid.UUID  # the frame the read came from


@dataclass(frozen=True, slots=True)
class PassageRow:
    passage_id: uuid.UUID
    camera_id: str
    checkpoint_id: str
    lane: int
    direction: str
    started_at: datetime
    ended_at: datetime
    text: str
    display: str
    confidence: float
    reads: int
    support: int
    read_ids: list[uuid.UUID]
    best_read_id: uuid.UUID
    status: str


async def lane_reads(conn: AsyncConnection, *, since: datetime, source: str = "camera") -> list[LaneRead]:
    """Reads of one source captured since ``since``, ordered by camera, lane and time."""
    async with conn.cursor(row_factory=class_row(LaneRead)) as cur:
        await cur.execute(
            "SELECT read_id, camera_id, checkpoint_id, lane, direction, captured_at, text, display,"
            " confidence, candidates, source_event_id"
            " FROM plate_reads WHERE captured_at >= %s AND source = %s"
            " ORDER BY camera_id, lane, captured_at, read_id",
            [since, source],
        )
        return await cur.fetchall()


_PASSAGES = StagedTable(
    "passages",
    [("passage_id", "uuid"), ("camera_id", "text"), ("checkpoint_id", "text"), ("lane", "int2"),
     ("direction", "text"), ("started_at", "timestamptz"), ("ended_at", "timestamptz"), ("text", "text"),
     ("display", "text"), ("confidence", "float4"), ("reads", "int4"), ("support", "int4"),
     ("read_ids", "uuid[]"), ("best_read_id", "uuid"), ("status", "text")],
    conflict=["passage_id"],
    update=["started_at", "ended_at", "text", "display", "confidence", "reads", "support", "read_ids",
            "best_read_id", "status"],
    touch="updated_at",
)


async def upsert_passages(conn: AsyncConnection, passages: Sequence[PassageRow]) -> int:
    """Insert new passages and update changed ones (one COPY); returns the rows written. Their
    minutes (a frame camera's vehicles count in the minute their passage started) are queued for
    recounting, and so is the minute a rewritten passage started in before: a late read that
    joins it at its start moves it to an earlier minute, which the old one must count no more."""
    async with conn.transaction():
        cur = await conn.execute("SELECT started_at FROM passages WHERE passage_id = ANY(%s)",
                                 [[p.passage_id for p in passages]])
        await queue_minutes(conn, [started_at for (started_at,) in await cur.fetchall()])
        written = await copy_and_insert(conn, _PASSAGES, (
            (p.passage_id, p.camera_id, p.checkpoint_id, p.lane, p.direction, p.started_at, p.ended_at,
             p.text, p.display, p.confidence, p.reads, p.support, p.read_ids, p.best_read_id, p.status)
            for p in passages))
        await queue_minutes(conn, (p.started_at for p in passages))
    return written
