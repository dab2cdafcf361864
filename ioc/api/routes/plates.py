"""Plate look-ups for police handhelds: sightings and "is this vehicle wanted?".

Every query states its purpose and is written to the audit log in the same
transaction as the query itself: no audit record, no answer. Responses are
compact (short field names are not worth the confusion; small pages and gzip
are what help on slow mobile networks).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel

from ioc import metrics
from ioc.api.deps import PLATE_SEARCHERS, ConnDep, require_roles
from ioc.api.security import Principal
from ioc.schemas import Direction, utcnow
from ioc.storage.audit import append_audit
from ioc.storage.plate_reads import SightingCursor, find_sightings, get_crop
from ioc.storage.watchlist import entries_matching

router = APIRouter(prefix="/api/plates", tags=["plates"])
crops = APIRouter(prefix="/api/reads", tags=["plates"])

Purpose = Annotated[str, Query(min_length=3, max_length=200,
                               description="Case number or reason; required and audited")]
MAX_WINDOW = timedelta(days=31)


class SightingPublic(BaseModel):
    read_id: uuid.UUID
    at: datetime
    plate: str
    display: str
    checkpoint_id: str
    camera_id: str
    direction: str
    confidence: float
    match: str
    crop_url: str | None


class SightingsPublic(BaseModel):
    data: list[SightingPublic]
    count: int
    next: str | None  # cursor for the next (older) page


class WantedEntry(BaseModel):
    entry_id: uuid.UUID
    pattern: str
    reason: str
    priority: int
    match: str
    expires_at: datetime | None


class WantedPublic(BaseModel):
    plate: str
    wanted: bool
    entries: list[WantedEntry]


@router.get("/sightings", response_model=SightingsPublic, summary="Where and when a plate was seen")
async def sightings(
    request: Request,
    conn: ConnDep,
    user: Annotated[Principal, Depends(require_roles(*PLATE_SEARCHERS))],
    plate: Annotated[str, Query(min_length=2, max_length=16, description="Plate, or pattern with * and ?")],
    purpose: Purpose,
    mode: Literal["exact", "fuzzy", "partial"] = "exact",
    since: datetime | None = None,
    until: datetime | None = None,
    checkpoint_id: Annotated[str | None, Query(max_length=64)] = None,
    direction: Direction | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> SightingsPublic:
    until = until or utcnow()
    since = since or until - timedelta(days=7)
    if until - since > MAX_WINDOW or since >= until:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "time window must be 0-31 days")
    wildcard = "*" in plate or "?" in plate
    if wildcard != (mode == "partial"):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY,
                            "use mode=partial with * or ? wildcards, and only then")
    try:
        before = SightingCursor.from_token(cursor) if cursor else None
        rows = await find_sightings(
            conn, text=None if wildcard else plate, pattern=plate if wildcard else None,
            fuzzy=mode == "fuzzy", since=since, until=until, checkpoint_id=checkpoint_id,
            direction=direction, limit=limit, before=before,
        )
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from exc
    await append_audit(
        conn, actor=user.username, role=user.role, action="plate_sightings", purpose=purpose,
        query={"plate": plate, "mode": mode, "since": since.isoformat(), "until": until.isoformat(),
               "checkpoint_id": checkpoint_id, "direction": direction, "cursor": cursor},
        result_count=len(rows),
    )
    metrics.PLATE_QUERIES.labels(mode).inc()
    base = str(request.base_url).rstrip("/")
    data = [
        SightingPublic(
            read_id=r.read_id, at=r.captured_at, plate=r.text, display=r.display,
            checkpoint_id=r.checkpoint_id, camera_id=r.camera_id, direction=r.direction,
            confidence=round(r.confidence, 3), match=r.match,
            crop_url=f"{base}/api/reads/{r.read_id}/crop.jpg?at={r.captured_at.isoformat()}"
            if r.has_crop else None,
        )
        for r in rows
    ]
    next_cursor = rows[-1].cursor.token() if len(rows) == limit else None
    return SightingsPublic(data=data, count=len(data), next=next_cursor)


@router.get("/{plate}/wanted", response_model=WantedPublic, summary="Is this vehicle wanted?")
async def wanted(
    plate: Annotated[str, Path(min_length=2, max_length=16)],
    conn: ConnDep,
    user: Annotated[Principal, Depends(require_roles(*PLATE_SEARCHERS))],
    purpose: Purpose,
) -> WantedPublic:
    try:
        matches = await entries_matching(conn, plate, utcnow())
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from exc
    await append_audit(conn, actor=user.username, role=user.role, action="watchlist_check",
                       purpose=purpose, query={"plate": plate}, result_count=len(matches))
    metrics.PLATE_QUERIES.labels("wanted").inc()
    entries = [
        WantedEntry(entry_id=m.entry.entry_id, pattern=m.entry.pattern, reason=m.entry.reason,
                    priority=m.entry.priority, match=m.match_kind, expires_at=m.entry.expires_at)
        for m in matches
    ]
    return WantedPublic(plate=plate, wanted=bool(entries), entries=entries)


@crops.get("/{read_id}/crop.jpg", response_class=Response, summary="The plate crop of a read (JPEG)",
           responses={200: {"content": {"image/jpeg": {}}}})
async def crop(
    read_id: uuid.UUID,
    conn: ConnDep,
    _: Annotated[Principal, Depends(require_roles(*PLATE_SEARCHERS, "admin"))],
    at: datetime | None = None,
) -> Response:
    data = await get_crop(conn, read_id, at)
    if data is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no crop for this read")
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})
