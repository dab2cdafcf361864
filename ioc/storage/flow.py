"""Traffic flow per checkpoint and direction in equal windows, for anomaly checks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg import AsyncConnection

__all__ = ["FlowSeries", "flow_series"]


@dataclass(frozen=True, slots=True)
class FlowSeries:
    checkpoint_id: str
    direction: str
    window_end: datetime
    counts: list[float]  # oldest first; the last is the window ending at window_end


async def flow_series(
    conn: AsyncConnection, *, end: datetime, width: timedelta, windows: int
) -> list[FlowSeries]:
    """Vehicles per window (camera reads or loop counters, whichever saw more), zeros
    included, for every checkpoint and direction with traffic in the period."""
    start = end - width * windows
    cur = await conn.execute(
        """
        WITH windows AS (
            SELECT generate_series(%(start)s::timestamptz, %(end)s::timestamptz - %(width)s::interval,
                                   %(width)s::interval) AS w
        ), sums AS (
            SELECT checkpoint_id, direction, date_bin(%(width)s::interval, bucket, %(start)s) AS w,
                   greatest(sum(vehicles), sum(sensor_vehicles)) AS n
              FROM checkpoint_counts
             WHERE bucket >= %(start)s AND bucket < %(end)s
             GROUP BY 1, 2, 3
        ), keys AS (SELECT DISTINCT checkpoint_id, direction FROM sums)
        SELECT k.checkpoint_id, k.direction, array_agg(coalesce(s.n, 0)::float8 ORDER BY w.w)
          FROM keys k CROSS JOIN windows w
          LEFT JOIN sums s ON s.checkpoint_id = k.checkpoint_id AND s.direction = k.direction
                          AND s.w = w.w
         GROUP BY 1, 2
         ORDER BY 1, 2
        """,
        {"start": start, "end": end, "width": width},
    )
    return [FlowSeries(cp, direction, end, list(counts)) for cp, direction, counts in await cur.fetchall()]
