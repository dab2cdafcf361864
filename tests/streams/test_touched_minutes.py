"""The minutes a counts refresh recomputes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from streams.touched_minutes import TouchedMinutes, as_ranges

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


def test_the_same_clock_time_in_two_zones_is_two_minutes() -> None:
    touched = TouchedMinutes()
    hanoi = timezone(timedelta(hours=7))
    touched.add([T0, T0.replace(tzinfo=hanoi), T0 + timedelta(seconds=30)])
    assert as_ranges(touched.take()) == [(T0 - timedelta(hours=7), T0 - timedelta(hours=7)), (T0, T0)]
