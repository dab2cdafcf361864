"""Watchlist management: add, update, expire, CSV import and export.

The database commits first; then the changed entries go to the compacted
watchlist topic, which every stream worker reads, so a change is live within
seconds. Each change is also written to the audit log (the table keeps only
an entry's latest state).

A change takes its connection from the pool itself and hands it back before publishing: the
publisher reads each entry as stored on a connection of its own, and a request holding one while
waiting for another (as many changes at once as the pool holds) stalled every request of the
process until the pool's timeout.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from psycopg import AsyncConnection
from pydantic import AwareDatetime, BaseModel, Field, ValidationError

from ioc.api.deps import ConnDep, PoolDep, WatchlistEditor, WatchlistReader
from ioc.api.publishing import EventPublisher
from ioc.api.security import Principal
from ioc.schemas import WatchlistEntry
from ioc.storage.audit import AuditNote, append_audit, append_audits
from ioc.storage.plate_text import searchable_query
from ioc.storage.watchlist import (
    add_entry,
    expire_entry,
    get_entry,
    import_entries,
    list_entries,
    update_entry,
)

router = APIRouter(prefix="/api/watchlist", tags=["watchlist"])

MAX_IMPORT_ROWS = 10_000
_ACTIVE_CELLS = {"true": True, "1": True, "yes": True, "y": True, "false": False, "0": False, "no": False,
                 "n": False}
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet would run: the export quotes them
CSV_COLUMNS = ("entry_id", "pattern", "reason", "priority", "expires_at", "active", "added_by", "added_at")

# An entry's reason is the audited purpose of adding or changing it: blank is refused here (422),
# as the audit log refuses it (a reason of one space had reached the database: a 500)
Reason = Annotated[str, Field(max_length=500, pattern=r"\S", description="Why the plate is wanted (audited "
                              "as the purpose of the change); not blank")]


class WatchlistCreate(BaseModel):
    pattern: str = Field(min_length=2, max_length=24, description="Plate or pattern with * and ? "
                         "(a pattern needs 3 letters or digits in a row)")
    reason: Reason
    priority: int = Field(2, ge=1, le=5, description="1 = highest")
    expires_at: AwareDatetime | None = None


class WatchlistUpdate(BaseModel):
    """Fields left out stay as they are. Only ``expires_at`` may be null (no expiry): the others
    are typed without null, so ``{"pattern": null}`` gets 422 rather than becoming a pattern."""

    pattern: str = Field(None, min_length=2, max_length=24)
    reason: Reason = None
    priority: int = Field(None, ge=1, le=5)
    expires_at: AwareDatetime | None = None
    active: bool = None


class WatchlistExpire(BaseModel):
    note: str | None = Field(None, max_length=500)


class WatchlistPublic(BaseModel):
    entry_id: uuid.UUID
    pattern: str
    reason: str
    priority: int
    expires_at: datetime | None
    added_by: str
    added_at: datetime
    active: bool


class WatchlistPage(BaseModel):
    data: list[WatchlistPublic]
    count: int


class ImportProblem(BaseModel):
    line: int
    error: str


class ImportResult(BaseModel):
    added: int
    updated: int
    errors: list[ImportProblem] = []


class Refusal(BaseModel):
    """A request refused as a whole, with why: the body of an ``HTTPException``."""

    detail: str


def _public(entry: WatchlistEntry) -> WatchlistPublic:
    return WatchlistPublic(**entry.model_dump())


def _entry(**fields: Any) -> WatchlistEntry:
    """A validated entry with its pattern in canonical form; 422 when it cannot be one."""
    fields["pattern"] = searchable_query(str(fields["pattern"]))
    return WatchlistEntry(**fields)


def _unprocessable(exc: Exception) -> HTTPException:
    detail = exc.errors(include_url=False, include_context=False) if isinstance(exc, ValidationError) \
        else str(exc)
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)


def _refuse_if_never_in_force(entry: WatchlistEntry, asked: set[str]) -> None:
    """422 for an entry put in force (added, made active, given an expiry: the ``asked`` fields)
    that is past its expiry already: the list would show it active while the workers and "is it
    wanted?" ignore it, and a wanted vehicle would pass without an alert."""
    if asked & {"active", "expires_at"}:
        try:
            _never_in_force(entry, datetime.now(UTC))
        except ValueError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None


def _never_in_force(entry: WatchlistEntry, now: datetime) -> None:
    """ValueError for an active entry past its expiry at ``now``."""
    if entry.active and entry.expires_at is not None and entry.expires_at <= now:
        raise ValueError(f"expires_at {entry.expires_at.isoformat()} is past: the entry would never "
                         "match; give a later expires_at, or null for none")


def _note(user: Principal, action: str, entry: WatchlistEntry, purpose: str) -> AuditNote:
    return AuditNote(actor=user.username, role=user.role, action=action, purpose=purpose,
                     query={"entry_id": entry.entry_id, "pattern": entry.pattern,
                            "priority": entry.priority, "active": entry.active})


async def _audit(
    conn: AsyncConnection, user: Principal, action: str, entry: WatchlistEntry, purpose: str
) -> None:
    await append_audits(conn, [_note(user, action, entry, purpose)], result_count=1)


def _publisher(request: Request) -> EventPublisher:
    return request.app.state.publisher


@router.get("", response_model=WatchlistPage, summary="Entries by priority, then newest")
async def list_watchlist(
    conn: ConnDep,
    _: WatchlistReader,
    include_inactive: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> WatchlistPage:
    entries = await list_entries(conn, include_inactive=include_inactive, limit=limit, offset=offset)
    return WatchlistPage(data=[_public(e) for e in entries], count=len(entries))


def _csv_cell(value: object) -> str:
    """A CSV cell that a spreadsheet will not run as a formula."""
    text = "" if value is None else value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text if text[:1] in _FORMULA_STARTS else text


def _uncell(text: str) -> str:
    """A cell as :func:`_csv_cell` wrote it, back: its quoting apostrophe off, any other kept."""
    return text[1:] if text[:1] == "'" and text[1:2] in _FORMULA_STARTS else text


def _active_cell(text: str) -> bool:
    """An import's ``active`` cell: yes or no, never a guess (anything else had been taken for no)."""
    try:
        return _ACTIVE_CELLS[text.lower() or "true"]
    except KeyError:
        raise ValueError(f"active: {text!r} is neither true nor false (1/0, yes/no)") from None


@router.get("/export.csv", response_class=Response, summary="All entries as CSV (UTF-8; audited)",
            responses={200: {"content": {"text/csv": {}}}})
async def export_csv(conn: ConnDep, user: WatchlistReader, include_inactive: bool = False) -> Response:
    """Every wanted plate and why, in bulk: audited (``watchlist.export``, with the number of entries)
    as a plate look-up is, in the read's own transaction, so no export leaves without its record."""
    async with conn.transaction():
        entries = await list_entries(conn, include_inactive=include_inactive, limit=MAX_IMPORT_ROWS * 10)
        await append_audit(conn, actor=user.username, role=user.role, action="watchlist.export",
                           query={"include_inactive": include_inactive}, purpose="watchlist CSV export",
                           result_count=len(entries))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for entry in entries:
        fields = entry.model_dump()
        writer.writerow([_csv_cell(fields[column]) for column in CSV_COLUMNS])
    # the BOM makes spreadsheet programs read Vietnamese reasons as UTF-8
    return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="watchlist.csv"'})


def _rows(reader: csv.DictReader, errors: list[ImportProblem]) -> Iterator[dict[str, str | None]]:
    """The reader's rows; a line the csv module cannot split (a field over its size
    limit) becomes an error of its own and reading goes on with the next line."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            errors.append(ImportProblem(line=reader.line_num + 1, error=str(exc)))  # the line it failed on


def _parse_import(raw: bytes, user: Principal) -> tuple[list[WatchlistEntry], list[ImportProblem]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "the CSV must be UTF-8") from exc
    reader = csv.DictReader(io.StringIO(text), strict=True)  # an unclosed quote is an error, not a field
    try:
        header = reader.fieldnames
    except csv.Error as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"line 1: {exc}") from exc
    if not header or not {"pattern", "reason"} <= {f.strip() for f in header}:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            "the first line must name the columns, at least pattern and reason")
    entries: list[WatchlistEntry] = []
    errors: list[ImportProblem] = []
    now = datetime.now(UTC)
    for row in _rows(reader, errors):
        if len(entries) + len(errors) >= MAX_IMPORT_ROWS:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"at most {MAX_IMPORT_ROWS} rows")
        cells = {k.strip(): (v or "").strip() for k, v in row.items() if k}
        try:
            fields: dict[str, Any] = {"pattern": cells["pattern"], "reason": _uncell(cells["reason"]),
                                      "priority": cells.get("priority") or 2,
                                      "expires_at": cells.get("expires_at") or None,
                                      "active": _active_cell(cells.get("active") or ""),
                                      "added_by": user.username, "added_at": now}
            if cells.get("entry_id"):
                fields["entry_id"] = cells["entry_id"]
            if not fields["reason"]:
                raise ValueError("reason: every entry needs a reason (as POST /api/watchlist does)")
            entry = _entry(**fields)
            if "entry_id" not in fields:  # a new entry; an exported one that has since expired may come back
                _never_in_force(entry, now)
            entries.append(entry)
        except (ValidationError, ValueError) as exc:
            message = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()) \
                if isinstance(exc, ValidationError) else str(exc)
            errors.append(ImportProblem(line=reader.line_num, error=message))
    return entries, errors


@router.post("/import", response_model=ImportResult, summary="Add or update entries from CSV (all or none)",
             openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {
                 "type": "string", "description": "Header line, then rows; columns pattern, reason, "
                 "and optionally priority, expires_at, active, entry_id (an existing id updates)"}}}}},
             responses={413: {"model": Refusal, "content": {"text/plain": {"schema": {"type": "string"}}},
                              "description": f"more than {MAX_IMPORT_ROWS:,} rows, or a body over "
                                             "IOC_API_MAX_BODY_BYTES (refused before the route, as plain "
                                             "text where the request gave its length); nothing was imported"},
                        422: {"model": ImportResult | Refusal,
                              "description": "rows with errors (each with its line; nothing was imported), "
                                             "or the file refused as a whole (`detail`, e.g. not UTF-8, "
                                             "or no header line naming pattern and reason)"}})
async def import_csv(request: Request, pool: PoolDep, user: WatchlistEditor) -> ImportResult | Response:
    entries, errors = _parse_import(await request.body(), user)
    if errors:
        body = ImportResult(added=0, updated=0, errors=errors)
        return Response(body.model_dump_json(), status_code=422, media_type="application/json")
    started = datetime.now(UTC)
    async with pool.connection() as conn, conn.transaction():
        stored = await import_entries(conn, entries, actor=user.username)
        added = sum(new for _, new in stored)
        updated = len(stored) - added
        # each entry audited as POST and PATCH audit theirs: an import is as many plate searches
        # (a new entry is matched against the past day's reads), and a later import may overwrite it
        notes = [_note(user, "watchlist.add" if new else "watchlist.update", entry, entry.reason)
                 for entry, new in stored]
        await append_audits(conn, notes, result_count=1)
        await append_audit(conn, actor=user.username, role=user.role, action="watchlist.import",
                           query={"added": added, "updated": updated}, purpose="watchlist CSV import",
                           result_count=added + updated)
    _publisher(request).publish_soon(started)
    return ImportResult(added=added, updated=updated)


@router.post("", response_model=WatchlistPublic, status_code=status.HTTP_201_CREATED, summary="Add an entry")
async def create(
    body: WatchlistCreate, request: Request, pool: PoolDep, user: WatchlistEditor
) -> WatchlistPublic:
    try:
        entry = _entry(**body.model_dump(), added_by=user.username)
    except (ValidationError, ValueError) as exc:
        raise _unprocessable(exc) from exc
    _refuse_if_never_in_force(entry, {"active", "expires_at"})
    async with pool.connection() as conn, conn.transaction():
        await add_entry(conn, entry)
        await _audit(conn, user, "watchlist.add", entry, entry.reason)
    await _publisher(request).watchlist_changed([entry])
    return _public(entry)


@router.get("/{entry_id}", response_model=WatchlistPublic)
async def read(entry_id: uuid.UUID, conn: ConnDep, _: WatchlistReader) -> WatchlistPublic:
    entry = await get_entry(conn, entry_id)
    if entry is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such entry")
    return _public(entry)


@router.patch("/{entry_id}", response_model=WatchlistPublic, summary="Change pattern, reason, priority, "
              "expiry or active (fields left out stay as they are)")
async def update(
    entry_id: uuid.UUID, body: WatchlistUpdate, request: Request, pool: PoolDep, user: WatchlistEditor
) -> WatchlistPublic:
    async with pool.connection() as conn, conn.transaction():
        current = await get_entry(conn, entry_id, for_update=True)
        if current is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such entry")
        asked = body.model_dump(exclude_unset=True)
        try:
            entry = _entry(**{**current.model_dump(), **asked})
        except (ValidationError, ValueError) as exc:
            raise _unprocessable(exc) from exc
        _refuse_if_never_in_force(entry, set(asked))
        changed = await update_entry(conn, entry, actor=user.username)
        if changed is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such entry")
        await _audit(conn, user, "watchlist.update", changed, changed.reason)
    await _publisher(request).watchlist_changed([changed])
    return _public(changed)


@router.post("/{entry_id}/expire", response_model=WatchlistPublic, summary="Take an entry out of force now")
async def expire(
    entry_id: uuid.UUID, request: Request, pool: PoolDep, user: WatchlistEditor,
    body: WatchlistExpire | None = None,
) -> WatchlistPublic:
    async with pool.connection() as conn, conn.transaction():
        entry = await expire_entry(conn, entry_id, actor=user.username)
        if entry is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such entry")
        note = body.note if body and body.note and body.note.strip() else "expired by operator"
        await _audit(conn, user, "watchlist.expire", entry, note)
    await _publisher(request).watchlist_changed([entry])
    return _public(entry)
