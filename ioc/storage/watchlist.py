"""Watchlist entries: the database is the source of truth; the API publishes each
committed change to the compacted topic the stream workers read."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from psycopg import AsyncConnection, sql
from psycopg.rows import class_row, dict_row

from ioc.schemas import WatchlistEntry
from ioc.storage.audit import AuditNote, audited
from ioc.storage.plate_text import has_wildcards, normalise_query, plate_skeleton, searchable_query

__all__ = [
    "WatchlistMatch",
    "active_entries",
    "add_entry",
    "entries_changed_since",
    "entries_matching",
    "expire_entry",
    "get_entry",
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
        [e.entry_id, e.pattern, e.reason, e.priority, e.expires_at, e.added_by, e.added_at, e.active,
         e.added_by],
    )
    return cur.rowcount == 1


async def update_entry(conn: AsyncConnection, entry: WatchlistEntry, *, actor: str) -> WatchlistEntry | None:
    """Replace an entry's pattern, reason, priority, expiry and active flag (keeping who
    added it and when); ``None`` if there is no such entry."""
    e = normalised_entry(entry)
    async with conn.cursor(row_factory=class_row(WatchlistEntry)) as cur:
        await cur.execute(
            "UPDATE watchlist_entries SET pattern = %s, reason = %s, priority = %s, expires_at = %s,"
            " active = %s, updated_by = %s, updated_at = now()"
            f" WHERE entry_id = %s RETURNING {_COLUMNS}",
            [e.pattern, e.reason, e.priority, e.expires_at, e.active, actor, e.entry_id],
        )
        return await cur.fetchone()


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


async def lock_for_publishing(conn: AsyncConnection, entry_id: uuid.UUID) -> None:
    """Serialise publishing the entry until the transaction ends (not its changes: an edit is not
    held up by a slow broker). See :func:`ioc.watchlist_sync.publish_as_stored`."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                       [f"watchlist-publish:{entry_id}"])


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
