"""Cameras: health (online or offline, how well each has been reading plates) and, for
admins, the registry that workers check frames against (``ioc cameras`` on the command line)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import BaseModel, Field

from ioc.api.deps import CameraAdmin, ConnDep, CountsReader
from ioc.schemas import MAX_NAME_LENGTH, NAME_PATTERN, CameraRegistration, LookCloserSetting, RegisteredCamera
from ioc.storage.audit import append_audit
from ioc.storage.camera_quality import read_quality
from ioc.storage.cameras import Camera, list_cameras, remove_camera, upsert_camera

router = APIRouter(prefix="/api/cameras", tags=["cameras"])

QUALITY_WINDOW = timedelta(minutes=15)
SILENT_FACTOR = 2.0  # silent for this many expected intervals = offline, until the worker judges


class CameraHealth(BaseModel):
    camera_id: str
    checkpoint_id: str
    status: Literal["online", "offline", "unknown"]
    last_seen: datetime | None
    silent_s: float | None
    reads_15m: int
    mean_confidence: float | None
    low_confidence_share: float | None
    look_closer: LookCloserSetting | None = Field(
        description="when the recogniser looks again at full size for small plates in this camera's"
        " frames (`ioc cameras add --look-closer`); null: the workers' setting, IOC_ANPR_LOOK_CLOSER"
    )


def _status(camera: Camera, now: datetime) -> Literal["online", "offline", "unknown"]:
    """The worker's judgement when there is one, else judged here from ``last_seen``."""
    if camera.online is not None:
        return "online" if camera.online else "offline"
    if camera.last_seen is None:
        return "unknown"
    silent = (now - camera.last_seen).total_seconds()
    return "online" if silent <= SILENT_FACTOR * camera.expected_interval_s else "offline"


@router.get("", response_model=list[CameraHealth], summary="Every camera's health and read quality")
async def cameras(conn: ConnDep, _: CountsReader, checkpoint_id: str | None = None) -> list[CameraHealth]:
    now = datetime.now(UTC)
    known = await list_cameras(conn, checkpoint_id=checkpoint_id)
    quality = await read_quality(conn, since=now - QUALITY_WINDOW)
    result = []
    for camera in known:
        q = quality.get(camera.camera_id)
        result.append(CameraHealth(
            camera_id=camera.camera_id, checkpoint_id=camera.checkpoint_id, status=_status(camera, now),
            last_seen=camera.last_seen,
            silent_s=round((now - camera.last_seen).total_seconds(), 1) if camera.last_seen else None,
            reads_15m=q.reads if q else 0,
            mean_confidence=round(q.mean_confidence, 3) if q else None,
            low_confidence_share=round(q.low_confidence_share, 3) if q else None,
            look_closer=camera.look_closer,
        ))
    return result


CameraId = Annotated[str, Path(min_length=1, max_length=MAX_NAME_LENGTH, pattern=NAME_PATTERN)]  # as Name


@router.put("/{camera_id}", response_model=RegisteredCamera,
            summary="Register a camera, or change a registered one (workers take it up within seconds)")
async def register_camera(
    camera_id: CameraId, body: CameraRegistration, conn: ConnDep, admin: CameraAdmin
) -> RegisteredCamera:
    async with conn.transaction():
        camera = await upsert_camera(conn, camera_id, body.checkpoint_id, look_closer=body.look_closer,
                                     expected_interval_s=body.expected_interval_s)
        await append_audit(conn, actor=admin.username, role=admin.role, action="camera.register",
                           query={"camera_id": camera_id, **body.model_dump()}, purpose="camera registry",
                           result_count=1)  # fmt: skip
    return RegisteredCamera(camera_id=camera.camera_id, checkpoint_id=camera.checkpoint_id,
                            expected_interval_s=camera.expected_interval_s, look_closer=camera.look_closer)


@router.delete("/{camera_id}", status_code=status.HTTP_204_NO_CONTENT,
               summary="Unregister a decommissioned camera (its reads stay; its frames are dead-lettered)")
async def unregister_camera(camera_id: CameraId, conn: ConnDep, admin: CameraAdmin) -> None:
    async with conn.transaction():
        if not await remove_camera(conn, camera_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such camera")
        await append_audit(conn, actor=admin.username, role=admin.role, action="camera.remove",
                           query={"camera_id": camera_id}, purpose="camera registry", result_count=1)
