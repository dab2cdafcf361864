"""Watchlist entries: the database is the source of truth; the API publishes each
committed change to the compacted topic the stream workers read."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from psycopg import AsyncConnection, sql
from psycopg.rows import class_row, dict_row

from ioc.schemas import WatchlistEntry
from ioc.storage.audit import AuditNote, audited
from ioc.storage.database import lock_names
from ioc.storage.plate_text import has_wildcards, normalise_query, plate_skeleton, searchable_query

__all__ = [
    "WatchlistMatch",
    "active_entries",
    "add_entry",
    "entries_changed_since",
    "entries_matching",
    "expire_entry",
    "get_entries",
    "get_entry",
    "import_entries",
    "list_entries",
    "lock_for_publishing",
    "normalised_entry",
    "update_entry",
]

_COLUMNS = "entry_id, pattern, reason, priority, expires_at, added_by, added_at, active"
_LIVE = "active AND (expires_at IS NULL OR expires_at > %(at)s)"


def normalised_entry(entry: WatchlistEntry) -> WatchlistEntry:
    """The entry with its pattern in canonical form (``30a-12*`` -> ``30A12*``).

    A pattern that would flag nearly every car (``*``, ``*12*``) is a ValueError
    (:func:`~ioc.storage.plate_text.searchable_query`).
    """
    pattern = searchable_query(entry.pattern)
    return entry if pattern == entry.pattern else entry.model_copy(update={"pattern": pattern})


async def add_entry(conn: AsyncConnection, entry: WatchlistEntry) -> bool:
    """Insert an entry; idempotent on ``entry_id``. Returns whether it was new."""
    e = normalised_entry(entry)
    cur = await conn.execute(
        f"INSERT INTO watchlist_entries ({_COLUMNS}, updated_by)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (entry_id) DO NOTHING",
        _insert_params(e),
    )
    return cur.rowcount == 1


_UPDATE = ("UPDATE watchlist_entries SET pattern = %s, reason = %s, priority = %s, expires_at = %s,"
           f" active = %s, updated_by = %s, updated_at = now() WHERE entry_id = %s RETURNING {_COLUMNS}")


async def update_entry(conn: AsyncConnection, entry: WatchlistEntry, *, actor: str) -> WatchlistEntry | None:
    """Replace an entry's pattern, reason, priority, expiry and active flag (keeping who
    added it and when); ``None`` if there is no such entry."""
    async with conn.cursor(row_factory=class_row(WatchlistEntry)) as cur:
        await cur.execute(_UPDATE, _update_params(normalised_entry(entry), actor))
        return await cur.fetchone()


def _update_params(e: WatchlistEntry, actor: str) -> list[object]:
    return [e.pattern, e.reason, e.priority, e.expires_at, e.active, actor, e.entry_id]


async def import_entries(
    conn: AsyncConnection, entries: Sequence[WatchlistEntry], *, actor: str
) -> list[tuple[WatchlistEntry, bool]]:
    """Add each entry, or replace the stored one with its ``entry_id`` as :func:`update_entry` does,
    in the given order; returns each as stored and whether it was new.

    One statement adds the new ones and one pipelined batch replaces the others: one or two
    round trips per entry took a 10,000-row CSV import about 8 s of its request."""
    if not entries:
        return []
    given = [normalised_entry(entry) for entry in entries]
    cur = await conn.execute(
        f"INSERT INTO watchlist_entries ({_COLUMNS}, updated_by)"
        " SELECT * FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::smallint[], %s::timestamptz[],"
        " %s::text[], %s::timestamptz[], %s::boolean[], %s::text[])"
        " ON CONFLICT (entry_id) DO NOTHING RETURNING entry_id",
        [list(column) for column in zip(*map(_insert_params, given), strict=True)],
    )
    inserted = {entry_id for (entry_id,) in await cur.fetchall()}
    new: list[bool] = []
    for e in given:
        new.append(e.entry_id in inserted)
        inserted.discard(e.entry_id)  # a later row with the same id replaces what this one added
    replaced = iter(await _replace_all(conn, [e for e, is_new in zip(given, new, strict=True) if not is_new],
                                       actor))
    stored = [(e, True) if is_new else (next(replaced), False) for e, is_new in zip(given, new, strict=True)]
    return [(entry, is_new) for entry, is_new in stored if entry is not None]


def _insert_params(e: WatchlistEntry) -> list[object]:
    return [e.entry_id, e.pattern, e.reason, e.priority, e.expires_at, e.added_by, e.added_at, e.active,
            e.added_by]


async def _replace_all(
    conn: AsyncConnection, entries: list[WatchlistEntry], actor: str
) -> list[WatchlistEntry | None]:
    """:func:`update_entry` for each entry, pipelined; ``None`` where there was no such entry."""
    if not entries:
        return []
    stored: list[WatchlistEntry | None] = []
    async with conn.cursor(row_factory=class_row(WatchlistEntry)) as cur:
        await cur.executemany(_UPDATE, [_update_params(e, actor) for e in entries], returning=True)
        while True:
            stored.append(await cur.fetchone())
            if not cur.nextset():
                return stored


async def expire_entry(
    conn: AsyncConnection, entry_id: uuid.UUID, *, actor: str, at: datetime | None = None
) -> WatchlistEntry | None:
    """Deactivate an entry now (or at ``at`` if earlier than its own expiry)."""
    async with conn.cursor(row_factory=class_row(WatchlistEntry)) as cur:
        await cur.execute(
            "UPDATE watchlist_entries SET active = false,"
            " expires_at = least(expires_at, coalesce(%(at)s, now())),"
            " updated_by = %(actor)s, updated_at = now()"
            f" WHERE entry_id = %(entry_id)s RETURNING {_COLUMNS}",
            {"at": at, "actor": actor, "entry_id": entry_id},
        )
        return await cur.fetchone()


async def get_entry(
    conn: AsyncConnection, entry_id: uuid.UUID, *, for_update: bool = False
) -> WatchlistEntry | None:
    """One entry; ``for_update`` locks its row until the transaction ends (a read-modify-write:
    two changes at once to different fields would otherwise each write back the other's old value)."""
    lock = " FOR UPDATE" if for_update else ""
    async with conn.cursor(row_factory=class_row(WatchlistEntry)) as cur:
        await cur.execute(f"SELECT {_COLUMNS} FROM watchlist_entries WHERE entry_id = %s{lock}", [entry_id])
        return await cur.fetchone()


async def lock_for_publishing(conn: AsyncConnection, entry_ids: Sequence[uuid.UUID]) -> None:
    """Serialise publishing these entries until the transaction ends (not their changes: an edit is
    not held up by a slow broker). See :func:`ioc.watchlist_sync.publish_as_stored`. The locks are
    taken in sorted order, one statement for all: two publishers cannot deadlock."""
    await lock_names(conn, (f"watchlist-publish:{entry_id}" for entry_id in entry_ids))


async def get_entries(conn: AsyncConnection, entry_ids: Sequence[uuid.UUID]) -> list[WatchlistEntry]:
    """The stored ones of these entries, in no particular order."""
    async with conn.cursor(row_factory=class_row(WatchlistEntry)) as cur:
        await cur.execute(f"SELECT {_COLUMNS} FROM watchlist_entries WHERE entry_id = ANY(%s)",
                          [list(entry_ids)])
        return await cur.fetchall()


async def list_entries(
    conn: AsyncConnection, *, include_inactive: bool = False, limit: int = 1000, offset: int = 0
) -> list[WatchlistEntry]:
    """Entries by priority (1 first), then newest; for the management page and CSV export."""
    where = "" if include_inactive else " WHERE active"
    async with conn.cursor(row_factory=class_row(WatchlistEntry)) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS} FROM watchlist_entries{where}"
            " ORDER BY priority, added_at DESC, entry_id LIMIT %s OFFSET %s",
            [limit, offset],
        )
        return await cur.fetchall()


async def active_entries(conn: AsyncConnection, at: datetime) -> list[WatchlistEntry]:
    """Entries in force at ``at``: active and not yet expired."""
    async with conn.cursor(row_factory=class_row(WatchlistEntry)) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS} FROM watchlist_entries WHERE {_LIVE} ORDER BY priority, added_at", {"at": at})
        return await cur.fetchall()


async def entries_changed_since(conn: AsyncConnection, since: datetime) -> list[WatchlistEntry]:
    """Entries added or changed since ``since`` (to re-publish them after an outage)."""
    async with conn.cursor(row_factory=class_row(WatchlistEntry)) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS} FROM watchlist_entries WHERE updated_at >= %s ORDER BY updated_at", [since])
        return await cur.fetchall()


@dataclass(frozen=True, slots=True)
class WatchlistMatch:
    entry: WatchlistEntry
    match_kind: Literal["exact", "pattern", "lookalike"]


_MATCHING = f"""
SELECT {_COLUMNS},
       CASE WHEN pattern = %(plate)s THEN 'exact'
            WHEN %(plate)s LIKE replace(replace(pattern, '*', '%%'), '?', '_') THEN 'pattern'
            ELSE 'lookalike' END AS match_kind
  FROM watchlist_entries
 WHERE {_LIVE}
   AND %(skeleton)s LIKE replace(replace(ioc_plate_skeleton(pattern), '*', '%%'), '?', '_')
"""
_MATCHING_ORDER = "priority, (pattern = %(plate)s) DESC, added_at"


async def entries_matching(
    conn: AsyncConnection, plate: str, at: datetime, *, audit: AuditNote | None = None
) -> list[WatchlistMatch]:
    """"Is this vehicle wanted?": entries in force whose pattern matches ``plate`` exactly,
    as a wildcard, or with look-alike characters; highest priority first. With ``audit``,
    the check's audit row is written by the same statement."""
    text = normalise_query(plate)
    if has_wildcards(text):
        raise ValueError("check a plate, not a pattern")
    searchable_query(text)
    params = {"plate": text, "skeleton": plate_skeleton(text), "at": at}
    query: sql.Composable = sql.SQL(f"{_MATCHING} ORDER BY {_MATCHING_ORDER}")
    if audit is not None:
        query, params = audited(sql.SQL(_MATCHING), params, audit, order_by=sql.SQL(_MATCHING_ORDER))
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        rows = await cur.fetchall()
    return [WatchlistMatch(WatchlistEntry.model_validate(row), row["match_kind"]) for row in rows]
