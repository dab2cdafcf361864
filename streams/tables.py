"""The watchlist as every worker sees it: the whole compacted watchlist topic.

The API writes an entry to PostgreSQL, then publishes it (key = entry_id, value =
WatchlistEntry JSON, null = removed) to the compacted topic. Each worker reads
the topic from the beginning with its own consumer (no group: every worker needs
every entry) into an in-memory table, and follows it, so changes take effect
within a second, without a restart.

Why not a Faust GlobalTable: its assignment never completed against the
embedded broker (Tansu 0.6) in our tests; a plain consumer is simpler and
behaves identically on real Kafka.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from pydantic import ValidationError

from ioc.config import Settings
from ioc.schemas import PlateRead, WatchlistEntry
from ioc.watchlist_matcher import Hit, WatchlistMatcher

logger = logging.getLogger(__name__)


# an entry this long older than the broker's timestamp of its message when it came, once the feed had
# caught up, reached this worker late (the feed behind: a leader change, a reconnect): reads matched
# meanwhile without it may be missed by the searches of past reads other workers made
# (streams.agents.past_reads), well inside their 10 s
LATE_AFTER_S = 5.0


class WatchlistFeed:
    """Entries by id, kept current from the compacted watchlist topic."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._entries: dict[bytes, WatchlistEntry] = {}
        self._late: list[WatchlistEntry] = []
        self.version = 0
        self.caught_up = asyncio.Event()

    def entries(self) -> list[WatchlistEntry]:
        return list(self._entries.values())

    def take_late(self) -> list[WatchlistEntry]:
        """The entries that came :data:`LATE_AFTER_S` or more after they were published, since the
        last call."""
        late, self._late = self._late, []
        return late

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        if key is None:
            return
        if value is None:
            self._entries.pop(key, None)
        else:
            try:
                self._entries[key] = WatchlistEntry.model_validate_json(value)
            except ValidationError as exc:
                logger.warning("ignoring malformed watchlist entry %r: %s", key, exc)
                return
        self.version += 1

    async def follow(self) -> None:
        """Read the topic from the beginning, then follow it until cancelled."""
        topic = self._settings.topics.watchlist
        # a log that went back (the broker lost it) is read again from the start
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.kafka_bootstrap, group_id=None, enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            partitions = consumer.partitions_for_topic(topic)
            while not partitions:
                await consumer._client.force_metadata_update()  # noqa: SLF001 - no public call
                partitions = consumer.partitions_for_topic(topic)
                await asyncio.sleep(0.5)
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            while True:
                batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
                for records in batch.values():
                    for record in records:
                        self.apply(record.key, record.value)
                        self._note_if_late(record.key, record.timestamp)
                if not self.caught_up.is_set() and await _read_to_the_end(consumer, tps):
                    logger.info("watchlist loaded: %d entries", len(self._entries))
                    self.caught_up.set()
                if not batch:
                    await _rewind_if_log_went_back(consumer, tps)
        finally:
            await consumer.stop()


    def _note_if_late(self, key: bytes | None, timestamp_ms: int | None) -> None:
        """Entries loaded at start-up are not late: no read is matched before the feed caught up."""
        entry = self._entries.get(key) if key is not None else None
        if entry is not None and timestamp_ms is not None and self.caught_up.is_set() \
                and time.time() - timestamp_ms / 1000 >= LATE_AFTER_S:
            self._late.append(entry)


async def _read_to_the_end(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> bool:
    """Whether every partition is read up to its end as the broker gives it now. Not "a poll came
    back empty": a first fetch slower than the poll's timeout gave the agents a watchlist with
    nothing in it, and the hits they missed were never raised. (Each entry is a batch of its own,
    whose end offset even Tansu gives right.)"""
    ends = await consumer.end_offsets(tps)
    positions = [await consumer.position(tp) for tp in tps]
    return all(position >= ends[tp] for position, tp in zip(positions, tps, strict=True))


async def _rewind_if_log_went_back(consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> None:
    """Read a partition again from the start when its log now ends before our position:
    the broker lost the topic and it was created again (``streams.broker_loss``
    republishes the entries). Kafka answers such a fetch with an out-of-range error
    (``auto_offset_reset`` handles it); Tansu answers with nothing, for ever."""
    for tp in tps:
        highwater = consumer.highwater(tp)
        if highwater is not None and highwater < await consumer.position(tp):
            logger.error("watchlist topic %s[%d] now ends at offset %d, before this worker's position: the "
                         "broker lost it; reading it again from the start", tp.topic, tp.partition, highwater)
            await consumer.seek_to_beginning(tp)


class WatchlistIndex:
    """A fuzzy matcher over the feed's entries, rebuilt when they change
    (at most every ``refresh_s``)."""

    def __init__(self, feed: WatchlistFeed, *, refresh_s: float = 0.5) -> None:
        self._feed = feed
        self._refresh_s = refresh_s
        self._matcher = WatchlistMatcher(())
        self._built = (-1, float("-inf"))  # (feed version, monotonic time)

    def entries(self) -> list[WatchlistEntry]:
        return self._feed.entries()

    async def ready(self) -> None:
        """Wait until the whole topic has been read once: no hit is missed at start-up."""
        await self._feed.caught_up.wait()

    def take_late(self) -> list[WatchlistEntry]:
        return self._feed.take_late()

    def matcher(self) -> WatchlistMatcher:
        version, built_at = self._built
        now = time.monotonic()
        if version != self._feed.version and now - built_at >= self._refresh_s:
            self._matcher = WatchlistMatcher(self._feed.entries())
            self._built = (self._feed.version, now)
        return self._matcher

    def matches(self, read: PlateRead) -> list[Hit]:
        return self.matcher().match(read.text, candidates=read.candidates, at=read.captured_at)
