"""Camera health: online or offline, and how well each camera has been reading plates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ioc.api.deps import ConnDep, CountsReader
from ioc.config import LookCloserSetting
from ioc.storage.camera_quality import read_quality
from ioc.storage.cameras import Camera, list_cameras

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
