"""What the API tells the stream side: watchlist changes and alert status changes.

Both are published after the database commit (the database is the source of
truth). Watchlist changes go to the compacted watchlist topic (key = entry_id;
an inactive entry is a tombstone), so every worker sees them within seconds. If
the broker is unreachable the request still succeeds; the publisher remembers
since when it is behind and republishes everything changed since then once the
broker is back (``ioc_watchlist_publish_behind_seconds``: how long the oldest change has
waited). An alert change is queued in the database's outbox by the transaction that
commits it: one this process could not publish is published by the workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaProducer
from psycopg_pool import AsyncConnectionPool

from ioc import metrics
from ioc.config import Settings
from ioc.schemas import Alert, WatchlistEntry
from ioc.storage.alert_outbox import mark_published
from ioc.storage.watchlist import entries_changed_since
from ioc.watchlist_sync import publish_as_stored

logger = logging.getLogger(__name__)

__all__ = ["EventPublisher"]

RESYNC_EVERY_S = 5.0
# republished after a start: a change committed by a process that stopped before it could
# publish it (a crash between the two, or Kafka down until the process was replaced)
RESYNC_ON_START = timedelta(hours=24)
_CLOCK_MARGIN = timedelta(minutes=1)  # API and database clocks may differ a little


class EventPublisher:
    def __init__(self, settings: Settings, pool: AsyncConnectionPool) -> None:
        self._settings = settings
        self._pool = pool
        self._producer: AIOKafkaProducer | None = None
        self._behind_since: datetime | None = None
        # since when (monotonic) the oldest change not yet published has waited: one waiting for the
        # next resync, and one that the running resync publishes (None: nothing of the kind)
        self._waiting_since: float | None = None
        self._resyncing_since: float | None = None
        self._task: asyncio.Task | None = None
        self._resync_now = asyncio.Event()

    @property
    def connected(self) -> bool:
        return self._producer is not None

    async def start(self) -> None:
        """Connect now if the broker answers; otherwise keep trying in the background
        (plate look-ups must not wait for Kafka). The last :data:`RESYNC_ON_START` of watchlist
        changes are published again in the background: where a change's publish was lost with the
        process that committed it, the workers would never learn of it."""
        if not self._settings.kafka_bootstrap:
            logger.warning("IOC_KAFKA_BOOTSTRAP unset: watchlist and alert changes are not published")
            return
        self._behind_since = datetime.now(UTC) - RESYNC_ON_START
        self._waiting_since = time.monotonic()
        metrics.WATCHLIST_PUBLISH_BEHIND.set_function(self.behind_seconds)
        await self._connect()
        self._task = asyncio.create_task(self._run(), name="kafka-publisher")

    async def _connect(self) -> bool:
        producer = AIOKafkaProducer(
            bootstrap_servers=self._settings.kafka_bootstrap, linger_ms=0, acks="all",
            request_timeout_ms=10_000,
        )
        try:
            await producer.start()
        except Exception as exc:
            logger.warning("Kafka producer not connected (%s); retrying", exc)
            await producer.stop()
            return False
        self._producer = producer
        return True

    def behind_seconds(self) -> float:
        """Seconds since the oldest watchlist change this process has not yet published (its start-up
        resync counts as one); 0 when it has published them all. Read by the metrics thread."""
        waiting = [t for t in (self._waiting_since, self._resyncing_since) if t is not None]
        return time.monotonic() - min(waiting) if waiting else 0.0

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._producer is not None:
            await self._producer.stop()

    async def watchlist_changed(self, entries: Iterable[WatchlistEntry]) -> bool:
        """Publish committed entries as the database holds them now (``publish_as_stored``); False
        (and a later resync) if the broker or the database did not let them through."""
        started = datetime.now(UTC)
        if self._producer is None:
            if self._settings.kafka_bootstrap:
                self._behind(started)
            return False
        try:
            async with self._pool.connection() as conn:
                await publish_as_stored(conn, self._producer, self._settings.topics.watchlist,
                                        [entry.entry_id for entry in entries])  # fmt: skip
        except Exception:
            logger.exception("watchlist change not published; will resync")
            self._behind(started)
            return False
        return True

    def publish_soon(self, since: datetime) -> None:
        """Have the background task publish every entry changed since ``since`` now, not in the
        request: a CSV import's thousands of entries take one produce round trip each
        (``ioc.watchlist_sync.publish_entries``), about 7 s for 10,000 here, more where the broker
        is farther away. The request's answer never promised the workers had the change: a
        failed publish is resynced the same way."""
        self._resync_from(since)
        self._resync_now.set()

    async def alert_changed(self, alert: Alert) -> bool:
        """Publish an alert's new state so every operator page (any API process) sees it, then take
        it off the outbox. Not retried here: a change not published (no broker, or this process
        stopped first) stays queued, and the workers publish it (``streams.agents.alert_outbox``)."""
        if self._producer is None:
            return False
        try:
            await self._producer.send_and_wait(
                self._settings.topics.alerts, alert.to_json(), key=alert.subject.encode())
        except Exception:
            logger.exception("alert %s status change not published", alert.alert_id)
            return False
        metrics.MESSAGES_PRODUCED.labels(self._settings.topics.alerts).inc()
        await mark_published(self._pool, [alert])
        return True

    def _behind(self, since: datetime) -> None:
        metrics.WATCHLIST_PUBLISH_FAILURES.inc()
        self._resync_from(since)

    def _resync_from(self, since: datetime) -> None:
        since -= _CLOCK_MARGIN
        if self._behind_since is None or since < self._behind_since:
            self._behind_since = since
        if self._waiting_since is None:
            self._waiting_since = time.monotonic()

    async def _run(self) -> None:
        while self._producer is None:
            await asyncio.sleep(RESYNC_EVERY_S)
            await self._connect()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._resync_now.wait(), RESYNC_EVERY_S)
            self._resync_now.clear()
            if self._behind_since is None or self._producer is None:
                continue
            # taken, not read: a change asked for while this resync runs (an import committed meanwhile,
            # later than ``since``) is left for the next one, not cleared with this one's
            since, self._behind_since = self._behind_since, None
            self._resyncing_since, self._waiting_since = self._waiting_since, None
            try:
                async with self._pool.connection() as conn:
                    changed = [entry.entry_id for entry in await entries_changed_since(conn, since)]
                    published = await publish_as_stored(conn, self._producer, self._settings.topics.watchlist,
                                                        changed)  # fmt: skip
            except Exception:
                logger.warning("watchlist resync failed; retrying in %.0fs", RESYNC_EVERY_S)
                metrics.WATCHLIST_PUBLISH_FAILURES.inc()
                self._behind_since = since if self._behind_since is None else min(since, self._behind_since)
                self._waiting_since = self._resyncing_since  # older than any change noted meanwhile
                self._resyncing_since = None
                continue
            self._resyncing_since = None
            logger.info("watchlist resync published %d entries", published)
