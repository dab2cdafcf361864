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
        self._minutes.update(int(moment.timestamp()) // 60 for moment in captured)

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
