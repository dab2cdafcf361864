"""The searches of past reads made for each version of a watchlist entry, by any worker.

Past-read matching (``streams.agents.past_reads``) searches each version of an entry twice, and
every worker sees every version, again whenever it starts: remembered here, a version is searched
twice in all, not twice by each worker at each start. A search is counted in the transaction that
makes it, so a search the database refuses is not counted.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg import AsyncConnection

__all__ = ["EntryVersion", "Searches", "claim_search", "forget_replaced_searches", "forget_searches",
           "searches_made"]

# what decides which reads an entry matches: (entry_id, pattern, expires_at, active)
EntryVersion = tuple[uuid.UUID, str, datetime | None, bool]

# the versions given, as a table to join (a NULL expiry is a version's too: IS NOT DISTINCT FROM)
_GIVEN = ("unnest(%s::uuid[], %s::text[], %s::timestamptz[], %s::boolean[])"
          " AS v(entry_id, pattern, expires_at, active)")
_SAME_VERSION = """s.entry_id = v.entry_id AND s.pattern = v.pattern AND s.active = v.active
               AND s.expires_at IS NOT DISTINCT FROM v.expires_at"""


@dataclass(frozen=True, slots=True)
class Searches:
    """The searches made of one version."""

    made: int  # 1 or 2
    second_due: bool  # the time between the first and the second has passed (the database's clock)


def _columns(versions: Collection[EntryVersion]) -> list[list]:
    return [list(column) for column in zip(*versions, strict=True)]


async def searches_made(
    conn: AsyncConnection, versions: Collection[EntryVersion], *, again_after: timedelta
) -> dict[EntryVersion, Searches]:
    """The searches made of those of ``versions`` searched before, in one statement however many
    (a worker starting asks for every entry's)."""
    if not versions:
        return {}
    cur = await conn.execute(
        f"""SELECT s.entry_id, s.pattern, s.expires_at, s.active, s.searches, now() - s.first_at >= %s
              FROM {_GIVEN} JOIN past_read_searches AS s ON {_SAME_VERSION}""",
        [again_after, *_columns(versions)])
    return {(entry_id, pattern, expires_at, active): Searches(made, due)
            for entry_id, pattern, expires_at, active, made, due in await cur.fetchall()}


async def claim_search(conn: AsyncConnection, version: EntryVersion, *, again_after: timedelta) -> bool:
    """Count a search of ``version`` that this transaction is about to make; False where it is not to be
    made: both were made, or the first less than ``again_after`` ago. The version's row stays locked
    until the transaction ends: a worker about to make the same search waits, then finds it made (or
    makes it, where this transaction was rolled back)."""
    entry_id, pattern, expires_at, active = version
    cur = await conn.execute(
        """INSERT INTO past_read_searches AS s (entry_id, pattern, expires_at, active, searches)
           VALUES (%s, %s, %s, %s, 1)
           ON CONFLICT (entry_id, pattern, expires_at, active) DO UPDATE SET searches = 2
           WHERE s.searches = 1 AND now() - s.first_at >= %s""",
        [entry_id, pattern, expires_at, active, again_after])
    return cur.rowcount == 1


async def forget_searches(conn: AsyncConnection, versions: Collection[EntryVersion]) -> None:
    """Forget the searches of versions replaced: an entry switched off and on again is the version it
    was, and the reads of while it was off are still to be searched."""
    if versions:
        await conn.execute(f"DELETE FROM past_read_searches AS s USING {_GIVEN} WHERE {_SAME_VERSION}",
                           _columns(versions))


async def forget_replaced_searches(conn: AsyncConnection, expired_before: datetime) -> int:
    """Delete the searches of versions no entry has now (replaced while no worker ran), and of those
    that expired before ``expired_before`` (the reads they could match are gone); returns how many."""
    cur = await conn.execute(
        f"""DELETE FROM past_read_searches AS s
             WHERE s.expires_at < %s
                OR NOT EXISTS (SELECT FROM watchlist_entries AS v WHERE {_SAME_VERSION})""",
        [expired_before])
    return cur.rowcount
