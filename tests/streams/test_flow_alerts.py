"""Flow anomaly alerts on a real database: the check runs every minute over a sliding five-minute
window, so a surge is seen minute after minute; it raises one alert, not one a minute. A checkpoint
with days of history is judged against the same time of day, so its ordinary morning rush is no
surge; a new one is judged against the last two hours. Minutes whose events still wait in Kafka (a
backlog) are not judged."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from pipeline_helpers import KeepingProducer
from psycopg import AsyncConnection

from ioc import metrics
from ioc.config import Settings
from ioc.schemas import Alert, utcnow
from ioc.storage.checkpoint_counts import CountRow, upsert_counts
from ioc.storage.consumer_progress import processed_to, record_progress
from ioc.storage.flow import flow_series
from streams.agents import health
from streams.agents.health import FLOW_EPISODE, judge_flows
from streams.context import WorkerContext

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)

# A day's profile starts two hours before the morning rush (07:00 in Hanoi, 00:00 UTC): two hours
# of night traffic, an hour of ramp to ten times that, half an hour at the top.
NIGHT, RAMP, TOP = 120, 60, 30
HANOI = timezone(timedelta(hours=7))
MONDAY = datetime(2025, 3, 9, 22, 0, tzinfo=UTC)  # the profile's start on Monday 10 March, Hanoi time
SUNDAY = MONDAY + timedelta(days=6)
JITTER = [0, 1, -1, 0, 1, -1, 0]  # vehicles a minute more or less than usual, by day: no two days alike


def _minutes(checkpoint: str, start: datetime, per_minute: list[int]) -> list[CountRow]:
    return [CountRow(start + timedelta(minutes=i), checkpoint, "in", "car", "home", n)
            for i, n in enumerate(per_minute)]


def _morning(top: int = 20, jitter: int = 0) -> list[int]:
    """Vehicles a minute from two hours before the rush to half an hour into its top."""
    night = top // 10
    ramp = [night + (top - night) * i // RAMP for i in range(RAMP)]
    return [night] * NIGHT + [max(n + jitter, 0) for n in ramp] + [top + jitter] * TOP


async def _history(conn: AsyncConnection, checkpoint: str, day: datetime, days: int,
                   profile: Callable[[int], list[int]]) -> None:
    """``profile(k)`` on each of the ``days`` days before ``day`` (k days before)."""
    for k in range(1, days + 1):
        await upsert_counts(conn, _minutes(checkpoint, day - timedelta(days=k), profile(k)))


async def _checks(conn: AsyncConnection, day: datetime, minutes: range) -> list[Alert]:
    """The flow alerts of a check each minute, half a minute past it, ``minutes`` from ``day``."""
    alerts = []
    for m in minutes:
        alerts += await judge_flows(conn, day + timedelta(minutes=m, seconds=30))
    return alerts


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


async def test_the_usual_morning_rush_is_no_surge_but_a_surge_above_it_is(conn: AsyncConnection) -> None:
    for checkpoint in ("FLOW-RUSH", "FLOW-RUSH-SURGE"):
        await _history(conn, checkpoint, MONDAY, 7, lambda k: _morning(jitter=JITTER[k % 7]))
    await upsert_counts(conn, _minutes("FLOW-RUSH", MONDAY, _morning()))
    surge = _morning()
    surge[NIGHT + 30:] = [3 * n for n in surge[NIGHT + 30:]]  # half-way up the ramp, three times the usual
    await upsert_counts(conn, _minutes("FLOW-RUSH-SURGE", MONDAY, surge))

    alerts = await _checks(conn, MONDAY, range(NIGHT - 10, NIGHT + RAMP + TOP))
    assert [a for a in alerts if a.subject == "FLOW-RUSH"] == [], "the rush is as usual for the time of day"
    surges = [a for a in alerts if a.subject == "FLOW-RUSH-SURGE"]
    assert {(a.evidence["anomaly"], a.evidence["baseline"]) for a in surges} == {("surge", "time_of_day")}
    assert len(surges) == 2, "one alert per episode: the surge lasts an hour"
    first = surges[0]
    assert first.captured_at <= MONDAY + timedelta(minutes=NIGHT + 35), "seen within minutes"
    assert first.evidence["observed"] > 1.5 * first.evidence["expected"]


async def test_a_new_checkpoint_is_judged_against_the_last_two_hours(conn: AsyncConnection) -> None:
    await _history(conn, "FLOW-NEW", MONDAY, 1, lambda k: _morning())
    await upsert_counts(conn, _minutes("FLOW-NEW", MONDAY, _morning()))
    alerts = await _checks(conn, MONDAY, range(NIGHT - 10, NIGHT + 20))  # within one episode
    assert [(a.subject, a.evidence["anomaly"], a.evidence["baseline"]) for a in alerts] == [
        ("FLOW-NEW", "surge", "trailing")], "one day is too little to know the time of day"


async def test_a_sunday_morning_is_judged_against_sundays(conn: AsyncConnection,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def usual(k: int) -> list[int]:
        sunday = (SUNDAY - timedelta(days=k)).astimezone(HANOI).weekday() == 6
        return _morning(top=10 if sunday else 20, jitter=JITTER[k % 7])

    await _history(conn, "FLOW-SUNDAY", SUNDAY, 28, usual)
    await upsert_counts(conn, _minutes("FLOW-SUNDAY", SUNDAY, _morning(top=10)))
    checks = range(NIGHT + RAMP - 5, NIGHT + RAMP + TOP - 5)  # the top of the rush, within one episode
    assert await _checks(conn, SUNDAY, checks) == [], "a Sunday rush is as usual for Sundays"
    # against the last seven days alone, six of them weekdays, the quieter Sunday is a drop
    monkeypatch.setattr(health, "FLOW_WEEKS", 0)
    assert [(a.evidence["anomaly"], a.evidence["baseline"]) for a in await _checks(conn, SUNDAY, checks)] == [
        ("drop", "time_of_day")]


async def test_an_earlier_day_without_data_is_unknown_not_zero(conn: AsyncConnection) -> None:
    night = MONDAY - timedelta(hours=3)  # 02:00 in Hanoi: a quiet hour
    yesterday_evening = night - timedelta(days=1, hours=6)
    await upsert_counts(conn, _minutes("FLOW-QUIET", yesterday_evening, [5] * 10))  # its first traffic
    await upsert_counts(conn, _minutes("FLOW-QUIET", night - timedelta(minutes=30), [5] * 30))
    [series] = await flow_series(conn, end=night, width=timedelta(minutes=5), windows=25,
                                 earlier=[night - timedelta(days=1), night - timedelta(days=2)])
    assert series.earlier == [0.0, None], "a quiet night the day before; nothing the day before that"


async def _steady_until_the_backlog(conn: AsyncConnection, checkpoint: str, now: datetime) -> datetime:
    """Three hours of 20 vehicles a minute until 20 minutes before ``now``; nothing counted since
    (the events wait in Kafka: a database outage, a worker behind). Returns where the counts stop."""
    backlog_from = now.replace(second=0, microsecond=0) - timedelta(minutes=20)
    await upsert_counts(conn, _minutes(checkpoint, backlog_from - timedelta(hours=3), [20] * 180))
    return backlog_from


async def test_a_backlog_is_no_drop_until_it_is_processed(conn: AsyncConnection) -> None:
    """Judged by the clock, the minutes whose events still waited in Kafka were empty: every busy
    checkpoint got a false drop alert, which also held back its real drop for the episode. Flows are
    judged only up to where the workers have processed their topics; a checkpoint that really went
    quiet is a drop once they have."""
    now = utcnow()
    backlog_from = await _steady_until_the_backlog(conn, "FLOW-BACKLOG", now)
    topics = ["edge-reads", "sensor-readings"]
    await record_progress(conn, {("edge-reads", 0): backlog_from + timedelta(seconds=20),
                                 ("sensor-readings", 0): now})
    assert await judge_flows(conn, now, heard_until=await processed_to(conn, topics)) == []
    assert metrics.FLOW_CHECK_BEHIND._value.get() >= 18 * 60  # noqa: SLF001
    await record_progress(conn, {("edge-reads", 0): now})  # processed: nothing more was there
    alerts = await judge_flows(conn, now, heard_until=await processed_to(conn, topics))
    assert [(a.subject, a.evidence["anomaly"]) for a in alerts] == [("FLOW-BACKLOG", "drop")]
    assert metrics.FLOW_CHECK_BEHIND._value.get() == 0  # noqa: SLF001


async def test_the_flow_check_judges_up_to_the_progress_of_its_previous_check(
    conn: AsyncConnection, database_url: str
) -> None:
    """Counts are refreshed from the stored events every 10 s, and a draining backlog stores many
    minutes of events in that time: the worker's check judges up to where the workers' progress
    stood at its previous check, a minute before, whose events have all been counted since."""
    settings = Settings(kafka_bootstrap="127.0.0.1:9", database_url=database_url)
    timers: list = []
    sent: list[bytes] = []
    app = SimpleNamespace(timer=lambda interval_s, name: timers.append, producer=KeepingProducer(sent))
    ctx = WorkerContext(settings=settings, app=app, recognition=None, dead_letters=None,
                        topics=SimpleNamespace(alerts=SimpleNamespace(get_topic_name=lambda: "alerts")))
    health.register(ctx)
    check = next(timer for timer in timers if timer.__name__ == "flow_anomalies").__wrapped__
    t = settings.topics
    backlog_from = await _steady_until_the_backlog(conn, "FLOW-TIMER", utcnow())
    await record_progress(conn, {(t.frames, 0): utcnow(), (t.sensor_readings, 0): utcnow(),
                                 (t.edge_plate_reads, 0): backlog_from + timedelta(seconds=20)})
    try:
        await check()  # the first: it only reads the progress
        await check()  # up to the progress it read
        await record_progress(conn, {(t.edge_plate_reads, 0): utcnow()})
        await check()  # still up to the progress read before
        assert sent == []
        await check()
        assert len(sent) == 1 and b'"anomaly":"drop"' in sent[0] and b"FLOW-TIMER" in sent[0]
    finally:
        await (await ctx.pool()).close()


