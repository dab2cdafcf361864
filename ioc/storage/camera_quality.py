"""Read quality per camera: how many plates each camera read lately and how sure it was.

A camera that is online but dirty, misaimed or blinded reads fewer plates with
lower confidence; operators see that next to online/offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import class_row

__all__ = ["ReadQuality", "read_quality"]


@dataclass(frozen=True, slots=True)
class ReadQuality:
    camera_id: str
    reads: int
    mean_confidence: float
    low_confidence_share: float  # share of reads below ``low_confidence``


async def read_quality(
    conn: AsyncConnection, *, since: datetime, low_confidence: float = 0.6
) -> dict[str, ReadQuality]:
    """Per camera, reads captured since ``since``: count, mean confidence, share of weak reads."""
    async with conn.cursor(row_factory=class_row(ReadQuality)) as cur:
        await cur.execute(
            "SELECT camera_id, count(*)::int AS reads, avg(confidence)::float8 AS mean_confidence,"
            " (count(*) FILTER (WHERE confidence < %(low)s))::float8 / count(*) AS low_confidence_share"
            " FROM plate_reads WHERE captured_at >= %(since)s GROUP BY camera_id",
            {"since": since, "low": low_confidence},
        )
        return {row.camera_id: row for row in await cur.fetchall()}
