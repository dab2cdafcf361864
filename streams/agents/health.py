"""Camera health (offline / back online) and checkpoint flow anomalies.

Periodic checks against the database, so every worker can run them: the
state change (``cameras.online``) and the alert commit in one transaction,
and only the worker whose update changed the state raises the alert.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from psycopg import AsyncConnection

from detectors.flow_anomaly import judge_flow
from ioc import metrics
from ioc.schemas import Alert, utcnow
from ioc.storage.alerts import flow_alert_since, insert_alerts
from ioc.storage.cameras import list_cameras, record_seen, set_online
from ioc.storage.consumer_progress import processed_to, record_progress
from ioc.storage.flow import flow_series
from streams.consumer_progress import partition_progress
from streams.context import WorkerContext
from streams.health_alerts import camera_alert, flow_alert

logger = logging.getLogger(__name__)

CHECK_EVERY_S = 5.0
FLOW_WINDOW = timedelta(minutes=5)
FLOW_HISTORY_WINDOWS = 24  # two hours of five-minute windows
FLOW_EPISODE = timedelta(minutes=30)  # an anomaly seen again within this is the same one
# The same five minutes on each of the days before (a week: every weekday once) and on the same
# weekday of the weeks before (weekend mornings are not weekday mornings). Steps of 24 hours: the
# same clock time where the zone keeps no daylight saving, as Vietnam's does not.
FLOW_DAYS = 7
FLOW_WEEKS = 4  # 28 days back: still in the uncompressed chunks (compressed after 30 days)


def register(ctx: WorkerContext) -> None:
    topics = ctx.settings.topics
    camera_topics = {topics.frames, topics.edge_plate_reads}
    flow_topics = camera_topics | {topics.sensor_readings}  # what checkpoint counts are counted from
    # where the flow topics were processed to at the previous flow check, a minute before: their
    # events up to there have been counted since (counts are refreshed every 10 s; a check against
    # the progress of just now could see the last minutes stored and not yet counted, while a
    # backlog drains many minutes of events in a few seconds)
    counted_until: datetime | None = None
    progress_read = False

    @ctx.timer(CHECK_EVERY_S, name="camera-health")
    async def camera_health() -> None:
        pool = await ctx.pool()
        seen = dict(ctx.camera_seen)
        now = utcnow()
        progress = partition_progress(ctx.app, ctx.processed, flow_topics, now)  # for both checks
        async with pool.connection() as conn, conn.transaction():
            await record_progress(conn, progress)
            raised = await judge_cameras(conn, seen, now, heard_until=await processed_to(conn, camera_topics))
            await insert_alerts(conn, raised)
        for camera_id, at in seen.items():  # flushed; keep what arrived meanwhile
            if ctx.camera_seen.get(camera_id) == at:
                del ctx.camera_seen[camera_id]
        await _publish(ctx, raised)

    @ctx.timer(FLOW_WINDOW.total_seconds() / 5, name="flow-anomalies")
    async def flow_anomalies() -> None:
        nonlocal counted_until, progress_read
        async with (await ctx.pool()).connection() as conn:
            processed = await processed_to(conn, flow_topics)
            # a worker's first check does not know what is counted yet: it only reads the progress
            new = await judge_flows(conn, utcnow(), heard_until=counted_until) if progress_read else []
        counted_until, progress_read = processed, True
        await _publish(ctx, new)


async def judge_flows(
    conn: AsyncConnection, now: datetime, *, heard_until: datetime | None = None
) -> list[Alert]:
    """Check the five minutes to the last complete minute against the usual for that time of
    day (or, for a checkpoint too new to know it, the two hours before), for every checkpoint
    and direction, and store and return the alerts for new episodes.

    The window ends no later than ``heard_until`` where that is given: the time up to which the
    workers have processed (and counted) the topics counts come from (:mod:`streams.consumer_progress`).
    After a database outage, or with a worker behind, the latest minutes' events wait in Kafka:
    judged by the clock their windows were empty or partial, every busy checkpoint got a false
    drop alert, and that alert held back its real drops for the episode.

    The check runs every minute over a sliding window, so a surge is seen in minute after
    minute: one alert per (checkpoint, direction, surge or drop) within
    :data:`FLOW_EPISODE`, not one a minute.
    """
    by_clock = now.replace(second=0, microsecond=0) - timedelta(minutes=1)  # last complete minute
    if heard_until is None:
        end = by_clock
    else:  # in UTC, as now: the days before are 24 hours back, whatever the database session's zone
        end = min(by_clock, heard_until.astimezone(UTC).replace(second=0, microsecond=0))
    metrics.FLOW_CHECK_BEHIND.set((by_clock - end).total_seconds())
    days = [end - timedelta(days=k) for k in range(1, FLOW_DAYS + 1)]
    weeks = [end - timedelta(weeks=k) for k in range(1, FLOW_WEEKS + 1)]
    series = await flow_series(conn, end=end, width=FLOW_WINDOW, windows=FLOW_HISTORY_WINDOWS + 1,
                               earlier=days + weeks)
    new = []
    for s in series:
        anomaly = judge_flow(s.counts[-1], s.counts[:-1], s.earlier[:FLOW_DAYS], s.earlier[FLOW_DAYS:])
        if anomaly is None:
            continue
        async with conn.transaction():
            if await flow_alert_since(conn, s.checkpoint_id, s.direction, anomaly.kind, end - FLOW_EPISODE):
                continue
            alert = flow_alert(s.checkpoint_id, s.direction, s.window_end, FLOW_WINDOW.total_seconds() / 60,
                               anomaly, at=now)
            if await insert_alerts(conn, [alert]):
                new.append(alert)
    return new


async def judge_cameras(
    conn: AsyncConnection, seen: dict[str, datetime], now: datetime, *, heard_until: datetime | None = None
) -> list[Alert]:
    """Record the sightings ``seen`` (camera id -> latest frame or read), judge each registered
    camera online or offline at ``now``, and return the alerts for the judgements that changed.

    A camera is judged silent against ``heard_until`` where that is earlier than ``now``: the
    time up to which the workers have processed the cameras' events (:mod:`streams.consumer_progress`).
    Its events after that wait in Kafka: a backlog, after a database outage or with a worker
    behind, took every camera offline, and back online as it drained.

    A camera never seen is judged from when it was registered: offline once registered for
    longer than its expected interval, and it stays so until it is seen.
    """
    await record_seen(conn, seen)
    judged_at = now if heard_until is None else min(now, heard_until)
    metrics.CAMERA_HEALTH_BEHIND.set((now - judged_at).total_seconds())
    raised = []
    for camera in await list_cameras(conn):
        last = camera.last_seen or camera.updated_at
        online = judged_at - last <= timedelta(seconds=camera.expected_interval_s)
        if camera.online is None and online:
            await set_online(conn, camera.camera_id, True)  # first judgement: no alert
        elif camera.online is not online and await set_online(conn, camera.camera_id, online):
            raised.append(camera_alert(camera.camera_id, camera.checkpoint_id, online=online,
                                       last_seen=camera.last_seen, at=now))
    return raised


async def _publish(ctx: WorkerContext, alerts: list[Alert]) -> None:
    await ctx.publish_alerts(alerts)
    for alert in alerts:
        metrics.ALERTS_RAISED.labels(alert.alert_kind, alert.severity).inc()
