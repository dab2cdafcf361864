"""Minutes whose checkpoint count windows are to be recounted (migration 0019).

Whatever stores rows the windows are made of queues their minutes in the same transaction
(:func:`queue_minutes`), and the counts refresh takes them off in the transaction that recounts
them (:func:`take_minutes`): a refresh that does not commit leaves them queued, whichever process
dies, and so does one that never started.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from psycopg import AsyncConnection

__all__ = ["MOST_TAKEN", "as_ranges", "minutes_of", "queue_minutes", "take_minute", "take_minutes"]

MOST_TAKEN = 10_000  # queued rows one refresh takes; a backlog is recounted over several
_MINUTE = timedelta(minutes=1)


def minutes_of(captured: Iterable[datetime]) -> list[datetime]:
    """The distinct minutes (UTC) of ``captured`` (aware times with fixed offsets, as events carry),
    oldest first.

    One ``timestamp()`` per distinct local minute and zone, not per row: on pydantic's tzinfo each
    costs about 1 us (its ``utcoffset``), for every stored event. A batch of 10,000 events spans a
    few minutes: 0.9 -> 0.5 us per event, timed alone.
    """
    by_local_minute = {(at.toordinal(), at.hour, at.minute, at.tzinfo): at for at in captured}
    epoch_minutes = {int(at.timestamp()) // 60 for at in by_local_minute.values()}
    return [datetime.fromtimestamp(minute * 60, UTC) for minute in sorted(epoch_minutes)]


async def queue_minutes(conn: AsyncConnection, captured: Iterable[datetime]) -> None:
    """Queue the minutes of ``captured`` for recounting, in ``conn``'s transaction."""
    if minutes := minutes_of(captured):
        await conn.execute("INSERT INTO uncounted_minutes (minute) SELECT unnest(%s::timestamptz[])",
                           [minutes])


async def take_minutes(conn: AsyncConnection, *, limit: int = MOST_TAKEN) -> list[datetime]:
    """Take up to ``limit`` queued rows off the queue, in ``conn``'s transaction (they come back if
    it does not commit; rows another refresh holds are skipped); their distinct minutes, oldest
    first."""
    cur = await conn.execute(
        "DELETE FROM uncounted_minutes WHERE queued_id IN (SELECT queued_id FROM uncounted_minutes"
        " ORDER BY queued_id LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING minute", [limit])
    return sorted({minute for (minute,) in await cur.fetchall()})


async def take_minute(conn: AsyncConnection, minute: datetime) -> None:
    """Take ``minute``'s queued rows off the queue, in ``conn``'s transaction: the counts refresh
    recounting minutes one by one takes each with its recount, so a crash leaves it queued."""
    await conn.execute("DELETE FROM uncounted_minutes WHERE minute = %s", [minute])


def as_ranges(minutes: Iterable[datetime]) -> list[tuple[datetime, datetime]]:
    """Runs of consecutive minutes as ``(first minute, last minute)`` pairs, oldest first."""
    ranges: list[tuple[datetime, datetime]] = []
    for moment in sorted(minutes):
        if ranges and moment - ranges[-1][1] == _MINUTE:
            ranges[-1] = (ranges[-1][0], moment)
        else:
            ranges.append((moment, moment))
    return ranges
