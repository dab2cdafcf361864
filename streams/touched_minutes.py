"""Which count windows a worker's writes changed, so a refresh recomputes only those."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

__all__ = ["TouchedMinutes", "as_ranges"]

_MINUTE = timedelta(minutes=1)


class TouchedMinutes:
    """Minutes (as epoch minutes) holding rows this worker stored since the last :meth:`take`."""

    def __init__(self) -> None:
        self._minutes: set[int] = set()

    def add(self, captured: Iterable[datetime]) -> None:
        """Note the minutes of ``captured`` (aware times with fixed offsets, as events carry).

        One ``timestamp()`` per distinct local minute and zone, not per row: on pydantic's
        tzinfo each costs about 1 us (its ``utcoffset``), for every stored event. A batch
        of 10,000 events spans a few minutes: 0.9 -> 0.5 us per event, timed alone.
        """
        by_local_minute = {(at.toordinal(), at.hour, at.minute, at.tzinfo): at for at in captured}
        self._minutes.update(int(at.timestamp()) // 60 for at in by_local_minute.values())

    def take(self) -> set[int]:
        """The minutes touched so far, forgetting them (give them back with :meth:`restore`)."""
        taken, self._minutes = self._minutes, set()
        return taken

    def restore(self, minutes: Iterable[int]) -> None:
        """Minutes a refresh took but did not finish: the next refresh does them."""
        self._minutes.update(minutes)


def as_ranges(minutes: Iterable[int]) -> list[tuple[datetime, datetime]]:
    """Runs of consecutive minutes as ``(first minute, last minute)`` pairs, oldest first."""
    ranges: list[tuple[datetime, datetime]] = []
    for minute in sorted(minutes):
        moment = datetime.fromtimestamp(minute * 60, UTC)
        if ranges and moment - ranges[-1][1] == _MINUTE:
            ranges[-1] = (ranges[-1][0], moment)
        else:
            ranges.append((moment, moment))
    return ranges
