"""How far the workers have processed the partitions that carry cameras' and sensors' events, as
a time.

Camera health judges a camera silent against this, not against the clock: after a database
outage, or with a worker behind, the cameras' recent events wait in Kafka unprocessed, and
judged against the clock every camera would go offline, and back online as the backlog
drained. Flow checks likewise judge no window the events of which are not all processed (and
counted): judged against the clock, every busy checkpoint had a drop. Each worker records its
own partitions in the transaction that records its cameras' sightings, so the two always agree.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime

from psycopg import AsyncConnection

__all__ = ["processed_to", "record_progress"]


async def record_progress(conn: AsyncConnection, progress: Mapping[tuple[str, int], datetime]) -> None:
    """Move each ``(topic, partition)``'s processed-to time forward (never back: a partition's new
    owner replaying what its old owner processed does not unsee what that one recorded)."""
    if not progress:
        return
    topics, partitions = zip(*progress, strict=True)
    await conn.execute(
        """INSERT INTO consumer_progress AS p (topic, partition, processed_to)
           SELECT * FROM unnest(%s::text[], %s::integer[], %s::timestamptz[])
           ON CONFLICT (topic, partition) DO UPDATE
              SET processed_to = greatest(p.processed_to, excluded.processed_to), updated_at = now()""",
        [list(topics), list(partitions), list(progress.values())],
    )


async def processed_to(conn: AsyncConnection, topics: Collection[str]) -> datetime | None:
    """The time up to which every recorded partition of ``topics`` is processed (the earliest
    of them); None before any is recorded."""
    cur = await conn.execute("SELECT min(processed_to) FROM consumer_progress WHERE topic = ANY(%s)",
                             [list(topics)])  # fmt: skip
    row = await cur.fetchone()
    return row[0] if row else None
