"""Past-read matching: a watchlist entry new to this worker is searched in recent reads.

Every worker holds the whole watchlist table, and searches each version of an entry (what
decides which reads it matches: its pattern, expiry and active flag) when it first sees it in
the watchlist feed, however long after the entry was added: an entry whose pattern an officer
corrects, one switched back on, one whose publishing was lost and republished at the API's
start-up, or one added while the workers were down or behind, is searched as a new one is. A
worker starting reads the whole feed again, so it searches every active entry again: a search
records only the reads no incident of the entry counted before
(:func:`streams.watchlist_alerts.uncounted_hits`), so it raises nothing already raised, however
many workers search and however often.

Each version is searched twice: when it is first seen, and :data:`SEARCH_AGAIN_AFTER` later.
Live matching uses an index rebuilt at most every half second (``streams.tables.WatchlistIndex``),
and a read is matched before its transaction commits: a read matched just before the index held
the entry and committed just after the first search escaped both, a wanted vehicle never alerted.
By the second search the index holds the entry and such transactions have committed.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from psycopg import AsyncConnection

from ioc import metrics
from ioc.schemas import Alert, PlateRead, WatchlistEntry, utcnow
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

# what decides which reads an entry matches: (entry_id, pattern, expires_at, active)
EntryVersion = tuple[uuid.UUID, str, datetime | None, bool]


def entry_version(entry: WatchlistEntry) -> EntryVersion:
    return (entry.entry_id, entry.pattern, entry.expires_at, entry.active)


@dataclass(slots=True)
class _Searches:
    """The searches of one version of an entry on this worker."""

    made: int = 0
    first_at: datetime | None = None  # when the first was made
    refused_at: datetime | None = None  # the first the database refused since the last made


def register(ctx: WorkerContext, watchlist: WatchlistIndex) -> None:
    # the versions of the entries the feed holds now (no more: what an edit or a removal replaced
    # is forgotten), each from when this worker first saw it there
    searches: dict[EntryVersion, _Searches] = {}
    lookback = timedelta(hours=ctx.settings.past_read_hours)

    def due(entry: WatchlistEntry, searched: _Searches, now: datetime) -> bool:
        if not entry.active or searched.made >= 2:
            return False
        if entry.expires_at is not None and entry.expires_at <= now - lookback:
            return False  # expired before the reads searched were captured: it matches none
        if searched.refused_at is not None and now - searched.refused_at > RETRY_REFUSED_FOR:
            return False
        return searched.first_at is None or now - searched.first_at >= SEARCH_AGAIN_AFTER

    @ctx.timer(CHECK_EVERY_S, name="past-read-matching")
    async def match_past_reads() -> None:
        now = utcnow()
        entries = {entry_version(entry): entry for entry in watchlist.entries()}
        for replaced in searches.keys() - entries.keys():
            del searches[replaced]
        fresh = [(entry, searched) for version, entry in entries.items()
                 if due(entry, searched := searches.setdefault(version, _Searches()), now)]
        if not fresh or lookback <= timedelta(0):
            return
        pool = await ctx.pool()
        for entry, searched in fresh:
            to_publish: dict[uuid.UUID, Alert] = {}
            match_kinds: Counter[str] = Counter()  # of the transaction that committed

            async def search(conn: AsyncConnection, rows: list, entry=entry, to_publish=to_publish,  # noqa: ANN001
                             match_kinds=match_kinds) -> int:
                matcher = WatchlistMatcher([entry])
                reads: list[PlateRead] = await recent_reads_matching(conn, entry.pattern, now - lookback,
                                                                     limit=MOST_READS)
                if len(reads) == MOST_READS:
                    logger.warning("past-read matching for entry %s: only its newest %d candidate reads "
                                   "searched", entry.entry_id, MOST_READS)
                hits = await uncounted_hits(conn, [
                    (read, hit) for read in reads
                    for hit in matcher.match(read.text, candidates=read.candidates, at=read.captured_at)])
                match_kinds.clear()
                match_kinds.update(hit.match_kind for _, hit in hits)
                for alert in await record_hits(conn, hits, past_read=True):
                    to_publish[alert.alert_id] = alert
                return len(reads)

            _, refused = await write_batch(pool, "alerts", search, [entry])
            if refused:  # searched again at the next checks, for a while: not lost unseen
                logger.error("past-read matching for entry %s refused by the database: %s", entry.entry_id,
                             refused[0])
                searched.refused_at = searched.refused_at or now
                continue
            searched.made += 1
            searched.first_at, searched.refused_at = searched.first_at or now, None
            await ctx.send_many(ctx.topics.alerts, [(alert.subject, alert) for alert in to_publish.values()])
            for alert in to_publish.values():
                metrics.ALERTS_RAISED.labels(alert.alert_kind, alert.severity).inc()
            for match_kind, n in match_kinds.items():
                metrics.WATCHLIST_HITS.labels(match_kind).inc(n)
            if to_publish:  # a worker starting searches every entry: a line for each would be thousands
                logger.info("past-read matching for entry %s: %d alert(s)", entry.entry_id, len(to_publish))
