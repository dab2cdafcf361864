"""Camera registry: last-seen only moves forward; silent cameras; health changes reported once."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from psycopg import AsyncConnection, errors

from ioc.storage.cameras import get_camera, record_seen, set_online, silent_cameras, upsert_camera
from ioc.storage.database import table_counts


async def test_last_seen_and_silence(conn: AsyncConnection, now: datetime) -> None:
    await upsert_camera(conn, "cam-1", "cp-1", expected_interval_s=30)
    await upsert_camera(conn, "cam-2", "cp-1", expected_interval_s=300)
    assert await record_seen(conn, {"cam-1": now, "cam-2": now - timedelta(minutes=2), "ghost": now}) == 2
    assert await record_seen(conn, {"cam-1": now - timedelta(minutes=5)}) == 0  # a replay is older
    cam = await get_camera(conn, "cam-1")
    assert cam is not None and cam.last_seen == now
    later = now + timedelta(minutes=1)
    assert [c.camera_id for c in await silent_cameras(conn, later)] == ["cam-1"]
    assert await set_online(conn, "cam-1", False) is True
    assert await set_online(conn, "cam-1", False) is False


async def test_each_camera_may_have_its_own_look_closer_setting(conn: AsyncConnection, now: datetime) -> None:
    """A street camera looks closer at every frame, a camera framed for plates never; a camera
    registered without one follows the worker's setting. Re-registering keeps when it was seen."""
    plain = await upsert_camera(conn, "cam-1", "cp-1")
    assert plain.look_closer is None
    await record_seen(conn, {"cam-1": now})
    street = await upsert_camera(conn, "cam-1", "cp-1", look_closer="always")
    assert street.look_closer == "always" and street.last_seen == now
    assert (await get_camera(conn, "cam-1")).look_closer == "always"
    assert (await upsert_camera(conn, "cam-1", "cp-1")).look_closer is None
    with pytest.raises(errors.CheckViolation):
        await upsert_camera(conn, "cam-2", "cp-1", look_closer="sometimes")


async def test_table_counts(conn: AsyncConnection, migrated_url: str) -> None:
    await upsert_camera(conn, "cam-1", "cp-1")
    await conn.commit()
    assert await table_counts(migrated_url, ["cameras", "plate_reads"]) == {"cameras": 1, "plate_reads": 0}
