"""Passages (multi-frame votes per vehicle) derived from stored plate reads."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import class_row

__all__ = ["LaneRead", "PassageRow", "lane_reads", "replace_passages"]


@dataclass(frozen=True, slots=True)
class LaneRead:
    read_id: uuid.UUID
    camera_id: str
    checkpoint_id: str
    lane: int
    direction: str
    captured_at: datetime
    text: str
    confidence: float
    candidates: list[dict]


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


async def lane_reads(conn: AsyncConnection, *, since: datetime) -> list[LaneRead]:
    """Reads captured since ``since``, ordered by camera, lane and time."""
    async with conn.cursor(row_factory=class_row(LaneRead)) as cur:
        await cur.execute(
            "SELECT read_id, camera_id, checkpoint_id, lane, direction, captured_at, text, confidence,"
            " candidates FROM plate_reads WHERE captured_at >= %s"
            " ORDER BY camera_id, lane, captured_at, read_id",
            [since],
        )
        return await cur.fetchall()


async def replace_passages(
    conn: AsyncConnection, passages: Sequence[PassageRow], *, started_since: datetime
) -> int:
    """Make the passages starting at or after ``started_since`` exactly ``passages``
    (upsert changed ones, delete ones a late read has merged away); returns rows changed."""
    changed = 0
    for p in passages:
        cur = await conn.execute(
            """INSERT INTO passages AS t (passage_id, camera_id, checkpoint_id, lane, direction,
                   started_at, ended_at, text, display, confidence, reads, support, read_ids,
                   best_read_id, status)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (passage_id) DO UPDATE SET
                   ended_at = excluded.ended_at, text = excluded.text, display = excluded.display,
                   confidence = excluded.confidence, reads = excluded.reads, support = excluded.support,
                   read_ids = excluded.read_ids, best_read_id = excluded.best_read_id,
                   status = excluded.status, updated_at = now()
               WHERE (t.ended_at, t.text, t.reads, t.status)
                     IS DISTINCT FROM (excluded.ended_at, excluded.text, excluded.reads, excluded.status)""",
            [p.passage_id, p.camera_id, p.checkpoint_id, p.lane, p.direction, p.started_at, p.ended_at,
             p.text, p.display, p.confidence, p.reads, p.support, p.read_ids, p.best_read_id, p.status],
        )
        changed += cur.rowcount
    cur = await conn.execute(
        "DELETE FROM passages WHERE started_at >= %s AND NOT (passage_id = ANY(%s))",
        [started_since, [p.passage_id for p in passages]],
    )
    return changed + cur.rowcount
