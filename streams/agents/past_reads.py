"""Past-read matching: a watchlist entry new to the workers is searched in recent reads.

Every worker holds the whole watchlist table, and each version of an entry (what decides which reads
it matches: its pattern, expiry and active flag) is searched when the workers first see it in the
watchlist feed, however long after the entry was added: an entry whose pattern an officer corrects,
one switched back on, one whose publishing was lost and republished at the API's start-up, or one
added while the workers were down or behind, is searched as a new one is. A search records only the
reads no incident of the entry counted before (:func:`streams.watchlist_alerts.uncounted_hits`), so
it raises nothing already raised, however many workers search and however often.

Each version is searched twice: when it is first seen, and :data:`SEARCH_AGAIN_AFTER` later. Live
matching uses an index rebuilt at most every half second (``streams.tables.WatchlistIndex``), and a
read is matched before its transaction commits: a read matched just before the index held the entry
and committed just after the first search escaped both, a wanted vehicle never alerted. By the second
search the index holds the entry and such transactions have committed.

Twice in the whole cluster, not twice by each worker: a worker starting reads the whole feed again,
and with 10,000 entries and 4 workers a rolling restart made 80,000 searches of a day of reads that
raised nothing new. The searches made are kept in the database (:mod:`ioc.storage.past_read_searches`,
read for all the versions to search in one query a check), each counted in the transaction that makes
it, which holds the version's row: of workers making the same search at once, one makes it. One second
search covers every worker's race: it is made :data:`SEARCH_AGAIN_AFTER` after the first search
anywhere, by then every running worker has read the version from the feed (milliseconds) and its index
holds it (half a second), and a read any of them matched without it has committed (a batch's
transaction is far shorter), so the second search sees it. A worker that learns of the version later
was down or starting, and matches no read before it holds the whole feed (``streams.plate_read_sink``
waits for it): its reads are matched live with the entry in its index. Or its feed fell behind while
it went on matching reads (a leader change, a reconnect): a version its feed brings that late
(``streams.tables.LATE_AFTER_S``) it searches once more itself, whatever the database says. A worker
seeing a version replaced forgets its searches (an entry switched off and on again is the version it
was before, and the reads of while it was off are yet to be searched); retention deletes those
replaced while no worker ran.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from ioc import metrics
from ioc.schemas import Alert, PlateRead, WatchlistEntry, utcnow
from ioc.storage.past_read_searches import EntryVersion, claim_search, forget_searches, searches_made
from ioc.storage.plate_reads import recent_reads_matching
from ioc.watchlist_matcher import WatchlistMatcher
from streams.context import WorkerContext
from streams.sinks import write_batch
from streams.tables import WatchlistIndex
from streams.watchlist_alerts import record_hits, uncounted_hits

logger = logging.getLogger(__name__)

CHECK_EVERY_S = 2.0
RETRY_REFUSED_FOR = timedelta(minutes=10)  # a search the database refuses is tried again this long
MOST_READS = 10_000  # an entry's candidate reads searched at most (the newest; a broad pattern has more)
SEARCH_AGAIN_AFTER = timedelta(seconds=10)  # after the first search (far longer than a batch's transaction)


def entry_version(entry: WatchlistEntry) -> EntryVersion:
    return (entry.entry_id, entry.pattern, entry.expires_at, entry.active)


@dataclass(slots=True)
class _Searches:
    """What this worker knows of the searches of one version of an entry."""

    settled: bool = False  # both were made, by any worker
    refused_at: datetime | None = None  # the first the database refused since the last made


def register(ctx: WorkerContext, watchlist: WatchlistIndex) -> None:
    # the versions of the entries the feed holds now (no more: what an edit or a removal replaced
    # is forgotten), each from when this worker first saw it there
    searches: dict[EntryVersion, _Searches] = {}
    # versions this worker's feed brought late (``streams.tables.LATE_AFTER_S``): it searches them
    # once itself, whatever the other workers' searches, which may have come before its reads of
    # meanwhile were committed
    late: dict[EntryVersion, WatchlistEntry] = {}
    lookback = timedelta(hours=ctx.settings.past_read_hours)

    def searchable(entry: WatchlistEntry, searched: _Searches, now: datetime) -> bool:
        """Whether a search could find anything, and is not one the database kept refusing."""
        if not entry.active:
            return False
        if entry.expires_at is not None and entry.expires_at <= now - lookback:
            return False  # expired before the reads searched were captured: it matches none
        return searched.refused_at is None or now - searched.refused_at <= RETRY_REFUSED_FOR

    def unsettled(entry: WatchlistEntry, searched: _Searches, now: datetime) -> bool:
        """Whether a search may be due (the database knows which were made)."""
        return not searched.settled and searchable(entry, searched, now)

    @ctx.timer(CHECK_EVERY_S, name="past-read-matching")
    async def match_past_reads() -> None:
        if lookback <= timedelta(0):
            return
        now = utcnow()
        entries = {entry_version(entry): entry for entry in watchlist.entries()}
        late.update((entry_version(entry), entry) for entry in watchlist.take_late())
        for version in late.keys() - entries.keys():  # replaced meanwhile: the new version is searched
            del late[version]
        replaced = searches.keys() - entries.keys()
        versions = [version for version, entry in entries.items()
                    if unsettled(entry, searches.setdefault(version, _Searches()), now)]
        if not replaced and not versions and not late:
            return
        pool = await ctx.pool()
        async with pool.connection() as conn, conn.transaction():
            await forget_searches(conn, sorted(replaced, key=str))  # one lock order in every worker
            known = await searches_made(conn, versions, again_after=SEARCH_AGAIN_AFTER)
        for version in replaced:
            del searches[version]
        for version in versions:
            searched = known.get(version)
            if searched is not None and searched.made >= 2:
                searches[version].settled = True
            elif searched is None or searched.second_due:
                await _search(ctx, pool, entries[version], searches[version], now, lookback)
        for version, entry in list(late.items()):
            searched = searches[version]
            if searchable(entry, searched, now) and not await _search(ctx, pool, entry, searched, now,
                                                                      lookback, own=True):
                continue  # refused: tried again at the next checks, for a while
            del late[version]


async def _search(
    ctx: WorkerContext, pool: AsyncConnectionPool, entry: WatchlistEntry, searched: _Searches,
    now: datetime, lookback: timedelta, *, own: bool = False,
) -> bool:
    """Search the reads of the past ``lookback`` for ``entry``, unless another worker made this search
    (:func:`~ioc.storage.past_read_searches.claim_search`, in the transaction of the search), and
    publish the alerts it raised; ``own``: a search of this worker's, neither claimed nor counted.
    False where the database refused it."""
    to_publish: dict[uuid.UUID, Alert] = {}
    match_kinds: Counter[str] = Counter()  # of the transaction that committed
    made = False

    async def search(conn: AsyncConnection, rows: list) -> int:
        nonlocal made
        to_publish.clear()
        match_kinds.clear()
        made = own or await claim_search(conn, entry_version(entry), again_after=SEARCH_AGAIN_AFTER)
        if not made:
            return 0
        matcher = WatchlistMatcher([entry])
        reads: list[PlateRead] = await recent_reads_matching(conn, entry.pattern, now - lookback,
                                                             limit=MOST_READS)
        if len(reads) == MOST_READS:
            logger.warning("past-read matching for entry %s: only its newest %d candidate reads "
                           "searched", entry.entry_id, MOST_READS)
        hits = await uncounted_hits(conn, [
            (read, hit) for read in reads
            for hit in matcher.match(read.text, candidates=read.candidates, at=read.captured_at)])
        match_kinds.update(hit.match_kind for _, hit in hits)
        for alert in await record_hits(conn, hits, past_read=True):
            to_publish[alert.alert_id] = alert
        return len(reads)

    _, refused = await write_batch(pool, "alerts", search, [entry])
    if refused:  # searched again at the next checks, for a while: not lost unseen
        logger.error("past-read matching for entry %s refused by the database: %s", entry.entry_id,
                     refused[0])
        searched.refused_at = searched.refused_at or now
        return False
    searched.refused_at = None
    if not made:  # another worker made it
        return True
    await ctx.publish_alerts(list(to_publish.values()))
    for alert in to_publish.values():
        metrics.ALERTS_RAISED.labels(alert.alert_kind, alert.severity).inc()
    for match_kind, n in match_kinds.items():
        metrics.WATCHLIST_HITS.labels(match_kind).inc(n)
    if to_publish:  # a new deployment searches every entry: a line for each would be thousands
        logger.info("past-read matching for entry %s: %d alert(s)", entry.entry_id, len(to_publish))
    return True
