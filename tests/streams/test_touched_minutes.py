"""The minutes a counts refresh recomputes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import AwareDatetime, TypeAdapter

from streams.touched_minutes import TouchedMinutes, as_ranges, epoch_minute

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def test_touched_minutes_become_runs_of_consecutive_minutes() -> None:
    touched = TouchedMinutes()
    hanoi = timezone(timedelta(hours=7))
    touched.add([T0 + timedelta(seconds=5), T0 + timedelta(seconds=59),
                 (T0 + timedelta(minutes=1)).astimezone(hanoi)])
    touched.add([T0 + timedelta(minutes=2, seconds=30), T0 + timedelta(minutes=7), T0 - timedelta(days=2)])
    assert as_ranges(touched.take()) == [
        (T0 - timedelta(days=2), T0 - timedelta(days=2)),  # a late read: its own minute, not two days
        (T0, T0 + timedelta(minutes=2)),
        (T0 + timedelta(minutes=7), T0 + timedelta(minutes=7)),
    ]
    assert touched.take() == set()


def test_a_failed_refresh_gives_its_minutes_back() -> None:
    touched = TouchedMinutes()
    touched.add([T0])
    taken = touched.take()
    touched.add([T0 + timedelta(minutes=1)])
    touched.restore(taken)
    assert as_ranges(touched.take()) == [(T0, T0 + timedelta(minutes=1))]


@pytest.mark.parametrize("offset", ["+00:00", "+07:00", "-03:30", "+05:45", "-11:59", "Z"])
@pytest.mark.parametrize("clock", ["00:00:00", "00:00:59.999999", "23:59:59", "12:30:00.5"])
def test_epoch_minute_is_the_minute_of_the_timestamp(offset: str, clock: str) -> None:
    """Times as the event schemas parse them (pydantic's own tzinfo) and as the standard library has them."""
    for day in ("1970-01-02", "2026-12-31", "2028-02-29"):
        parsed = TypeAdapter(AwareDatetime).validate_python(f"{day}T{clock}{offset}")
        for moment in (parsed, parsed.astimezone(UTC), parsed.astimezone(timezone(timedelta(seconds=-4000)))):
            assert epoch_minute(moment) == int(moment.timestamp()) // 60, moment
