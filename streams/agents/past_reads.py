"""Past-read matching: a newly added watchlist entry is searched in recent reads.

Every worker holds the whole watchlist table; each checks the entries it has
not seen yet and that were added recently. Alert ids are deterministic, so two
workers (or a restart) finding the same past read raise one incident.

Each entry is searched twice: when it is first seen, and :data:`SEARCH_AGAIN_AFTER` later.
Live matching uses an index rebuilt at most every half second (``streams.tables.WatchlistIndex``),
and a read is matched before its transaction commits: a read matched just before the index held
the entry and committed just after the first search escaped both, a wanted vehicle never alerted.
By the second search the index holds the entry and such transactions have committed.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from datetime import datetime, timedelta

from psycopg import AsyncConnection

from ioc import metrics
from ioc.schemas import Alert, PlateRead, WatchlistEntry, utcnow
from ioc.storage.plate_reads import recent_reads_matching
from ioc.watchlist_matcher import WatchlistMatcher
from streams.context import WorkerContext
from streams.sinks import write_batch
from streams.tables import WatchlistIndex
from streams.watchlist_alerts import record_hits

logger = logging.getLogger(__name__)

CHECK_EVERY_S = 2.0
FRESH_ENTRY = timedelta(minutes=10)  # older entries were searched when they were added
MOST_READS = 10_000  # an entry's candidate reads searched at most (the newest; a broad pattern has more)
SEARCH_AGAIN_AFTER = timedelta(seconds=10)  # after the first search (far longer than a batch's transaction)


def register(ctx: WorkerContext, watchlist: WatchlistIndex) -> None:
    searched_once: dict[tuple[uuid.UUID, datetime], datetime] = {}  # -> when
    searched_twice: set[tuple[uuid.UUID, datetime]] = set()
    lookback = timedelta(hours=ctx.settings.past_read_hours)

    def due(entry: WatchlistEntry, now: datetime) -> bool:
        key = (entry.entry_id, entry.added_at)
        if not entry.active or key in searched_twice:
            return False
        first = searched_once.get(key)
        return now - entry.added_at <= FRESH_ENTRY if first is None else now - first >= SEARCH_AGAIN_AFTER

    @ctx.timer(CHECK_EVERY_S, name="past-read-matching")
    async def match_past_reads() -> None:
        now = utcnow()
        fresh = [e for e in watchlist.entries() if due(e, now)]
        if not fresh or lookback <= timedelta(0):
            return
        pool = await ctx.pool()
        for entry in fresh:
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
                hits = [(read, hit) for read in reads
                        for hit in matcher.match(read.text, candidates=read.candidates, at=read.captured_at)]
                match_kinds.clear()
                match_kinds.update(hit.match_kind for _, hit in hits)
                for alert in await record_hits(conn, hits, past_read=True):
                    to_publish[alert.alert_id] = alert
                return len(reads)

            _, refused = await write_batch(pool, "alerts", search, [entry])
            if refused:  # searched again at the next check, while the entry is fresh: not lost unseen
                logger.error("past-read matching for entry %s refused by the database: %s", entry.entry_id,
                             refused[0])
                continue
            key = (entry.entry_id, entry.added_at)
            if searched_once.pop(key, None) is None:
                searched_once[key] = now
            else:
                searched_twice.add(key)
            await ctx.send_many(ctx.topics.alerts, [(alert.subject, alert) for alert in to_publish.values()])
            for alert in to_publish.values():
                metrics.ALERTS_RAISED.labels(alert.alert_kind, alert.severity).inc()
            for match_kind, n in match_kinds.items():
                metrics.WATCHLIST_HITS.labels(match_kind).inc(n)
            logger.info("past-read matching for entry %s: %d alert(s)", entry.entry_id, len(to_publish))
