"""Watchlist management: add, update, expire, import and export CSV.

The database is the source of truth; each committed change is then published
to the compacted watchlist topic, which the stream workers follow (changes take
effect within seconds, without a restart).
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, UploadFile, status
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field, ValidationError

from ioc.api.deps import WATCHLIST_EDITORS, WATCHLIST_READERS, ConnDep, require_roles
from ioc.api.security import Principal
from ioc.schemas import WatchlistEntry
from ioc.storage.watchlist import add_entry, expire_entry, get_entry, list_entries, update_entry
from ioc.watchlist_sync import publish_entries

router = APIRouter(prefix="/api/watchlist", tags=["watchlist"])

CSV_FIELDS = ["entry_id", "pattern", "reason", "priority", "expires_at", "added_by", "added_at", "active"]
MAX_IMPORT_ROWS = 50_000


class EntryCreate(BaseModel):
    pattern: str = Field(min_length=2, max_length=16, examples=["51F86988", "30A12*"])
    reason: str = Field(min_length=3, max_length=500)
    priority: int = Field(2, ge=1, le=5)
    expires_at: datetime | None = None


class EntryUpdate(BaseModel):
    pattern: str | None = Field(None, min_length=2, max_length=16)
    reason: str | None = Field(None, min_length=3, max_length=500)
    priority: int | None = Field(None, ge=1, le=5)
    expires_at: datetime | None = None
    active: bool | None = None


class EntriesPublic(BaseModel):
    data: list[WatchlistEntry]
    count: int


class ImportResult(BaseModel):
    added: int
    unchanged: int


async def _publish(request: Request, conn, entries: list[WatchlistEntry]) -> None:  # noqa: ANN001
    await conn.commit()  # publish only what the database holds
    await publish_entries(request.app.state.producer, request.app.state.settings.topics.watchlist, entries)


@router.get("", response_model=EntriesPublic)
async def list_watchlist(
    conn: ConnDep, _: Annotated[Principal, Depends(require_roles(*WATCHLIST_READERS))],
    include_inactive: bool = False,
) -> EntriesPublic:
    entries = await list_entries(conn, include_inactive=include_inactive)
    return EntriesPublic(data=entries, count=len(entries))


@router.post("", response_model=WatchlistEntry, status_code=status.HTTP_201_CREATED)
async def create(
    body: EntryCreate, request: Request, conn: ConnDep,
    user: Annotated[Principal, Depends(require_roles(*WATCHLIST_EDITORS))],
) -> WatchlistEntry:
    try:
        entry = WatchlistEntry(**body.model_dump(), added_by=user.username)
        await add_entry(conn, entry)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from exc
    stored = await get_entry(conn, entry.entry_id)
    assert stored is not None
    await _publish(request, conn, [stored])
    return stored


@router.patch("/{entry_id}", response_model=WatchlistEntry)
async def update(
    entry_id: uuid.UUID, body: EntryUpdate, request: Request, conn: ConnDep,
    user: Annotated[Principal, Depends(require_roles(*WATCHLIST_EDITORS))],
) -> WatchlistEntry:
    current = await get_entry(conn, entry_id)
    if current is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such entry")
    try:
        changed = current.model_copy(update=body.model_dump(exclude_unset=True))
        updated = await update_entry(conn, WatchlistEntry.model_validate(changed.model_dump()),
                                     actor=user.username)
    except (ValueError, ValidationError) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from exc
    assert updated is not None
    await _publish(request, conn, [updated])
    return updated


@router.delete("/{entry_id}", response_model=WatchlistEntry, summary="Expire an entry now")
async def expire(
    entry_id: uuid.UUID, request: Request, conn: ConnDep,
    user: Annotated[Principal, Depends(require_roles(*WATCHLIST_EDITORS))],
) -> WatchlistEntry:
    expired = await expire_entry(conn, entry_id, actor=user.username)
    if expired is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such entry")
    await _publish(request, conn, [expired])
    return expired


@router.get("/export.csv", response_class=PlainTextResponse, summary="All entries as CSV")
async def export_csv(
    conn: ConnDep, _: Annotated[Principal, Depends(require_roles(*WATCHLIST_READERS))],
) -> PlainTextResponse:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for entry in await list_entries(conn, include_inactive=True, limit=MAX_IMPORT_ROWS):
        writer.writerow(entry.model_dump(mode="json"))
    return PlainTextResponse(out.getvalue(), media_type="text/csv",
                             headers={"Content-Disposition": 'attachment; filename="watchlist.csv"'})


@router.post("/import", response_model=ImportResult, summary="Add entries from CSV (pattern, reason, ...)")
async def import_csv(
    file: UploadFile, request: Request, conn: ConnDep,
    user: Annotated[Principal, Depends(require_roles(*WATCHLIST_EDITORS))],
) -> ImportResult:
    text = (await file.read()).decode("utf-8-sig", errors="strict")
    rows = list(csv.DictReader(io.StringIO(text)))
    if len(rows) > MAX_IMPORT_ROWS:
        raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, f"at most {MAX_IMPORT_ROWS} rows")
    entries, errors = [], []
    for line, row in enumerate(rows, start=2):
        values = {k: v for k, v in row.items() if k in CSV_FIELDS and v not in (None, "")}
        values["added_by"] = user.username
        try:
            entries.append(WatchlistEntry.model_validate(values))
        except ValidationError as exc:
            errors.append(f"line {line}: {exc.errors(include_url=False)[0]['msg']}")
    if errors:  # all or nothing: a half-imported list is worse than none
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, errors[:20])
    added = []
    for entry in entries:
        try:
            if await add_entry(conn, entry):
                added.append(entry)
        except ValueError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from exc
    stored = [e for e in [await get_entry(conn, a.entry_id) for a in added] if e is not None]
    await _publish(request, conn, stored)
    return ImportResult(added=len(added), unchanged=len(entries) - len(added))
