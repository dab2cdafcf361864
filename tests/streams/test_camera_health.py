"""Camera health judgements on a real database: a camera goes offline once, with one alert, and
back online when it is seen again; a camera registered and never seen does not flap. The checks
run at real time, a camera expecting a frame every two seconds. A camera is heard from when its
events reach Kafka, whatever its own clock says, and judged silent only up to where the workers
have processed its topics."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from faust.types import Message
from psycopg import AsyncConnection

from ioc import metrics
from ioc.config import Settings
from ioc.schemas import utcnow
from ioc.storage.cameras import get_camera, remove_camera, upsert_camera
from ioc.storage.consumer_progress import processed_to, record_progress
from streams.agents.health import judge_cameras
from streams.context import WorkerContext

INTERVAL_S = 2  # long enough that registering and the first check fall within it on a loaded machine


async def _judge(conn: AsyncConnection, seen: dict | None = None) -> list[str]:
    """The alert kinds of one health check now, in its own transaction as the worker runs it."""
    async with conn.transaction():
        alerts = await judge_cameras(conn, seen or {}, utcnow())
    return [alert.alert_kind for alert in alerts]


async def test_a_camera_never_seen_goes_offline_once_and_stays(conn: AsyncConnection) -> None:
    await upsert_camera(conn, "cam-quiet", "cp-1", expected_interval_s=INTERVAL_S)
    assert await _judge(conn) == []  # registered just now: online, no alert
    assert (await get_camera(conn, "cam-quiet")).online is True
    await asyncio.sleep(INTERVAL_S + 0.2)
    assert await _judge(conn) == ["camera_offline"]
    for _ in range(3):  # the checks that follow: no flapping back online
        assert await _judge(conn) == []
        await asyncio.sleep(0.2)
    assert (await get_camera(conn, "cam-quiet")).online is False


async def test_a_camera_seen_again_comes_back_online(conn: AsyncConnection) -> None:
    await upsert_camera(conn, "cam-1", "cp-1", expected_interval_s=INTERVAL_S)
    assert await _judge(conn, {"cam-1": utcnow()}) == []
    await asyncio.sleep(INTERVAL_S + 0.2)
    assert await _judge(conn) == ["camera_offline"]
    assert await _judge(conn) == []
    assert await _judge(conn, {"cam-1": utcnow()}) == ["camera_online"]
    assert await _judge(conn) == []


def _message(sent_at: datetime) -> Message:
    """A consumed Kafka message stamped ``sent_at`` (its producer's clock)."""
    return Message("camera.frames", 0, 0, sent_at.timestamp(), 0, [], b"cam", b"{}", None)


def _worker() -> WorkerContext:
    return WorkerContext(settings=Settings(kafka_bootstrap="127.0.0.1:9"), app=None, topics=None,
                         dead_letters=None, recognition=None)


async def test_a_camera_whose_clock_lags_stays_online_while_its_events_arrive(conn: AsyncConnection) -> None:
    """Its frames are dated 10 minutes back, but each reached Kafka just now."""
    await upsert_camera(conn, "cam-slow", "cp-1", expected_interval_s=INTERVAL_S)
    ctx = _worker()
    assert await _judge(conn) == []
    for _ in range(4):
        await asyncio.sleep(INTERVAL_S / 2)
        now = utcnow()
        ctx.saw_camera("cam-slow", now - timedelta(minutes=10), _message(now))
        assert await _judge(conn, ctx.camera_seen) == []
    assert (await get_camera(conn, "cam-slow")).online is True


async def test_a_frame_dated_ahead_does_not_keep_a_dead_camera_online(conn: AsyncConnection) -> None:
    await upsert_camera(conn, "cam-fast", "cp-1", expected_interval_s=INTERVAL_S)
    ctx = _worker()
    now = utcnow()
    ctx.saw_camera("cam-fast", now + timedelta(days=1), _message(now))
    assert await _judge(conn, ctx.camera_seen) == []
    await asyncio.sleep(INTERVAL_S + 0.2)
    assert await _judge(conn) == ["camera_offline"]


def test_a_message_stamped_past_any_capture_time_counts_as_unstamped() -> None:
    """A producer writing nanoseconds where Kafka wants milliseconds (Kafka before 4.0 takes any
    timestamp): the time is past what a datetime holds, and reading it failed the batch and stopped
    the agent. The camera is heard from at its capture time, and the partition stays processed to
    the time of the last message that had one."""
    ctx, now = _worker(), utcnow()
    stamped = Message("camera.frames", 0, 1, time.time_ns() / 1000, 0, [], b"cam", b"{}", None)
    ctx.saw_camera("cam-ns", now - timedelta(seconds=5), stamped)
    assert ctx.camera_seen["cam-ns"] == now - timedelta(seconds=5)
    before = _message(now)
    ctx._finished([SimpleNamespace(message=before), SimpleNamespace(message=stamped)])  # noqa: SLF001
    assert ctx.processed[before.tp] == (1, datetime.fromtimestamp(now.timestamp(), UTC))
    alone = Message("camera.frames", 1, 0, time.time_ns() / 1000, 0, [], b"cam", b"{}", None)
    ctx._finished([SimpleNamespace(message=alone)])  # noqa: SLF001
    assert alone.tp not in ctx.processed, "no time to note: the partition's record stands"


async def test_silence_is_judged_only_up_to_where_the_events_are_processed(conn: AsyncConnection) -> None:
    """A backlog (a database outage, a worker behind): the camera's later events wait in Kafka, so
    it is not judged offline while the partitions are processed only to before its interval ran out."""
    await upsert_camera(conn, "cam-queued", "cp-1", expected_interval_s=INTERVAL_S)
    assert await _judge(conn, {"cam-queued": utcnow()}) == []
    heard = utcnow()
    await asyncio.sleep(INTERVAL_S + 0.2)
    async with conn.transaction():
        await record_progress(conn, {("camera-frames", 0): heard, ("edge-reads", 3): utcnow()})
        until = await processed_to(conn, ["camera-frames", "edge-reads"])
        assert until == heard  # the earliest partition
        assert await judge_cameras(conn, {}, utcnow(), heard_until=until) == []
    async with conn.transaction():  # the backlog is processed: nothing of the camera in it
        await record_progress(conn, {("camera-frames", 0): utcnow()})
        until = await processed_to(conn, ["camera-frames", "edge-reads"])
        alerts = await judge_cameras(conn, {}, utcnow(), heard_until=until)
    assert [alert.alert_kind for alert in alerts] == ["camera_offline"]


async def test_a_partitions_progress_never_goes_back(conn: AsyncConnection) -> None:
    """Its new owner replays what the old one processed; the sightings recorded then stand."""
    later = utcnow()
    await record_progress(conn, {("camera-frames", 1): later})
    await record_progress(conn, {("camera-frames", 1): later - timedelta(minutes=5)})
    assert await processed_to(conn, ["camera-frames"]) == later
    assert await processed_to(conn, ["other-topic"]) is None


async def test_a_removed_camera_is_no_longer_watched_for_silence(
    conn: AsyncConnection, database_url: str
) -> None:
    """Its age in ``ioc_camera_last_seen_age_seconds`` grew for ever, and IOCCameraOffline fired for
    a decommissioned camera until every worker restarted."""
    await upsert_camera(conn, "cam-kept", "cp-1", expected_interval_s=INTERVAL_S)
    await upsert_camera(conn, "cam-removed", "cp-1", expected_interval_s=INTERVAL_S)
    ctx = WorkerContext(settings=Settings(kafka_bootstrap="127.0.0.1:9", database_url=database_url), app=None,
                        topics=None, dead_letters=None, recognition=None)  # fmt: skip
    try:
        for camera_id in ("cam-kept", "cam-removed"):
            ctx.saw_camera(camera_id, utcnow(), _message(utcnow()))
        assert {"cam-kept", "cam-removed"} <= _aged_cameras()
        await remove_camera(conn, "cam-removed")
        await ctx.cameras(max_age_s=0)  # the registry as the worker re-reads it
        aged = _aged_cameras()
        assert "cam-kept" in aged and "cam-removed" not in aged
    finally:
        await (await ctx.pool()).close()


def _aged_cameras() -> set[str]:
    families = metrics.CAMERA_LAST_SEEN.collect()
    return {sample.labels["camera"] for family in families for sample in family.samples}
