"""Notice that the broker lost data, say what was lost, and put the topics back.

The memory-only dev broker (Tansu) forgets everything when it restarts, and a Kafka
cluster rebuilt empty does the same. Consumers do not notice: the group simply
starts again from the new, empty logs, and messages nobody had processed are gone
without a word. Three signs are checked every second:

- A topic of ours is missing: it is created again with its partitions (as
  ``ioc`` would at setup), and a recreated watchlist topic gets the active entries
  from the database (the source of truth), so workers started later still match.
  A source topic a client auto-created first has too few partitions; that is
  reported. A watchlist topic found while others are missing, or with other than its
  one partition, was auto-created by a client since (a consumer's metadata request
  is enough): it is replaced and refilled.
- A source partition's highwater fell below the highest this worker had seen: the
  log went back. Messages an agent's stream had pulled in are still processed (they
  are in memory); the ones past them that never reached an agent's queue are gone:
  each such partition is logged at ERROR with its offsets, and the count goes to
  ``ioc_broker_data_lost_messages_total{topic}``. Messages waiting in an agent's
  queue are undecided: processed if the agent reaches them first, dropped if the
  rebalance that follows a broker's loss clears the queues first. They are
  counted when their fate is known (every check, and at each revocation).
  What the agents still hold of a lost log is never acknowledged: its offsets,
  committed into the new log, would skip the new messages below them.
- A source partition's consumer waits past its log's end: the log went back under an
  offset committed in the old one (by a worker that had not noticed the loss yet, or
  before a restart). Kafka answers out-of-range and the consumer resets; Tansu
  answers nothing, for ever. The partition is read again from what this worker has
  taken in of the new log, or from its start.

Highwaters come from the consumer's fetches (exact on Tansu, whose ListOffsets is
not). The count is a lower bound: messages sent after the worker's last fetch, or
a new log that outgrows the old one within a second, cannot be seen from here.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from weakref import WeakSet

import faust
from aiokafka import AIOKafkaProducer
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import IllegalStateError, KafkaError
from faust.exceptions import ConsumerNotStarted
from faust.types import TP, EventT, Message, StreamT

from ioc import metrics
from ioc.schemas import utcnow
from ioc.storage.watchlist import active_entries
from ioc.watchlist_sync import publish_as_stored
from streams.context import WorkerContext
from streams.topics import create_topics, topic_specs

logger = logging.getLogger(__name__)

__all__ = ["BrokerWatch", "register"]

CHECK_EVERY_S = 1.0


class Intake(faust.Sensor):
    """Where each partition's streams have got to, and what is in flight.

    ``pulled``: the offset after the last message an agent's stream pulled in (from
    there on a message is processed even if its partition is revoked; before, a
    rebalance drops it). Messages in flight when their partition is revoked have
    their acknowledgement dropped (:meth:`drop_acks`): the partition's next owner
    (this worker again, perhaps) starts from the committed offset anyway, so the ack
    would only save a replay, and after a broker lost its data it would commit an
    offset of the old log into the new one, where it skips new messages.
    """

    def __init__(self) -> None:
        super().__init__()
        self.pulled: dict[tuple[str, int], int] = {}
        self._in_flight: dict[TP, WeakSet[Message]] = defaultdict(WeakSet)

    def on_stream_event_in(self, tp: TP, offset: int, stream: StreamT, event: EventT) -> None:
        if event.message.acked:  # of a lost log (:meth:`log_lost`): not an offset of the partition's log
            return
        key = (tp.topic, tp.partition)
        if offset >= self.pulled.get(key, 0):
            self.pulled[key] = offset + 1
        self._in_flight[tp].add(event.message)

    def drop_acks(self, revoked: Iterable[TP]) -> int:
        """Mark the unacknowledged messages of ``revoked`` partitions as acknowledged
        without telling the consumer, so their offsets are never committed."""
        dropped = 0
        for tp in revoked:
            for message in list(self._in_flight.pop(tp, ())):
                if not message.acked:
                    message.acked = True
                    dropped += 1
        return dropped

    def drop_all_acks(self) -> int:
        """:meth:`drop_acks` for every partition: at shutdown, Faust acknowledges the messages
        its stopping agents had taken, finished or not, and the consumer commits them."""
        return self.drop_acks(list(self._in_flight))

    def log_lost(self, tp: TP, queued: Iterable[Message]) -> None:
        """The broker lost ``tp``'s log: the messages of it in flight or ``queued`` for the
        agents are still processed, never acknowledged, and intake counts from the new log's start."""
        self.drop_acks([tp])
        for message in queued:
            message.acked = True
        self.pulled[(tp.topic, tp.partition)] = 0


def _queued(app: faust.App) -> Iterator[Message]:
    """Messages delivered to the agents' channels and not yet taken by their streams.

    Faust keeps no index of them; every channel queue is registered with the app's
    flow control (mode's ``FlowControlEvent``), which is what a rebalance clears.
    """
    for queue in list(app.flow_control._queues):  # noqa: SLF001 - no public accessor
        for item in list(queue._queue):  # noqa: SLF001 - asyncio.Queue's deque
            if (message := getattr(item, "message", None)) is not None:
                yield message


class BrokerWatch:
    def __init__(self, ctx: WorkerContext, intake: Intake) -> None:
        self._ctx = ctx
        self._intake = intake
        self._sources = ctx.settings.topics.sources
        self._specs = topic_specs(ctx.settings)
        self._high: dict[tuple[str, int], int] = {}  # highest highwater seen, per partition
        self._new_logs: set[tuple[str, int]] = set()  # partitions whose log went back under this worker
        self._short_reported: set[str] = set()
        self._watchlist_pending = False  # recreated, entries not yet republished
        self._undecided: list[Message] = []  # queued messages of a lost log, not yet processed or dropped
        self._client: AIOKafkaClient | None = None
        # exported at 0 from the start, so dashboards and rules see a series before any loss
        for topic in self._sources:
            metrics.BROKER_DATA_LOST.labels(topic)
        for spec in self._specs:
            metrics.BROKER_TOPICS_RECREATED.labels(spec.name)

    async def check(self) -> None:
        self.settle()
        await self.check_topics()
        await self.check_partitions()

    async def check_topics(self) -> None:
        """Recreate our topics if the broker has lost them; report any with too few partitions."""
        try:
            cluster = await self._metadata()
        except KafkaError as exc:  # the broker is away: nothing to judge yet
            logger.debug("broker metadata unavailable: %s", exc)
            return
        present = cluster.topics()
        missing = [spec for spec in self._specs if spec.name not in present]
        # a watchlist topic that outlived the others, or with other than its one partition, was
        # made by a client asking for it (a consumer's metadata request is enough) with the
        # broker's defaults (Tansu: 4 partitions, no compaction): it is made again and refilled
        watchlist = next(spec for spec in self._specs if spec.compacted)
        stale = watchlist.name in present and (
            bool(missing) or len(cluster.partitions_for_topic(watchlist.name) or ()) != watchlist.partitions)
        if missing or stale:
            if missing:
                logger.error("topics gone from the broker (it restarted without its data?): %s; creating "
                             "them again", ", ".join(spec.name for spec in missing))
            if stale:
                logger.error("watchlist topic %s was created by a client, not as specified; replacing it",
                             watchlist.name)
            created = await asyncio.to_thread(
                create_topics, self._ctx.settings, replace=[watchlist.name] if stale else [])
            for name in created:
                metrics.BROKER_TOPICS_RECREATED.labels(name).inc()
            self._watchlist_pending |= watchlist.name in created
        if self._watchlist_pending:  # until it works: the database may be down too
            await self._republish_watchlist()
            self._watchlist_pending = False
        for spec in self._specs:
            partitions = len(cluster.partitions_for_topic(spec.name) or ())
            if 0 < partitions < spec.partitions and spec.name not in self._short_reported:
                self._short_reported.add(spec.name)
                logger.error("topic %s has %d partitions, not %d: a client created it before this worker "
                             "could; delete and recreate it to restore parallelism", spec.name, partitions,
                             spec.partitions)

    async def check_partitions(self) -> None:
        """Report source partitions whose log went back, with what was lost, and read
        any partition waiting past its log's end from the new log's start."""
        consumer = self._ctx.app.consumer
        try:
            assignment = consumer.assignment()
        except ConsumerNotStarted:
            return
        for tp in assignment:
            if tp.topic not in self._sources:
                continue
            try:
                highwater = consumer.highwater(tp)
            except (AssertionError, IllegalStateError, ConsumerNotStarted):  # revoked meanwhile
                continue
            if highwater is None:
                continue
            key = (tp.topic, tp.partition)
            if highwater < self._high.get(key, 0):
                self._report_loss(tp, highwater)
            self._high[key] = highwater
            await self._rewind(tp, highwater)

    def _report_loss(self, tp: TP, highwater: int) -> None:
        key = (tp.topic, tp.partition)
        seen = self._high[key]
        committed = self._ctx.app.monitor.tp_committed_offsets.get(tp) or 0
        done = max(self._intake.pulled.get(key, 0), min(committed, seen))
        queued = [m for m in _queued(self._ctx.app) if m.tp == tp and done <= m.offset < seen]
        lost = max(0, seen - done - len(queued))
        logger.error(
            "broker lost data of %s[%d]: its log had reached offset %d and now ends at %d; this worker "
            "had taken in messages up to offset %d and has %d more in its queues, so %d messages it "
            "never processed are lost (and any sent after its last fetch)",
            tp.topic, tp.partition, seen, highwater, done, len(queued), lost,
        )
        metrics.BROKER_DATA_LOST.labels(tp.topic).inc(lost)
        self._undecided.extend(queued)
        self._intake.log_lost(tp, queued)
        self._new_logs.add(key)

    def settle(self) -> None:
        """Count the queued messages of a lost log that left their queue unprocessed
        (a rebalance cleared it, or the stream skipped them during one)."""
        if not self._undecided:
            return
        still_queued = {id(m) for m in _queued(self._ctx.app)}
        dropped = [m for m in self._undecided if not m.tracked and id(m) not in still_queued]
        self._undecided = [m for m in self._undecided if not m.tracked and id(m) in still_queued]
        for message in dropped:
            metrics.BROKER_DATA_LOST.labels(message.topic).inc()
        if dropped:
            logger.error("broker lost data: %d more messages of the lost logs were dropped from the agents' "
                         "queues unprocessed (a rebalance cleared them)", len(dropped))

    async def _rewind(self, tp: TP, highwater: int) -> None:
        """Move the consumer back into the log if it waits past its end: to what this worker
        took in of the new log, or where it does not know that, to its start (a replay that
        the idempotent writes absorb)."""
        consumer = self._ctx.app.consumer
        key = (tp.topic, tp.partition)
        try:
            position = await consumer.position(tp)
            if position is None or position <= highwater:
                return
            pulled = self._intake.pulled.get(key, 0) if key in self._new_logs else 0
            offset = pulled if pulled <= highwater else 0
            logger.warning("%s[%d]: waiting at offset %d, past the log's end (%d): reading it from offset %d",
                           tp.topic, tp.partition, position, highwater, offset)
            await consumer.seek(tp, offset)
            # the old log's committed offset would hold back every commit below it in the new one
            consumer._committed_offset[tp] = None  # noqa: SLF001 - Faust's seek leaves it
        except (AssertionError, IllegalStateError, ConsumerNotStarted):  # revoked meanwhile
            return

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def _metadata(self):  # noqa: ANN202 - aiokafka ClusterMetadata
        if self._client is None:
            client = AIOKafkaClient(bootstrap_servers=self._ctx.settings.kafka_bootstrap,
                                    client_id="ioc-broker-watch")
            await client.bootstrap()
            self._client = client
        # all topics: asking for ours by name would make the broker auto-create them
        return await self._client.fetch_all_metadata()

    async def _republish_watchlist(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self._ctx.settings.kafka_bootstrap, linger_ms=0)
        await producer.start()
        try:
            async with (await self._ctx.pool()).connection() as conn:
                entries = await active_entries(conn, utcnow())
                # as stored when sent: an edit published meanwhile by the API is not undone
                published = await publish_as_stored(conn, producer, self._ctx.settings.topics.watchlist,
                                                    [entry.entry_id for entry in entries])  # fmt: skip
        finally:
            await producer.stop()
        logger.warning("watchlist topic recreated: republished its %d active entries from the database",
                       published)


def register(ctx: WorkerContext) -> None:
    intake = Intake()
    ctx.app.sensors.add(intake)
    watch = BrokerWatch(ctx, intake)

    @ctx.app.on_partitions_revoked.connect
    async def _drop_acks(app: object, revoked: set[TP], **_: object) -> None:  # noqa: ARG001 - Faust signal
        if dropped := intake.drop_acks(revoked):
            logger.info("partitions revoked with %d messages in flight: they will be replayed from the "
                        "committed offsets, not committed", dropped)
        watch.settle()  # the revocation has cleared the queues

    def _drop_acks_at_shutdown() -> None:
        if dropped := intake.drop_all_acks():
            logger.info("stopping with %d messages in flight: they will be replayed from the committed "
                        "offsets, not committed", dropped)

    ctx.before_close(_drop_acks_at_shutdown)

    @ctx.timer(CHECK_EVERY_S, name="broker-watch")
    async def check_broker() -> None:
        await watch.check()

    @ctx.app.on_before_shutdown.connect
    async def _close(app: object, **_: object) -> None:  # noqa: ARG001 - Faust signal
        await watch.close()

