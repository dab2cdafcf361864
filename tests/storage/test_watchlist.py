"""Watchlist entries: add (idempotent), update, expire, list, and "is this vehicle wanted?"."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from psycopg import AsyncConnection

from ioc.schemas import WatchlistEntry
from ioc.storage.watchlist import (
    active_entries,
    add_entry,
    entries_changed_since,
    entries_matching,
    expire_entry,
    get_entries,
    get_entry,
    import_entries,
    list_entries,
    update_entry,
)


async def test_add_update_expire(conn: AsyncConnection, now: datetime) -> None:
    entry = WatchlistEntry(pattern="30a-123.45", reason="stolen", priority=1, added_by="sup1", added_at=now)
    assert await add_entry(conn, entry) is True
    assert await add_entry(conn, entry) is False
    stored = await get_entry(conn, entry.entry_id)
    assert stored is not None and stored.pattern == "30A12345" and stored.added_by == "sup1"

    edited = stored.model_copy(update={"priority": 3, "reason": "found?"})
    changed = await update_entry(conn, edited, actor="op2")
    assert changed is not None and (changed.priority, changed.reason) == (3, "found?")
    assert changed.added_by == "sup1"
    assert await update_entry(conn, WatchlistEntry(pattern="99A99999", reason="x"), actor="op2") is None

    expired = await expire_entry(conn, entry.entry_id, actor="op2", at=now)
    assert expired is not None and not expired.active and expired.expires_at == now
    assert await active_entries(conn, now - timedelta(minutes=1)) == []
    assert await list_entries(conn) == []
    assert [e.entry_id for e in await list_entries(conn, include_inactive=True)] == [entry.entry_id]


async def test_import_adds_and_replaces_in_the_given_order(conn: AsyncConnection, now: datetime) -> None:
    """As if each entry were added, or updated where its id is stored, one after another: a second
    row with a new entry's id replaces what the first added."""
    kept = WatchlistEntry(pattern="30A12345", reason="stolen", priority=1, added_by="sup1", added_at=now)
    await add_entry(conn, kept)
    fresh = WatchlistEntry(pattern="51f-869.88", reason="new", added_by="op2", added_at=now)
    fleet = WatchlistEntry(pattern="29A*", reason="fleet", added_at=now)
    rows = [kept.model_copy(update={"reason": "recovered", "active": False, "added_by": "op2"}), fresh,
            fresh.model_copy(update={"priority": 4}), fleet]
    stored = await import_entries(conn, rows, actor="op2")
    assert [(e.entry_id, e.pattern, e.reason, e.priority, new) for e, new in stored] == [
        (kept.entry_id, "30A12345", "recovered", 1, False), (fresh.entry_id, "51F86988", "new", 2, True),
        (fresh.entry_id, "51F86988", "new", 4, False), (fleet.entry_id, "29A*", "fleet", 2, True)]
    assert stored[0][0].added_by == "sup1" and not stored[0][0].active  # who added it stays
    found = await get_entries(conn, [kept.entry_id, fresh.entry_id, fleet.entry_id])
    assert {e.entry_id: e for e in found} == {e.entry_id: e for e, _ in stored}  # the last of each id
    assert await import_entries(conn, [], actor="op2") == []


async def test_active_entries_respect_expiry(conn: AsyncConnection, now: datetime) -> None:
    lasting = WatchlistEntry(pattern="51F86988", reason="a", priority=2, added_at=now)
    ending = WatchlistEntry(pattern="51F86989", reason="b", priority=1, expires_at=now + timedelta(hours=1),
                            added_at=now)
    for entry in (lasting, ending):
        await add_entry(conn, entry)
    assert [e.entry_id for e in await active_entries(conn, now)] == [ending.entry_id, lasting.entry_id]
    assert [e.entry_id for e in await active_entries(conn, now + timedelta(hours=2))] == [lasting.entry_id]
    await conn.commit()
    changed = await entries_changed_since(conn, now - timedelta(days=1))
    assert {e.entry_id for e in changed} == {lasting.entry_id, ending.entry_id}


async def test_is_this_vehicle_wanted(conn: AsyncConnection, now: datetime) -> None:
    exact = WatchlistEntry(pattern="30A12345", reason="stolen", priority=2, added_at=now)
    partial = WatchlistEntry(pattern="30A12*", reason="partial from witness", priority=1, added_at=now)
    other = WatchlistEntry(pattern="51F*", reason="other", priority=1, added_at=now)
    for entry in (exact, partial, other):
        await add_entry(conn, entry)
    hits = await entries_matching(conn, "30A-123.45", now)
    assert [(h.entry.entry_id, h.match_kind) for h in hits] == [
        (partial.entry_id, "pattern"), (exact.entry_id, "exact")]
    lookalike = await entries_matching(conn, "3OA1Z345", now)
    assert {(h.entry.entry_id, h.match_kind) for h in lookalike} == {
        (partial.entry_id, "lookalike"), (exact.entry_id, "lookalike")}
    assert await entries_matching(conn, "29A12345", now) == []
    with pytest.raises(ValueError):
        await entries_matching(conn, "30A*", now)


async def test_pattern_must_name_some_characters(conn: AsyncConnection) -> None:
    with pytest.raises(ValueError):
        await add_entry(conn, WatchlistEntry(pattern="*-*", reason="everything"))


async def test_a_pattern_with_d_stroke_is_stored_and_matched_as_plates_are(
    conn: AsyncConnection, now: datetime
) -> None:
    """Stored reads fold Đ to D (detectors.plate_format.canonical); patterns and checks must too."""
    entry = WatchlistEntry(pattern="29-MĐ1 013.53", reason="stolen", priority=1, added_at=now)
    await add_entry(conn, entry)
    stored = await get_entry(conn, entry.entry_id)
    assert stored is not None and stored.pattern == "29MD101353"
    for plate in ("29MD101353", "29MĐ101353", "29mđ101353"):
        hits = await entries_matching(conn, plate, now)
        assert [(h.entry.entry_id, h.match_kind) for h in hits] == [(entry.entry_id, "exact")]
    partial = WatchlistEntry(pattern="29MĐ1*", reason="partial", priority=2, added_at=now)
    await add_entry(conn, partial)
    hits = await entries_matching(conn, "29MD101353", now)
    assert [(h.entry.entry_id, h.match_kind) for h in hits] == [
        (entry.entry_id, "exact"), (partial.entry_id, "pattern")]
