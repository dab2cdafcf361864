"""Flow anomaly alerts on a real database: the check runs every minute over a sliding five-minute
window, so a surge is seen minute after minute; it raises one alert, not one a minute."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from psycopg import AsyncConnection

from ioc.schemas import utcnow
from ioc.storage.checkpoint_counts import CountRow, upsert_counts
from streams.agents.health import FLOW_EPISODE, judge_flows

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


def _minutes(checkpoint: str, start: datetime, per_minute: list[int]) -> list[CountRow]:
    return [CountRow(start + timedelta(minutes=i), checkpoint, "in", "car", "home", n)
            for i, n in enumerate(per_minute)]


async def test_a_surge_seen_minute_after_minute_is_one_alert(conn: AsyncConnection) -> None:
    now = utcnow().replace(second=30, microsecond=0)
    start = now.replace(second=0) - timedelta(hours=4)
    steady, surge = [4] * 150, [40] * 60  # 20 vehicles per five minutes, then ten times that
    await upsert_counts(conn, _minutes("FLOW-CP1", start, steady + surge))
    first_check = start + timedelta(minutes=len(steady) + 6, seconds=30)
    raised = [await judge_flows(conn, first_check + timedelta(minutes=m)) for m in range(20)]
    kinds = [(a.subject, a.evidence["anomaly"]) for alerts in raised for a in alerts]
    assert kinds == [("FLOW-CP1", "surge")], "one alert for the episode"
    # after the episode's length, a surge still going on is raised again, as a reminder
    later = first_check + FLOW_EPISODE + timedelta(minutes=2)
    assert [a.evidence["anomaly"] for a in await judge_flows(conn, later)] == ["surge"]
