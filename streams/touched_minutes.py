"""Which count windows a worker's writes changed, so a refresh recomputes only those."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

__all__ = ["TouchedMinutes", "as_ranges", "epoch_minute"]

_MINUTE = timedelta(minutes=1)
_EPOCH_DAY = date(1970, 1, 1).toordinal()
_NO_OFFSET = timedelta(0)


def epoch_minute(moment: datetime) -> int:
    """Minutes since the epoch of an aware ``moment`` (``int(moment.timestamp()) // 60`` for
    times after 1970), from its fields and one ``utcoffset()``.

    Every stored event goes through here, and pydantic gives parsed times its own tzinfo,
    with which ``timestamp()`` costs 1-2 us: about three times this.
    """
    offset = moment.utcoffset() or _NO_OFFSET
    seconds = ((moment.toordinal() - _EPOCH_DAY) * 86400 + moment.hour * 3600 + moment.minute * 60
               + moment.second - offset.days * 86400 - offset.seconds)  # fmt: skip
    return seconds // 60


class TouchedMinutes:
    """Minutes (as epoch minutes) holding rows this worker stored since the last :meth:`take`."""

    def __init__(self) -> None:
        self._minutes: set[int] = set()

    def add(self, captured: Iterable[datetime]) -> None:
        self._minutes.update(map(epoch_minute, captured))

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
