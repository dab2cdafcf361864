"""Late counts into the roll-ups of the Timescale-License layout.

There the hourly and daily roll-ups are continuous aggregates refreshed by policies that look
back 3 and 10 days (migration 0005). Minutes recounted further back (an edge camera's backlog
uploaded after days offline) changed ``checkpoint_counts``, but no policy ever refreshed those
hours and days again: the API's hour and day counts and Grafana's stayed wrong for good. The
other layouts recompute their roll-up tables with the minutes (``ioc_refresh_rollups``).

``refresh_continuous_aggregate`` refuses a transaction block, so this takes a connection of
its own in autocommit.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from psycopg import AsyncConnection, sql

__all__ = ["past_the_policies", "refresh_late_rollups"]

# each continuous aggregate, its bucket, and how far back its refresh policy looks (0005), in the
# order they must be refreshed (the daily one reads the hourly one)
_AGGREGATES = (
    ("checkpoint_counts_hourly", timedelta(hours=1), timedelta(days=3)),
    ("checkpoint_counts_daily", timedelta(days=1), timedelta(days=10)),
)
_EPOCH = datetime(2000, 1, 3, tzinfo=UTC)  # time_bucket's default origin


def past_the_policies(ranges: Sequence[tuple[datetime, datetime]], *, now: datetime) -> bool:
    """Whether any of the recounted ``ranges`` starts further back than a refresh policy looks
    (what :func:`refresh_late_rollups` has to do anything for)."""
    return any(since < now - _AGGREGATES[0][2] for since, _ in ranges)


def _floor(moment: datetime, width: timedelta) -> datetime:
    return _EPOCH + (moment - _EPOCH) // width * width


async def refresh_late_rollups(
    conn: AsyncConnection, ranges: Sequence[tuple[datetime, datetime]], *, now: datetime
) -> list[tuple[str, datetime, datetime]]:
    """Refresh each continuous aggregate over the recounted ``ranges`` its policy no longer
    reaches; ``conn`` in autocommit. Returns ``(aggregate, start, end)`` of each refresh; none
    where the roll-ups are plain tables."""
    if not past_the_policies(ranges, now=now) or not await _continuous_aggregates(conn):
        return []
    refreshed = []
    for view, width, lookback in _AGGREGATES:
        spans = [(since, until) for since, until in ranges if since < now - lookback]
        if not spans:
            continue
        start = _floor(min(since for since, _ in spans), width)
        end = _floor(max(until for _, until in spans) - timedelta(microseconds=1), width) + width
        call = sql.SQL("CALL refresh_continuous_aggregate({}, %s, %s)").format(sql.Literal(view))
        await conn.execute(call, [start, end])
        refreshed.append((view, start, end))
    return refreshed


async def _continuous_aggregates(conn: AsyncConnection) -> bool:
    cur = await conn.execute(
        "SELECT to_regclass('timescaledb_information.continuous_aggregates') IS NOT NULL")
    row = await cur.fetchone()
    if not row or not row[0]:
        return False
    views = [view for view, _, _ in _AGGREGATES]
    cur = await conn.execute(
        "SELECT count(*) FROM timescaledb_information.continuous_aggregates WHERE view_name = ANY(%s)",
        [views])
    row = await cur.fetchone()
    return bool(row and row[0] == len(_AGGREGATES))
