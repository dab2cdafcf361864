"""Camera health judgements on a real database: a camera goes offline once, with one alert, and
back online when it is seen again; a camera registered and never seen does not flap. The checks
run at real time, a camera expecting a frame every two seconds."""

from __future__ import annotations

import asyncio

from psycopg import AsyncConnection

from ioc.schemas import utcnow
from ioc.storage.cameras import get_camera, upsert_camera
from streams.agents.health import judge_cameras

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
