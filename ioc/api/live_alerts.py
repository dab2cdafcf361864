"""Alerts from the Kafka topic to every open operator page (server-sent events), resumable.

One group-less consumer per API process reads the alerts topic and fans each alert
(new, extended incident or status change) out to the subscribers' queues.

Every event carries its *position*: the next offset of each alerts-topic partition
once the event is delivered, written ``v1.<next offset of partition 0>.<of 1>...``.
Offsets belong to the broker, not to this process, so a position means the same
on every API replica and after a restart, and it is exact at any seam: a client
gets a record of partition ``p`` only if its offset is at or past the client's
position in ``p``. A reconnecting client sends its last position
(``Last-Event-ID``); the server replays what came after it from a window of the
newest alerts (``api_live_replay_events``, ``api_live_replay_seconds``), which a
restarted process refills from the topic before it takes clients. A position
older than the window (or not a position at all) gets a ``reset`` event instead:
the page reloads the list from the database, the durable record.

Alerts of one plate share a Kafka key, hence a partition: they always arrive in
order. Across partitions, records are merged by their timestamps.

A client that cannot keep up is disconnected rather than silently losing alerts;
it resumes from its last position like any other reconnecting client.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from pydantic import ValidationError

from ioc import metrics
from ioc.api.routes.alerts import AlertPublic
from ioc.config import Settings
from ioc.schemas import Alert

logger = logging.getLogger(__name__)

__all__ = [
    "CLOSED",
    "AlertBroadcaster",
    "StreamEvent",
    "Subscription",
    "encode_position",
    "parse_position",
]

QUEUE_SIZE = 200  # events waiting for one client before it is disconnected (it resumes)
LAG_GRACE_S = 2.0  # how long a burst waits for a stream to make room before that stream is dropped
CATCH_UP_TIMEOUT_S = 30.0
ASSIGNMENT_WAIT_S = 2.0
_VERSION = "v1"
_MAX_PARTITIONS = 4096  # a longer id is not one of ours


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One alert on the stream: where it sits on the topic, and its public JSON."""

    partition: int
    offset: int
    timestamp_ms: int
    payload: bytes


CLOSED = StreamEvent(-1, -1, 0, b"")  # queued to a subscriber whose stream must end


def encode_position(position: Mapping[int, int]) -> str:
    """``v1.<o0>.<o1>...``: the next offset of every partition, 0 where none is known."""
    if not position:
        return _VERSION
    return ".".join([_VERSION, *(str(position.get(p, 0)) for p in range(max(position) + 1))])


def parse_position(text: str | None) -> dict[int, int] | None:
    """The position an event id stands for; ``None`` for anything else (never raises)."""
    if not text:
        return None
    version, *offsets = text.strip().split(".")
    if version != _VERSION or len(offsets) > _MAX_PARTITIONS:
        return None
    if not all(o.isascii() and o.isdigit() and len(o) <= 19 for o in offsets):
        return None
    return {p: int(o) for p, o in enumerate(offsets)}


ResetReason = Literal["invalid id", "gap too large", "ahead of the topic"]


class Subscription:
    """One open stream: its queue, its position, and what to replay first."""

    def __init__(self, position: dict[int, int], *, replay: Iterable[StreamEvent] = (),
                 reset: ResetReason | None = None) -> None:
        self.position = position
        self.replay = list(replay)
        self.reset = reset
        self.queue: asyncio.Queue[StreamEvent] = asyncio.Queue(QUEUE_SIZE + 1)  # +1: room for CLOSED
        self.lagged = False

    @property
    def event_id(self) -> str:
        return encode_position(self.position)

    def accept(self, event: StreamEvent) -> bool:
        """Whether the client still lacks ``event``; if so, move the position past it."""
        if event.offset < self.position.get(event.partition, 0):
            return False
        self.position[event.partition] = event.offset + 1
        return True

    def offer(self, event: StreamEvent) -> None:
        """Queue a live event; a full queue ends the stream (the client resumes from its id)."""
        if self.lagged:
            return
        if event is not CLOSED and self.queue.qsize() >= QUEUE_SIZE:
            self.lagged = True
            while not self.queue.empty():
                self.queue.get_nowait()
            event = CLOSED
        self.queue.put_nowait(event)


class AlertBroadcaster:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._subscribers: set[Subscription] = set()
        self._task: asyncio.Task | None = None
        self.ready = asyncio.Event()
        self.last_received: float | None = None
        self._window: deque[StreamEvent] = deque()
        self._published: dict[int, int] = {}  # partition -> next offset taken from the topic
        self._floor: dict[int, int] = {}  # partition -> the window holds every alert from this offset
        self._high: dict[int, int] = {}  # partition -> the broker's high watermark, last seen
        self._assigned: frozenset[TopicPartition] = frozenset()
        for outcome in ("replayed", "reset"):
            metrics.LIVE_RESUMES.labels(outcome)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    @property
    def position(self) -> str:
        """The event id of everything taken from the topic so far."""
        return encode_position(self._published)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="alert-broadcaster")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.drain()

    def drain(self) -> None:
        """End every open stream now (the process is stopping); clients resume from their ids."""
        for subscription in list(self._subscribers):
            subscription.offer(CLOSED)

    async def wait_ready(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.ready.wait(), timeout)
        return self.ready.is_set()

    # ---------- subscribers ----------

    async def reach(self, last_event_id: str | None, timeout: float) -> None:
        """Wait (up to ``timeout``) until this process has taken the topic up to a client's id:
        one that comes from a replica a few milliseconds ahead is then replayed, not reset."""
        wanted = parse_position(last_event_id) or {}
        deadline = time.monotonic() + timeout
        while any(o > self._published.get(p, 0) for p, o in wanted.items()) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    def subscribe(self, last_event_id: str | None = None) -> Subscription:
        """A new stream from now, or, given a client's last event id, from just after it.

        Synchronous on purpose: nothing is taken from the topic between choosing
        what to replay and queueing what comes next, so the seam has no gap.
        """
        now = dict(self._published)
        if last_event_id is None:
            subscription = Subscription(now)
        else:
            wanted = parse_position(last_event_id)
            reason = self._cannot_replay(wanted)
            if reason is not None:
                subscription = Subscription(now, reset=reason)
                metrics.LIVE_RESUMES.labels("reset").inc()
            else:
                assert wanted is not None
                replay = [e for e in self._window if e.offset >= wanted.get(e.partition, 0)]
                subscription = Subscription(wanted, replay=replay)
                metrics.LIVE_RESUMES.labels("replayed").inc()
        self._subscribers.add(subscription)
        metrics.LIVE_STREAMS.set(len(self._subscribers))
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)
        metrics.LIVE_STREAMS.set(len(self._subscribers))

    def _cannot_replay(self, wanted: dict[int, int] | None) -> ResetReason | None:
        if wanted is None:
            return "invalid id"
        self._expire()
        if any(wanted.get(p, 0) < floor for p, floor in self._floor.items()):
            return "gap too large"
        # past anything this topic ever held: the topic was recreated, or the id is made up
        if any(o > max(self._published.get(p, 0), self._high.get(p, 0)) for p, o in wanted.items()):
            return "ahead of the topic"
        return None

    # ---------- the window of recent alerts ----------

    def _expire(self) -> None:
        cutoff_ms = (time.time() - self._settings.api_live_replay_seconds) * 1000
        window = self._window
        while window and (len(window) > self._settings.api_live_replay_events
                          or window[0].timestamp_ms < cutoff_ms):
            gone = window.popleft()
            self._floor[gone.partition] = max(self._floor.get(gone.partition, 0), gone.offset + 1)

    def take(self, records: Iterable[ConsumerRecord]) -> None:
        """Records in delivery order -> window and subscribers; each offset once."""
        for record in records:
            partition, offset = record.partition, record.offset
            if offset < self._published.get(partition, 0):
                continue  # read again after a reassignment
            self._published[partition] = offset + 1
            self._floor.setdefault(partition, offset)
            payload = _public(record.value)
            if payload is None:
                continue
            self.last_received = time.time()
            event = StreamEvent(partition, offset, record.timestamp, payload)
            self._window.append(event)
            if self._subscribers:
                metrics.ALERTS_STREAMED.inc()
                for subscription in list(self._subscribers):
                    subscription.offer(event)
        self._expire()

    async def _take_paced(self, records: list[ConsumerRecord]) -> None:
        """:meth:`take` ``records`` half a queue at a time, each chunk once every stream has room
        for it or :data:`LAG_GRACE_S` has passed. Taken at once, a burst longer than a queue (an
        entry matching a day of past reads, a backlog after a broker outage) filled every queue
        before any stream could send, and every page, fast or not, was disconnected and
        reconnected (past the replay window, reset and reloaded its list)."""
        chunk = QUEUE_SIZE // 2
        for start in range(0, len(records), chunk):
            deadline = time.monotonic() + LAG_GRACE_S
            while time.monotonic() < deadline and any(
                    not s.lagged and s.queue.qsize() > QUEUE_SIZE - chunk for s in self._subscribers):
                await asyncio.sleep(0.01)
            self.take(records[start:start + chunk])

    # ---------- the consumer ----------

    async def _run(self) -> None:
        while True:
            consumer = AIOKafkaConsumer(
                self._settings.topics.alerts, bootstrap_servers=self._settings.kafka_bootstrap,
                group_id=None, auto_offset_reset="earliest", enable_auto_commit=False,
                fetch_max_wait_ms=50, metadata_max_age_ms=5000,
            )
            try:
                await consumer.start()
                await self._place(consumer)
                await self._catch_up(consumer)
                self.ready.set()
                while True:
                    batch = await consumer.getmany(timeout_ms=1000)
                    self._note_high(consumer)
                    if await self._start_over_where_the_topic_went_back(consumer):
                        continue
                    if consumer.assignment() != self._assigned:  # partitions added: positions were reset
                        await self._place(consumer)
                        continue
                    if batch:
                        await self._take_paced(list(_merged(batch.values())))
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("alerts consumer failed; reconnecting in 2s")
                self.ready.clear()
                await asyncio.sleep(2)
            finally:
                await consumer.stop()

    async def _place(self, consumer: AIOKafkaConsumer) -> None:
        """Seek every partition: where this process left off, or the start of the window."""
        deadline = time.monotonic() + ASSIGNMENT_WAIT_S
        while not consumer.assignment() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # no topic yet is fine: it is picked up when created
        assigned = consumer.assignment()
        fresh = [tp for tp in assigned if tp.partition not in self._published]
        starts = await self._window_start(consumer, fresh) if fresh else {}
        for tp in assigned:
            if tp in starts:
                self._published[tp.partition] = self._floor[tp.partition] = starts[tp]
            consumer.seek(tp, self._published[tp.partition])
        self._assigned = assigned

    async def _start_over_where_the_topic_went_back(self, consumer: AIOKafkaConsumer) -> bool:
        """Read again from their start the partitions whose log now ends before what this process
        took: the broker lost the topic's data, or the topic was created again. Kafka answers a
        fetch past the end with an out-of-range error, after which the consumer starts over and
        :meth:`take` skipped every new alert as already taken; Tansu answers with nothing, for
        ever. Either way the video wall showed no new alert until the API restarted.

        Every open stream ends: its client resumes from its id, which is now ahead of the topic,
        and gets a ``reset`` (the page reloads the list from the database, the durable record).
        """
        gone_back = [tp for tp in consumer.assignment() if tp.partition in self._high
                     and self._high[tp.partition] < self._published.get(tp.partition, 0)]
        if not gone_back:
            return False
        starts = await consumer.beginning_offsets(gone_back)
        for tp in gone_back:
            logger.error("alerts topic %s[%d] now ends at offset %d, before the %d this process took: the "
                         "broker lost it; reading it again from offset %d and resetting the open streams",
                         tp.topic, tp.partition, self._high[tp.partition], self._published[tp.partition],
                         starts[tp])  # fmt: skip
            self._published[tp.partition] = self._floor[tp.partition] = starts[tp]
            consumer.seek(tp, starts[tp])
        partitions = {tp.partition for tp in gone_back}
        self._window = deque(e for e in self._window if e.partition not in partitions)
        self.drain()
        return True

    async def _window_start(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition]) -> dict:
        """Per partition, the first offset within the replay window (count and age)."""
        begin = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)  # may be short of the end (Tansu): starts a little early
        cutoff_ms = int((time.time() - self._settings.api_live_replay_seconds) * 1000)
        try:
            by_time = await consumer.offsets_for_times(dict.fromkeys(tps, cutoff_ms))
        except Exception:  # a broker without timestamp look-ups: the count bound alone
            logger.warning("offsets_for_times failed; replay window bounded by count only")
            by_time = {}
        starts = {}
        for tp in tps:
            found = by_time.get(tp)
            recent = found.offset if found is not None else end[tp] if tp in by_time else 0
            starts[tp] = max(begin[tp], end[tp] - self._settings.api_live_replay_events, recent)
        return starts

    async def _catch_up(self, consumer: AIOKafkaConsumer) -> None:
        """Read to the end of every partition, then take it all in timestamp order."""
        pending: dict[int, list[ConsumerRecord]] = {}
        deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            self._note_high(consumer)
            for tp, records in batch.items():
                pending.setdefault(tp.partition, []).extend(records)
            if not batch or self._caught_up(pending):
                break
        self.take(_merged(pending.values()))

    def _caught_up(self, pending: dict[int, list[ConsumerRecord]]) -> bool:
        for tp in self._assigned:
            read = pending.get(tp.partition)
            next_offset = read[-1].offset + 1 if read else self._published.get(tp.partition, 0)
            if next_offset < self._high.get(tp.partition, next_offset + 1):
                return False
        return True

    def _note_high(self, consumer: AIOKafkaConsumer) -> None:
        for tp in consumer.assignment():
            high = consumer.highwater(tp)
            if high is not None:
                self._high[tp.partition] = high


def _merged(partitions: Iterable[list[ConsumerRecord]]) -> Iterable[ConsumerRecord]:
    """All partitions' records by timestamp, each partition's in offset order."""
    return heapq.merge(*partitions, key=lambda record: record.timestamp)


def _public(value: bytes | None) -> bytes | None:
    """An alerts-topic message in the API's public shape; ``None`` for anything else."""
    if not value:
        return None
    try:
        alert = Alert.model_validate_json(value)
    except ValidationError:
        logger.warning("ignored an alerts-topic message that is not an Alert")
        return None
    return AlertPublic.of_event(alert).model_dump_json(exclude_none=True).encode()
