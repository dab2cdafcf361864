"""Plate reads: idempotent bulk writes and the look-ups police and the watchlist need.

Look-ups are newest first with keyset pagination on ``(captured_at, read_id)``,
which every plate index ends with, so page N costs what page 1 costs.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple

from psycopg import AsyncConnection, sql
from psycopg.rows import class_row

from ioc.schemas import Direction, PlateRead
from ioc.storage.audit import AuditNote, audited, fetch_one_audited
from ioc.storage.plate_text import (
    expand_single_wildcard,
    has_wildcards,
    normalise_query,
    plate_skeleton,
    searchable_query,
    wildcard_to_like,
)
from ioc.storage.staged_insert import StagedTable, copy_and_insert, copy_and_insert_keys
from ioc.storage.uncounted_minutes import queue_minutes

__all__ = [
    "MAX_PAGE",
    "Sighting",
    "SightingCursor",
    "find_sightings",
    "get_crop",
    "get_read",
    "insert_new_plate_reads",
    "insert_plate_reads",
    "recent_reads_matching",
]

MAX_PAGE = 500

MatchKind = Literal["exact", "lookalike", "pattern"]

_READS = StagedTable(
    "plate_reads",
    [
        ("read_id", "uuid"), ("captured_at", "timestamptz"), ("camera_id", "text"),
        ("checkpoint_id", "text"), ("lane", "int2"), ("direction", "text"), ("text", "text"),
        ("display", "text"), ("confidence", "float4"), ("layout", "text"), ("colour", "text"),
        ("province", "text"), ("out_of_province", "bool"), ("source", "text"),
        ("source_event_id", "uuid"), ("candidates", "jsonb"), ("bbox", "int4[]"),
        ("vehicle_class", "text"), ("has_crop", "bool"), ("processed_at", "timestamptz"),
    ],
    conflict=["read_id", "captured_at"],
)
_CROPS = StagedTable(
    "plate_crops",
    [("read_id", "uuid"), ("captured_at", "timestamptz"), ("crop_jpeg", "bytea")],
    conflict=["read_id", "captured_at"],
)


def _read_row(read: PlateRead) -> tuple[object, ...]:
    # the enum fields are StrEnums: psycopg dumps them as the strings they are (their values)
    return (
        read.read_id, read.captured_at, read.camera_id, read.checkpoint_id, read.lane,
        read.direction, read.text, read.display, read.confidence, read.layout, read.colour,
        read.province, read.out_of_province, read.source, read.source_event_id,
        [{"text": c.text, "confidence": c.confidence} for c in read.candidates],
        list(read.bbox) if read.bbox is not None else None,
        read.vehicle_class, read.crop_jpeg is not None, read.processed_at,
    )


async def insert_plate_reads(conn: AsyncConnection, reads: Sequence[PlateRead]) -> int:
    """Store reads (crops in ``plate_crops``); returns how many reads were new. The minutes of
    edge reads, which the checkpoint counts count, are queued for recounting.

    A replayed read (same ``read_id`` and ``captured_at``) is skipped, so
    at-least-once delivery never stores a read twice.
    """
    return len(await insert_new_plate_reads(conn, reads))


async def insert_new_plate_reads(conn: AsyncConnection, reads: Sequence[PlateRead]) -> list[PlateRead]:
    """Store reads as :func:`insert_plate_reads` does; returns those that were new (of a read
    given twice, the first): what a replay stored before is not to be counted again."""
    if not reads:
        return []
    async with conn.transaction():
        keys = await copy_and_insert_keys(conn, _READS, map(_read_row, reads))
        crops = [(r.read_id, r.captured_at, r.crop_jpeg) for r in reads if r.crop_jpeg is not None]
        if crops:
            await copy_and_insert(conn, _CROPS, crops)
        await queue_minutes(conn, (r.captured_at for r in reads if r.source == "edge"))
    first: dict[tuple[object, ...], PlateRead] = {}
    for read in reads:
        first.setdefault((read.read_id, read.captured_at), read)
    return [first[key] for key in keys]


@dataclass(frozen=True, slots=True)
class SightingCursor:
    """Where the next page starts: strictly older than this sighting."""

    captured_at: datetime
    read_id: uuid.UUID

    def token(self) -> str:
        """Opaque, URL-safe form for an API's ``next`` link."""
        raw = f"{self.captured_at.isoformat()}|{self.read_id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def from_token(cls, token: str) -> SightingCursor:
        """Parse :meth:`token`'s output; ``ValueError`` for anything else."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            moment, read_id = raw.split("|")
            captured_at = datetime.fromisoformat(moment)
            parsed = uuid.UUID(read_id)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError("invalid page cursor") from exc
        if captured_at.tzinfo is None:
            raise ValueError("invalid page cursor")
        return cls(captured_at, parsed)


class Sighting(NamedTuple):
    """One read of a plate, compact enough for a handheld over a slow network.

    A named tuple, built straight from the row: a look-up's page is the hottest
    path of the API, and building a frozen dataclass per row showed in its profile."""

    read_id: uuid.UUID
    captured_at: datetime
    camera_id: str
    checkpoint_id: str
    lane: int
    direction: str
    text: str
    display: str
    confidence: float
    vehicle_class: str
    colour: str
    province: str | None
    out_of_province: bool | None
    has_crop: bool
    match: MatchKind

    @property
    def cursor(self) -> SightingCursor:
        return SightingCursor(self.captured_at, self.read_id)


def _sighting_rows(cursor: object) -> Callable[[Sequence[Any]], Sighting]:
    """psycopg row factory: rows come in ``Sighting``'s field order."""
    return Sighting._make


_SIGHTING_COLUMNS = sql.SQL(
    "read_id, captured_at, camera_id, checkpoint_id, lane, direction, text, display, confidence,"
    " vehicle_class, colour, province, out_of_province, has_crop"
)


def _plate_condition(plate: str, fuzzy: bool) -> tuple[sql.Composable, dict]:
    """Match expression, FROM and WHERE for a plate or ``*``/``?`` pattern, with its parameters."""
    query = searchable_query(plate)
    params: dict = {"q": query}
    if (plates := expand_single_wildcard(query)) is not None:
        if fuzzy:
            params["skeletons"] = sorted({plate_skeleton(p) for p in plates})
            params["like"] = wildcard_to_like(query)
            where = sql.SQL("skeleton = ANY(%(skeletons)s)")
            match = sql.SQL("CASE WHEN text LIKE %(like)s THEN 'pattern' ELSE 'lookalike' END")
        else:
            params["plates"] = plates
            where, match = sql.SQL("text = ANY(%(plates)s)"), sql.SQL("'pattern'")
    elif has_wildcards(query):
        params["like"] = wildcard_to_like(query)
        if fuzzy:
            params["skeleton_like"] = plate_skeleton(params["like"])
            where = sql.SQL("skeleton LIKE %(skeleton_like)s")
            match = sql.SQL("CASE WHEN text LIKE %(like)s THEN 'pattern' ELSE 'lookalike' END")
        else:
            where, match = sql.SQL("text LIKE %(like)s"), sql.SQL("'pattern'")
    elif fuzzy:
        params["skeleton"] = plate_skeleton(query)
        where = sql.SQL("skeleton = %(skeleton)s")
        match = sql.SQL("CASE WHEN text = %(q)s THEN 'exact' ELSE 'lookalike' END")
    else:
        where, match = sql.SQL("text = %(q)s"), sql.SQL("'exact'")
    return sql.SQL("{} AS match FROM plate_reads WHERE {}").format(match, where), params


async def find_sightings(
    conn: AsyncConnection,
    *,
    text: str | None = None,
    pattern: str | None = None,
    fuzzy: bool = False,
    since: datetime,
    until: datetime | None = None,
    checkpoint_id: str | None = None,
    direction: Direction | str | None = None,
    limit: int = 50,
    before: SightingCursor | None = None,
    audit: AuditNote | None = None,
) -> list[Sighting]:
    """Sightings of a plate in ``[since, until)`` (``until`` None: no end), newest first.

    ``text`` is a plate (separators and case ignored); ``pattern`` may hold ``*``
    (any run) and ``?`` (one character); ``fuzzy`` also matches look-alike
    characters (0/O/D/Q, 1/I/T, 2/Z, 5/S, 6/G, 8/B, 4/A). Pass the last row's
    ``cursor`` as ``before`` for the next page.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be within 1..{MAX_PAGE}")
    if (text is None) == (pattern is None):
        raise ValueError("give exactly one of text or pattern")
    if text is not None and has_wildcards(text):
        raise ValueError("wildcards belong in pattern, not text")
    plate, params = _plate_condition(text if text is not None else str(pattern), fuzzy)
    params.update(since=since, limit=limit)
    filters = [sql.SQL("captured_at >= %(since)s")]
    if until is not None:
        filters.append(sql.SQL("captured_at < %(until)s"))
        params["until"] = until
    if checkpoint_id is not None:
        filters.append(sql.SQL("checkpoint_id = %(checkpoint_id)s"))
        params["checkpoint_id"] = checkpoint_id
    if direction is not None:
        filters.append(sql.SQL("direction = %(direction)s"))
        params["direction"] = Direction(direction).value
    if before is not None:
        filters.append(sql.SQL("(captured_at, read_id) < (%(before_at)s, %(before_id)s)"))
        params.update(before_at=before.captured_at, before_id=before.read_id)
    where = sql.SQL(" AND ").join(filters)
    matching = sql.SQL("SELECT {}, {} AND {}").format(_SIGHTING_COLUMNS, plate, where)
    order = sql.SQL("captured_at DESC, read_id DESC")
    newest = sql.SQL(" ORDER BY {} LIMIT %(limit)s").format(order)
    if pattern is not None and (normalise_query(pattern)[0] in "*?" or "skeletons" in params
                                or "plates" in params):
        # No literal prefix, or one `?` (36 plates, or skeletons): walking the time index
        # newest-first would test every read of the window (150-200 ms for 300,000 reads, against
        # 16 ms and less collecting first). Collect the (indexed) matches first, then order those.
        query = sql.SQL("WITH m AS MATERIALIZED ({}) SELECT * FROM m{}").format(matching, newest)
    else:
        query = matching + newest
    if audit is not None:
        query, params = audited(query, params, audit, order_by=order)
    async with conn.cursor(row_factory=_sighting_rows) as cur:
        # A prepared statement may get PostgreSQL's generic plan, which cannot see how
        # selective a LIKE pattern is and walks the time index: 20-40 times slower than
        # a plan made for the pattern at hand. Exact look-ups keep theirs (it is quicker).
        await cur.execute(query, params, prepare=False if pattern is not None else None)
        return await cur.fetchall()


_PLATE_READ_COLUMNS = sql.SQL(
    "read_id, captured_at, camera_id, checkpoint_id, lane, direction, text, display, confidence,"
    " layout, colour, province, out_of_province, source, source_event_id, candidates, bbox,"
    " vehicle_class, processed_at"
)


def _one_edit_skeletons(plate: str) -> tuple[list[str], list[str]]:
    """Skeletons of ``plate`` with one character dropped, and LIKE patterns with one inserted."""
    skeleton = plate_skeleton(plate)
    dropped = sorted({skeleton[:i] + skeleton[i + 1:] for i in range(len(skeleton))})
    inserted = sorted({skeleton[:i] + "_" + skeleton[i:] for i in range(len(skeleton) + 1)})
    return dropped, inserted


async def recent_reads_matching(
    conn: AsyncConnection,
    pattern: str,
    since: datetime,
    *,
    until: datetime | None = None,
    fuzzy: bool = True,
    limit: int = 10_000,
) -> list[PlateRead]:
    """Reads since ``since`` that may match a new watchlist ``pattern``, without crops: the newest
    ``limit`` of them (a wanted vehicle's latest sightings matter most), oldest first.

    A ``*``/``?`` pattern matches as a wildcard. With ``fuzzy`` a plate also
    matches look-alike characters and one inserted or dropped character (the
    stream matcher's rules), so this returns a superset: the caller decides which
    reads are hits and how strongly. For past-read matching when an entry is added.
    """
    query_text = normalise_query(pattern)
    if fuzzy and not has_wildcards(query_text):
        if len(query_text) < 2:
            raise ValueError("a plate query needs at least two letters or digits")
        dropped, inserted = _one_edit_skeletons(query_text)
        params: dict = {"skeleton": plate_skeleton(query_text), "dropped": dropped, "inserted": inserted}
        plate: sql.Composable = sql.SQL(
            "NULL AS match FROM plate_reads WHERE (skeleton = %(skeleton)s"
            " OR skeleton = ANY(%(dropped)s) OR skeleton LIKE ANY(%(inserted)s))")
    else:
        plate, params = _plate_condition(query_text, fuzzy)
    params.update(since=since, limit=limit)
    time_filter = sql.SQL("captured_at >= %(since)s")
    if until is not None:
        time_filter = sql.SQL("{} AND captured_at < %(until)s").format(time_filter)
        params["until"] = until
    query = sql.SQL("SELECT * FROM (SELECT {}, {} AND {} ORDER BY captured_at DESC, read_id DESC"
                    " LIMIT %(limit)s) AS newest ORDER BY captured_at, read_id").format(
        _PLATE_READ_COLUMNS, plate, time_filter)
    async with conn.cursor(row_factory=class_row(PlateRead)) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def get_read(conn: AsyncConnection, read_id: uuid.UUID) -> PlateRead | None:
    """One read by id (without its crop)."""
    query = sql.SQL("SELECT {} FROM plate_reads WHERE read_id = %s").format(_PLATE_READ_COLUMNS)
    async with conn.cursor(row_factory=class_row(PlateRead)) as cur:
        await cur.execute(query, [read_id])
        return await cur.fetchone()


async def get_crop(
    conn: AsyncConnection, read_id: uuid.UUID, captured_at: datetime | None = None, *,
    audit: AuditNote | None = None,
) -> bytes | None:
    """The JPEG crop of a read; ``captured_at`` (when known) limits the search to one day.
    ``audit`` is recorded by the same statement, found or not (a crop shows a plate)."""
    query = sql.SQL("SELECT captured_at, crop_jpeg FROM plate_crops WHERE read_id = %(read_id)s")
    params: dict[str, Any] = {"read_id": read_id}
    if captured_at is not None:
        query += sql.SQL(" AND captured_at = %(captured_at)s")
        params["captured_at"] = captured_at
    row = await fetch_one_audited(conn, query, params, audit, order_by=sql.SQL("captured_at DESC"))
    return bytes(row[1]) if row else None
