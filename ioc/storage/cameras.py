"""Known cameras, when each was last heard from, and which have gone silent."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from psycopg import AsyncConnection
from psycopg.rows import class_row

__all__ = ["Camera", "get_camera", "list_cameras", "record_seen", "remove_camera", "set_online",
           "silent_cameras", "upsert_camera"]

_COLUMNS = "camera_id, checkpoint_id, expected_interval_s, look_closer, last_seen, online, updated_at"


@dataclass(frozen=True, slots=True)
class Camera:
    camera_id: str
    checkpoint_id: str
    expected_interval_s: float
    look_closer: str | None  # detectors.recognizer.LookCloser for its frames; None: the worker's setting
    last_seen: datetime | None
    online: bool | None
    updated_at: datetime


async def upsert_camera(
    conn: AsyncConnection,
    camera_id: str,
    checkpoint_id: str,
    *,
    expected_interval_s: float = 60.0,
    look_closer: str | None = None,
) -> Camera:
    """Register a camera or change its checkpoint, expected interval and look-closer setting
    (keeps ``last_seen``). A ``look_closer`` other than never, unsure and always is refused
    by the table (``CheckViolation``)."""
    async with conn.cursor(row_factory=class_row(Camera)) as cur:
        await cur.execute(
            "INSERT INTO cameras (camera_id, checkpoint_id, expected_interval_s, look_closer)"
            " VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (camera_id) DO UPDATE SET checkpoint_id = excluded.checkpoint_id,"
            " expected_interval_s = excluded.expected_interval_s, look_closer = excluded.look_closer,"
            " updated_at = now()"
            f" RETURNING {_COLUMNS}",
            [camera_id, checkpoint_id, expected_interval_s, look_closer],
        )
        camera = await cur.fetchone()
    assert camera is not None
    return camera


async def remove_camera(conn: AsyncConnection, camera_id: str) -> bool:
    """Unregister a decommissioned camera (its reads stay); False if it was not registered."""
    cur = await conn.execute("DELETE FROM cameras WHERE camera_id = %s", [camera_id])
    return cur.rowcount == 1


async def remove_cameras_except(conn: AsyncConnection, kept: list[str]) -> list[str]:
    """Unregister every camera not in ``kept`` (a registry kept as a list, in Helm values or a
    file); returns those removed, sorted."""
    cur = await conn.execute(
        "DELETE FROM cameras WHERE NOT (camera_id = ANY(%s::text[])) RETURNING camera_id", [kept]
    )
    return sorted(row[0] for row in await cur.fetchall())


async def record_seen(conn: AsyncConnection, last_seen: Mapping[str, datetime]) -> int:
    """Move ``last_seen`` forward for known cameras (never back: replays are harmless);
    returns how many cameras changed. One statement per batch, whatever its size."""
    if not last_seen:
        return 0
    cur = await conn.execute(
        """UPDATE cameras c SET last_seen = s.seen, updated_at = now()
             FROM unnest(%s::text[], %s::timestamptz[]) AS s(camera_id, seen)
            WHERE c.camera_id = s.camera_id AND (c.last_seen IS NULL OR c.last_seen < s.seen)""",
        [list(last_seen), list(last_seen.values())],
    )
    return cur.rowcount


async def get_camera(conn: AsyncConnection, camera_id: str) -> Camera | None:
    async with conn.cursor(row_factory=class_row(Camera)) as cur:
        await cur.execute(f"SELECT {_COLUMNS} FROM cameras WHERE camera_id = %s", [camera_id])
        return await cur.fetchone()


async def list_cameras(conn: AsyncConnection, *, checkpoint_id: str | None = None) -> list[Camera]:
    async with conn.cursor(row_factory=class_row(Camera)) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS} FROM cameras"
            " WHERE %(checkpoint)s::text IS NULL OR checkpoint_id = %(checkpoint)s"
            " ORDER BY checkpoint_id, camera_id",
            {"checkpoint": checkpoint_id},
        )
        return await cur.fetchall()


async def silent_cameras(conn: AsyncConnection, at: datetime) -> list[Camera]:
    """Cameras not heard from within their expected interval before ``at`` (never-seen
    cameras count as silent once registered for longer than their interval)."""
    async with conn.cursor(row_factory=class_row(Camera)) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS} FROM cameras"
            " WHERE coalesce(last_seen, updated_at) < %s - make_interval(secs => expected_interval_s)"
            " ORDER BY camera_id",
            [at],
        )
        return await cur.fetchall()


async def set_online(conn: AsyncConnection, camera_id: str, online: bool) -> bool:
    """Record a health judgement; returns True only when it changed (raise an alert then).

    ``updated_at`` is left alone: a camera never seen is judged from it (when it was registered),
    and a judgement moving it made such a camera look just seen, back online after each offline
    alert."""
    cur = await conn.execute(
        "UPDATE cameras SET online = %s"
        " WHERE camera_id = %s AND online IS DISTINCT FROM %s",
        [online, camera_id, online],
    )
    return cur.rowcount == 1

