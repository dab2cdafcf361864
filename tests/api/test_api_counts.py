"""Checkpoint counts over HTTP against real count rows (TimescaleDB and plain PostgreSQL): day
buckets are days of ``IOC_DISPLAY_TIMEZONE``, each starting at its local midnight, not UTC days
(in Vietnam those run 07:00 to 07:00, so "vehicles in today" was 7 hours off)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from served_api import ApiServer

from ioc.api.routes.counts import _starts, bucketed
from ioc.storage.checkpoint_counts import CountRow, local_midnight, upsert_counts
from ioc.storage.database import connect

DAY_MINUTES = 24 * 60
ApiFactory = Callable[..., Awaitable[ApiServer]]


def _at(day: date, hour: int, minute: int, zone: ZoneInfo) -> datetime:
    """A local wall-clock time in ``zone``, as a UTC instant."""
    return datetime.combine(day, time(hour, minute), tzinfo=zone).astimezone(UTC)


async def _store_counts(api: ApiServer, rows: list[CountRow]) -> None:
    async with await connect(api.conninfo) as conn:
        await upsert_counts(conn, rows)
        await conn.commit()


async def _get_counts(api: ApiServer, expected_status: int = 200, **params: object) -> dict:
    username = f"operator-{api.settings.api_port}"  # one per server: two may share a database
    await api.token("operator", username)
    async with api.client(username) as client:
        response = await client.get("/api/counts", params=params)
    assert response.status_code == expected_status, response.text
    return response.json()


@pytest.mark.parametrize("zone_name", [None, "Asia/Tokyo", "Asia/Kolkata"])  # None: the default
async def test_day_buckets_are_local_days_of_the_display_zone(api_factory: ApiFactory,
                                                               zone_name: str | None) -> None:
    api = await api_factory(**({"display_timezone": zone_name} if zone_name else {}))
    zone = ZoneInfo(api.settings.display_timezone)
    assert zone_name or zone.key == "Asia/Ho_Chi_Minh"
    today = datetime.now(zone).date()
    day = today - timedelta(days=1)  # yesterday and today (00:15 may be ahead: it is counted all the same)
    # 15 minutes either side of a local midnight: one UTC day (16:45 and 17:15 UTC in Vietnam),
    # two local days; in Kolkata both are in the UTC hour 18:00, which no hourly bucket can split
    late, early = _at(day, 23, 45, zone), _at(day + timedelta(days=1), 0, 15, zone)
    assert late.date() == early.date()
    await _store_counts(api, [CountRow(late, "CP01", "in", "car", "home", 3),
                              CountRow(early, "CP01", "in", "car", "out_of_province", 5),
                              CountRow(early, "CP02", "out", "car", "home", 1)])

    body = await _get_counts(api, granularity="day", minutes=2 * DAY_MINUTES)
    midnights = [local_midnight(day + timedelta(days=i), zone) for i in range(2)]
    buckets = [datetime.fromisoformat(b["bucket"]) for b in body["data"]]
    assert buckets == midnights
    # shown as local midnights: 00:00 with the zone's offset
    assert {(b.time(), b.utcoffset()) for b in buckets} == {(time(), late.astimezone(zone).utcoffset())}
    assert [(b["in_home"], b["in_other"], b["out_home"]) for b in body["data"]] == [(3, 0, 0), (0, 5, 1)]
    assert datetime.fromisoformat(body["since"]) == midnights[0]
    assert datetime.fromisoformat(body["until"]) == local_midnight(today + timedelta(days=1), zone)

    only_cp2 = await _get_counts(api, granularity="day", minutes=2 * DAY_MINUTES, checkpoint_id="CP02")
    assert [b["out_home"] for b in only_cp2["data"]] == [0, 1]
    # hour buckets stay UTC hours
    hours = {datetime.fromisoformat(b["bucket"]): b["in_home"]
             for b in (await _get_counts(api, granularity="hour", minutes=2 * DAY_MINUTES))["data"]}
    assert hours[late.replace(minute=0)] == 3 and sum(hours.values()) == 3


async def test_day_windows_are_capped_by_the_rows_summed(api_factory: ApiFactory) -> None:
    """Local days are summed from hourly rows: 120 days at most; from one-minute rows (days that
    start at half past a UTC hour), two."""
    vietnam = await api_factory()
    assert len((await _get_counts(vietnam, granularity="day", minutes=120 * DAY_MINUTES))["data"]) == 120
    refused = await _get_counts(vietnam, 422, granularity="day", minutes=121 * DAY_MINUTES)
    assert "at most 120 days of Asia/Ho_Chi_Minh" in refused["detail"]
    kolkata = await api_factory(display_timezone="Asia/Kolkata")
    assert len((await _get_counts(kolkata, granularity="day", minutes=2 * DAY_MINUTES))["data"]) == 2
    refused = await _get_counts(kolkata, 422, granularity="day", minutes=3 * DAY_MINUTES)
    assert "at most 2 days of Asia/Kolkata" in refused["detail"]


def test_day_series_steps_by_calendar_day_across_a_clock_change() -> None:
    """Berlin's 30 March 2025 is 23 hours long, its 26 October 25: each day still starts at
    local midnight, and a count lands on the day it was counted in."""
    zone = ZoneInfo("Europe/Berlin")
    for first in (date(2025, 3, 29), date(2025, 10, 25)):
        days = [first + timedelta(days=i) for i in range(3)]
        starts = _starts(local_midnight(days[0], zone), local_midnight(first + timedelta(days=3), zone),
                         "day", zone)
        assert starts == [local_midnight(d, zone) for d in days]
        assert [s.astimezone(zone).time() for s in starts] == [time()] * 3
        rows = [CountRow(_at(d, 23, 45, zone), "CP01", "in", "car", "home", 1) for d in days]
        assert [b.in_home for b in bucketed(rows, starts, "day", zone)] == [1, 1, 1]
