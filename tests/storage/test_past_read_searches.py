"""The searches of past reads made for each watchlist entry version: counted once each, at most two,
the second only once its time has come; of workers making the same search at once, one makes it;
replaced versions are forgotten."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from psycopg import AsyncConnection

from ioc.schemas import WatchlistEntry
from ioc.storage.database import connect
from ioc.storage.past_read_searches import (
    EntryVersion,
    Searches,
    claim_search,
    forget_replaced_searches,
    forget_searches,
    searches_made,
)
from ioc.storage.watchlist import add_entry

NOW_AGAIN = timedelta(0)  # the second search due as soon as the first is made
LATER = timedelta(hours=1)


def _version(entry: WatchlistEntry) -> EntryVersion:
    return (entry.entry_id, entry.pattern, entry.expires_at, entry.active)


async def test_a_version_is_searched_twice_the_second_time_once_it_is_due(
    conn: AsyncConnection, now: datetime
) -> None:
    entry = WatchlistEntry(pattern="30A12345", reason="stolen")
    version, switched_off = _version(entry), _version(entry.model_copy(update={"active": False}))
    expiring = _version(entry.model_copy(update={"expires_at": now}))
    assert await searches_made(conn, [version, expiring], again_after=NOW_AGAIN) == {}

    assert await claim_search(conn, version, again_after=LATER)
    assert await claim_search(conn, expiring, again_after=LATER)
    await conn.commit()
    assert not await claim_search(conn, version, again_after=LATER)  # the second is not due yet
    assert await searches_made(conn, [version, switched_off], again_after=LATER) == {
        version: Searches(made=1, second_due=False)}
    assert await searches_made(conn, [version], again_after=NOW_AGAIN) == {
        version: Searches(made=1, second_due=True)}

    assert await claim_search(conn, version, again_after=NOW_AGAIN)
    await conn.commit()
    assert not await claim_search(conn, version, again_after=NOW_AGAIN)  # no third
    assert await searches_made(conn, [version, expiring, switched_off], again_after=LATER) == {
        version: Searches(made=2, second_due=False), expiring: Searches(made=1, second_due=False)}

    await forget_searches(conn, [version, switched_off])
    assert await searches_made(conn, [version, expiring], again_after=LATER) == {
        expiring: Searches(made=1, second_due=False)}


async def test_of_two_workers_making_the_same_search_at_once_one_makes_it(
    conn: AsyncConnection, migrated_url: str
) -> None:
    version = _version(WatchlistEntry(pattern="30A12345", reason="stolen"))
    assert await claim_search(conn, version, again_after=NOW_AGAIN)  # searching, not committed yet
    async with await connect(migrated_url) as other:
        waiting = asyncio.create_task(claim_search(other, version, again_after=LATER))
        await asyncio.sleep(0.3)
        assert not waiting.done()  # waits for the search in progress
        await conn.commit()
        assert await waiting is False  # then finds it made
        await other.rollback()
        # a search rolled back (refused) was not made: the next worker makes it
        assert await claim_search(other, version, again_after=NOW_AGAIN)
        await other.rollback()
    assert await searches_made(conn, [version], again_after=LATER) == {version: Searches(1, False)}


async def test_retention_forgets_versions_no_entry_has_and_those_expired_before_the_reads_kept(
    conn: AsyncConnection, now: datetime
) -> None:
    current = WatchlistEntry(pattern="30A12345", reason="stolen", added_at=now)
    expired = WatchlistEntry(pattern="30A99999", reason="stolen", added_at=now - timedelta(days=60),
                             expires_at=now - timedelta(days=40))
    for entry in (current, expired):
        await add_entry(conn, entry)
    corrected = _version(current.model_copy(update={"pattern": "30A12354"}))  # the typo, replaced
    removed = _version(WatchlistEntry(pattern="51F11111", reason="gone"))
    for version in (_version(current), _version(expired), corrected, removed):
        assert await claim_search(conn, version, again_after=NOW_AGAIN)
    assert await forget_replaced_searches(conn, now - timedelta(days=30)) == 3
    assert await forget_replaced_searches(conn, now - timedelta(days=30)) == 0
    cur = await conn.execute("SELECT entry_id, pattern FROM past_read_searches")
    assert await cur.fetchall() == [(current.entry_id, current.pattern)]
