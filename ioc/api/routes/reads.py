"""Plate crops: small JPEGs, fetched only when a handheld or the operator page shows one.

A crop shows a plate, so every fetch is audited as a plate look-up is (found or not), by the
look-up's own statement: if its audit record cannot be written, the crop is not served.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, HTTPException, Response, status

from ioc.api.deps import ConnDep, PlateSearcher
from ioc.storage.audit import AuditNote
from ioc.storage.plate_reads import get_crop

router = APIRouter(prefix="/api/reads", tags=["plates"])

# a crop link states no purpose: the look-up that handed it out is the reason it is shown
CROP_PURPOSE = "plate crop shown"


@router.get("/{read_id}/crop.jpg", response_class=Response, summary="The plate crop of one read (audited)",
            responses={200: {"content": {"image/jpeg": {}}}, 404: {"description": "no crop stored"}})
async def crop(
    read_id: uuid.UUID, conn: ConnDep, user: PlateSearcher, at: datetime | None = None
) -> Response:
    """``at`` (the read's capture time, as in the links the API hands out) narrows the
    search to one partition; without it every day is searched."""
    note = AuditNote(actor=user.username, role=user.role, action="plate.crop",
                     query={"read_id": read_id, "at": at}, purpose=CROP_PURPOSE)
    return crop_response(await get_crop(conn, read_id, at, audit=note), missing="no crop for this read")


def crop_response(jpeg: bytes | None, *, missing: str) -> Response:
    """A crop as served (a read's, or an alert's copy of it), 404 with ``missing`` without one."""
    if jpeg is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, missing)
    # a crop shows a plate: kept by no cache, the browser's on a shared console PC included (it
    # outlived the sign-out there); the console keeps the crops it shows in memory, for its session
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, no-store"})
