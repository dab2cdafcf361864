"""What the video wall shows besides alerts: checkpoint counts and camera health."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel

from ioc.api.deps import DASHBOARD_READERS, ConnDep, require_roles
from ioc.api.security import Principal
from ioc.schemas import utcnow
from ioc.storage.cameras import list_cameras
from ioc.storage.checkpoint_counts import counts_per_minute

router = APIRouter(prefix="/api", tags=["operations"])


class CountPublic(BaseModel):
    bucket: datetime
    checkpoint_id: str
    direction: str
    vehicle_class: str
    origin: str
    vehicles: int
    sensor_vehicles: float
    qr_checkins: float


class CameraPublic(BaseModel):
    camera_id: str
    checkpoint_id: str
    online: bool | None
    last_seen: datetime | None
    expected_interval_s: float


@router.get("/counts/minute", response_model=list[CountPublic], summary="Vehicles per minute")
async def counts(
    conn: ConnDep, _: Annotated[Principal, Depends(require_roles(*DASHBOARD_READERS))],
    minutes: Annotated[int, Query(ge=1, le=24 * 60)] = 60,
    checkpoint_id: str | None = None,
) -> list[CountPublic]:
    until = utcnow()
    rows = await counts_per_minute(conn, since=until - timedelta(minutes=minutes), until=until,
                                   checkpoint_id=checkpoint_id)
    return [CountPublic(**{f: getattr(r, f) for f in CountPublic.model_fields}) for r in rows]


@router.get("/cameras", response_model=list[CameraPublic], summary="Camera health")
async def cameras(
    conn: ConnDep, _: Annotated[Principal, Depends(require_roles(*DASHBOARD_READERS))],
    checkpoint_id: str | None = None,
) -> list[CameraPublic]:
    rows = await list_cameras(conn, checkpoint_id=checkpoint_id)
    if checkpoint_id is not None and not rows:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no cameras at this checkpoint")
    return [CameraPublic(camera_id=c.camera_id, checkpoint_id=c.checkpoint_id, online=c.online,
                         last_seen=c.last_seen, expected_interval_s=c.expected_interval_s) for c in rows]
