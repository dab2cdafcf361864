"""What every agent of one worker shares: settings, topics, database pool, recogniser."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Coroutine, Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

import faust
from faust.types import TP, EventT, Message, ProducerT
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel

from ioc import metrics
from ioc.config import Settings
from ioc.schemas import EARLIEST_CAPTURE, LATEST_CAPTURE, Alert, PlateRead, PlateReadBatch, utcnow
from ioc.storage.alert_outbox import mark_published
from ioc.storage.cameras import Camera, list_cameras
from ioc.storage.database import open_pool
from streams.dead_letters import DeadLetters
from streams.decoding import EventRejectedError
from streams.live_passages import LivePassages
from streams.recognition_pool import RecognitionPool
from streams.retries import SEND_ERRORS, Backoff, refused_for_good
from streams.sinks import DATABASE_UNAVAILABLE, RowRejectedError

E = TypeVar("E", bound=BaseModel)
logger = logging.getLogger(__name__)

# the batch a handler's batch follows (see WorkerContext.consume); None for the first of a take
_PREVIOUS_BATCH: ContextVar[asyncio.Task[None] | None] = ContextVar("previous_batch", default=None)

KNOWN_CAMERAS_REFRESH_S = 5.0
# a camera missing from the registry as last read has it read again, if it is older than this
UNKNOWN_CAMERA_RECHECK_S = 0.5
READS_PER_MESSAGE = 200
# a plate-reads batch message's most bytes, under Kafka's default 1 MB message limit: 200 reads
# with edge crops of about 4 KB came to 1.1 MB (each read's output is larger than its input)
PLATE_READS_MESSAGE_BYTES = 900_000
# the Kafka timestamps (seconds) a message may carry and be believed: those a capture time may be
_EARLIEST_S, _LATEST_S = EARLIEST_CAPTURE.timestamp(), LATEST_CAPTURE.timestamp()


async def _deliver(producer: ProducerT, topic: str, key: bytes, payload: bytes) -> None:
    """Straight to the app's producer: Faust's channel layer costs more than the send itself."""
    await (await producer.send(topic, key, payload, None, None, None))


def plate_read_messages(reads: list[PlateRead]) -> list[bytes]:
    """``reads`` as batch messages of at most :data:`PLATE_READS_MESSAGE_BYTES`, in order: halved
    until they fit (encoded once where they do, as nearly always); a single read goes as it is."""
    payload = PlateReadBatch.model_construct(reads=reads).model_dump_json().encode()
    if len(payload) <= PLATE_READS_MESSAGE_BYTES or len(reads) == 1:
        return [payload]
    half = len(reads) // 2
    return plate_read_messages(reads[:half]) + plate_read_messages(reads[half:])


def _start(work: Coroutine[object, object, None], *, after: asyncio.Task[None] | None) -> asyncio.Task[None]:
    """``work`` as a task whose :meth:`WorkerContext.earlier_batches_done` waits for ``after``."""
    token = _PREVIOUS_BATCH.set(after)
    try:
        return asyncio.create_task(work)  # the task copies the context as it is now
    finally:
        _PREVIOUS_BATCH.reset(token)


@dataclass
class WorkerTopics:
    frames: faust.TopicT
    edge_plate_reads: faust.TopicT
    sensor_readings: faust.TopicT
    plate_reads: faust.TopicT
    alerts: faust.TopicT
    dead_letter: faust.TopicT

    @classmethod
    def declare(cls, app: faust.App, settings: Settings) -> WorkerTopics:
        """Raw-bytes topics: agents decode themselves so bad input reaches the dead letter."""
        t = settings.topics

        def raw(name: str) -> faust.TopicT:
            return app.topic(
                name, key_serializer="raw", value_serializer="raw",
                partitions=settings.topic_partitions,
            )

        return cls(
            frames=raw(t.frames),
            edge_plate_reads=raw(t.edge_plate_reads),
            sensor_readings=raw(t.sensor_readings),
            plate_reads=raw(t.plate_reads),
            alerts=raw(t.alerts),
            dead_letter=raw(t.dead_letter),
        )


@dataclass
class WorkerContext:
    settings: Settings
    app: faust.App
    topics: WorkerTopics
    dead_letters: DeadLetters
    recognition: RecognitionPool
    camera_seen: dict[str, datetime] = field(default_factory=dict)  # flushed by the health timer
    # per source partition, the offset and Kafka time of the last message whose take is finished
    processed: dict[TP, tuple[int, datetime]] = field(default_factory=dict)
    passages: LivePassages = field(default_factory=LivePassages)  # written by the passages timer
    _cameras: dict[str, Camera] = field(default_factory=dict)  # the registry as last read
    _cameras_loaded_at: float = float("-inf")
    _pool: AsyncConnectionPool | None = None
    _pool_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    closing: bool = False  # set by close(): what fails from then on is the shutdown's doing
    _before_close: list[Callable[[], object]] = field(default_factory=list)

    async def pool(self) -> AsyncConnectionPool:
        """The database pool, opened on first use (after the worker's loop exists)."""
        async with self._pool_lock:
            if self._pool is None:
                self._pool = await open_pool(
                    self.settings.database_conninfo(),
                    min_size=1,
                    max_size=self.settings.database_pool_size,
                )
            return self._pool

    def before_close(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` when the worker stops, before the recogniser and the pool close."""
        self._before_close.append(callback)

    async def close(self) -> None:
        """Close the recogniser and the database pool. Faust calls this while agents may still be
        working on batches (only the fetching has stopped): the callbacks run first, with
        nothing awaited before them (the intake's: what is in flight will not be committed),
        and a batch that fails from then on is left to be replayed, not dead-lettered."""
        self.closing = True
        for callback in self._before_close:
            callback()
        self.recognition.close()
        if self._pool is not None:
            await self._pool.close()

    async def decoded_batches(
        self, stream: faust.StreamT, decode: Callable[[bytes | None], list[E]], *, size: int | None = None
    ) -> AsyncIterator[tuple[list[tuple[Message, list[E]]], bool]]:
        """Batches of (message, its events), each with whether it ends its take;
        undecodable messages go to the dead letter.

        Faust acknowledges the messages it took when the agent asks for more, i.e. after
        the agent has finished (and committed) all of them. Gateway envelopes carry
        hundreds of events each, so the messages taken at once are decoded and yielded
        in batches of at most about ``sink_batch_events`` events: memory stays bounded
        (500 envelopes of 200 reads took a worker to 1 GB).
        """
        size, within = size or self.settings.sink_batch_size, self.settings.sink_batch_seconds
        most_events = self.settings.sink_batch_events
        async for events in stream.take_events(size, within=within):
            for topic, n in Counter(event.message.topic for event in events).items():
                metrics.MESSAGES_CONSUMED.labels(topic).inc(n)
            batch: list[tuple[Message, list[E]]] = []
            in_batch = 0
            for position, event in enumerate(events, 1):
                message = event.message
                try:
                    decoded = decode(message.value)
                except EventRejectedError as exc:
                    await self.dead_letters.publish(message, exc.reason, exc.error)
                    continue
                batch.append((message, decoded))
                in_batch += len(decoded)
                if in_batch >= most_events and position < len(events):
                    yield batch, False
                    batch, in_batch = [], 0
            yield batch, True
            self._finished(events)  # consume() resumes here once every batch of the take is done
            # while waiting for the next batch, keep nothing of this one alive: a topic
            # gone quiet would otherwise hold its last batch (10^5 objects in every full GC)
            del batch, events

    def _finished(self, events: list[EventT]) -> None:
        """Note the messages of a take as processed (stored, dead-lettered or left out), for
        camera health and flow checks (:mod:`streams.consumer_progress`). A message without a
        usable Kafka time leaves its partition processed to the time noted before it (nothing, on
        a partition with none yet: its record stands as it is)."""
        for event in events:
            message = event.message
            last = self.processed.get(message.tp)
            if last is None or message.offset > last[0]:
                sent = _kafka_time(message)
                if sent is not None:
                    self.processed[message.tp] = (message.offset, sent)
                elif last is not None:
                    self.processed[message.tp] = (message.offset, last[1])

    async def consume(
        self,
        stream: faust.StreamT,
        decode: Callable[[bytes | None], list[E]],
        handler: Callable[[WorkerContext, list[tuple[Message, list[E]]]], Awaitable[None]],
        *,
        size: int | None = None,
    ) -> None:
        """An agent's whole loop: decode each batch, then :meth:`process` it.

        Up to ``sink_batches_in_flight`` batches of a take are in flight at once: while
        they wait on the database or the broker, the next is decoded and started (one at
        a time, a worker working off a backlog used 0.7 of a core and its database half
        of one). Handlers keep what must stay in order (publishing, incidents) behind
        :meth:`earlier_batches_done`.
        A take's batches all finish before Faust is asked for more, which acknowledges them.
        """
        depth = self.settings.sink_batches_in_flight
        in_flight: deque[asyncio.Task[None]] = deque()
        try:
            async for batch, take_ends in self.decoded_batches(stream, decode, size=size):
                after = in_flight[-1] if in_flight else None
                in_flight.append(_start(self.process(batch, handler), after=after))
                del batch  # as in decoded_batches: nothing outlives its batch
                while in_flight and (take_ends or len(in_flight) >= depth):
                    await in_flight.popleft()
        finally:
            for task in in_flight:  # the agent is stopping: so are its batches
                task.cancel()  # nothing for a task that is done

    @staticmethod
    async def earlier_batches_done() -> None:
        """Wait until the agent's previous batch (and so every earlier one) has finished:
        what a handler does after this runs in the order the batches were taken."""
        previous = _PREVIOUS_BATCH.get()
        if previous is not None and not previous.done():
            await asyncio.wait([previous])

    async def send(self, topic: faust.TopicT, key: str, value: BaseModel) -> None:
        """Send and wait for the broker's acknowledgement, retrying while the broker
        is unreachable (at-least-once: the source events stay unacknowledged)."""
        await self.send_many(topic, [(key, value)])

    async def publish_alerts(self, alerts: Collection[Alert]) -> None:
        """Send alert changes to the alerts topic, then take them off the database's outbox
        (:mod:`ioc.storage.alert_outbox`): what every worker path that raises or changes alerts does."""
        await self.send_many(self.topics.alerts, [(alert.subject, alert) for alert in alerts])
        await mark_published(await self.pool(), alerts)

    async def send_many(
        self, topic: faust.TopicT, messages: list[tuple[str | bytes, BaseModel | bytes]]
    ) -> None:
        """Send all messages (models, or their JSON already encoded) at once, then wait for every
        acknowledgement (one round trip, not one per message); the ones that failed are sent
        again after a back-off."""
        name = topic.get_topic_name()
        pending = [(key.encode() if isinstance(key, str) else key,
                    value if isinstance(value, bytes) else value.model_dump_json().encode())
                   for key, value in messages]  # fmt: skip
        backoff = Backoff()
        while pending:
            outcomes = await asyncio.gather(
                *(_deliver(self.app.producer, name, key, payload) for key, payload in pending),
                return_exceptions=True,
            )
            for outcome in outcomes:  # a bug or an oversized message: the batch is dead-lettered
                if isinstance(outcome, BaseException) and (
                        not isinstance(outcome, SEND_ERRORS) or refused_for_good(outcome)):
                    raise outcome
            failed = [(m, o) for m, o in zip(pending, outcomes, strict=True) if isinstance(o, SEND_ERRORS)]
            metrics.MESSAGES_PRODUCED.labels(name).inc(len(pending) - len(failed))
            if failed:
                logger.warning("%d sends to %s failed (%s); retrying in %.1fs",
                               len(failed), name, failed[0][1], backoff.delay)
                await backoff.wait()
            pending = [message for message, _ in failed]

    async def process(
        self,
        batch: list[tuple[Message, list[E]]],
        handler: Callable[[WorkerContext, list[tuple[Message, list[E]]]], Awaitable[None]],
    ) -> None:
        """Run an agent's batch handler. An unexpected failure (a bug) must not lose
        the batch: its messages go to the dead letter with the error, to be replayed
        once the cause is fixed. A database outage is no reason to dead-letter valid
        events: sinks retry their writes, and an outage met elsewhere (the camera
        registry, opening the pool) runs the whole batch again after a back-off
        (handlers are idempotent, so a second run stores nothing twice). Once the worker is
        stopping (:meth:`close`), a failure is the shutdown's: the batch is left for replay."""
        backoff = Backoff()
        while True:
            try:
                await handler(self, batch)
                return
            except Exception as exc:
                if self.closing:  # the pool or the recogniser closed under it: not the messages' fault
                    logger.info("batch of %d messages stopped by the shutdown (%s); the partitions' next "
                                "owner replays it", len(batch), exc)
                    return
                if isinstance(exc, DATABASE_UNAVAILABLE):
                    metrics.DB_ERRORS.labels("batch").inc()
                    logger.warning("database unavailable for a batch of %d messages (%s); running it "
                                   "again in %.1fs", len(batch), exc, backoff.delay)
                    await backoff.wait()
                    continue
                logger.exception("batch of %d messages failed; dead-lettering them", len(batch))
                for message, _ in batch:
                    await self.dead_letters.publish(message, "processing_error", repr(exc))
                return

    def timer(self, interval_s: float, *, name: str) -> Callable:
        """``app.timer`` that survives failures: an exception is logged and counted and
        the timer runs again next interval (a Faust timer that raises stops for good)."""

        def decorate(fun: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
            @functools.wraps(fun)
            async def guarded() -> None:
                try:
                    await fun()
                except DATABASE_UNAVAILABLE as exc:
                    metrics.DB_ERRORS.labels(name).inc()
                    logger.warning("%s: database unavailable (%s); next try in %.0fs", name, exc, interval_s)
                except Exception:
                    logger.exception("%s failed; it runs again in %.0fs", name, interval_s)

            return self.app.timer(interval_s, name=name)(guarded)

        return decorate

    async def cameras(self, *, max_age_s: float = KNOWN_CAMERAS_REFRESH_S) -> dict[str, Camera]:
        """The registered cameras by id, re-read when older than ``max_age_s``: a camera's
        checkpoint or look-closer setting changed with ``ioc cameras add`` reaches every worker
        within :data:`KNOWN_CAMERAS_REFRESH_S`."""
        if time.monotonic() - self._cameras_loaded_at >= max_age_s:
            async with (await self.pool()).connection() as conn:
                self._cameras = {c.camera_id: c for c in await list_cameras(conn)}
            self._cameras_loaded_at = time.monotonic()
            if self.settings.require_known_cameras:  # a removed camera is no longer watched for silence
                metrics.CAMERA_LAST_SEEN.retain(self._cameras)
                metrics.CAMERA_LAST_SEEN.seed({camera_id: camera.last_seen or camera.updated_at
                                               for camera_id, camera in self._cameras.items()})
        return self._cameras

    async def is_known_camera(self, camera_id: str) -> bool:
        """Whether the camera is registered (always, where unregistered cameras are accepted).

        A camera missing from the registry as last read may have been registered since: the
        registry is read again (at most every :data:`UNKNOWN_CAMERA_RECHECK_S`, so a flood of
        frames from an unregistered camera costs the database little) before its frames are
        dead-lettered."""
        if not self.settings.require_known_cameras or camera_id in await self.cameras():
            return True
        return camera_id in await self.cameras(max_age_s=UNKNOWN_CAMERA_RECHECK_S)

    def saw_camera(self, camera_id: str, captured_at: datetime, message: Message) -> None:
        """Note a frame or read from the camera, captured at ``captured_at`` by its clock and
        carried by ``message``.

        The camera was heard from when the message reached Kafka, if that is later: a camera
        whose clock lags its expected interval, or a gateway sending its reads late, would
        otherwise be judged offline while its events flow. Never later than now: one frame dated
        ahead would keep a dead camera judged online until then."""
        metrics.CAMERA_LAST_SEEN.seen(camera_id)
        sent = _kafka_time(message)  # without a usable one, the capture time alone
        at = min(captured_at if sent is None else max(captured_at, sent), utcnow())
        if (last := self.camera_seen.get(camera_id)) is None or at > last:
            self.camera_seen[camera_id] = at

    async def send_plate_reads(self, batch: list[tuple[Message, list[PlateRead]]]) -> None:
        """Publish the reads of each source message as batch messages with the source's
        key (a camera's id, or a gateway's for its envelopes): a camera's reads keep
        their order, and an envelope of many cameras costs one message, not one each."""
        chunk = READS_PER_MESSAGE
        await self.send_many(self.topics.plate_reads, [
            (message.key or reads[0].camera_id, payload)
            for message, reads in batch if reads
            for i in range(0, len(reads), chunk)
            for payload in plate_read_messages(reads[i : i + chunk])
        ])

    async def dead_letter_refused(
        self, batch: list[tuple[Message, list[E]]], rejected: list[RowRejectedError]
    ) -> set[int]:
        """Dead-letter each message with a row the database refused; returns their ids."""
        refused: set[int] = set()
        errors_of: dict[int, list[str]] = {}  # by id(row): rows are compared by identity
        for rejection in rejected:
            errors_of.setdefault(id(rejection.row), []).append(str(rejection.error))
        for message, rows in batch:
            errors = [error for row in rows for error in errors_of.get(id(row), ())]
            if errors:
                await self.dead_letters.publish(message, "processing_error", "; ".join(errors))
                refused.add(id(message))
        return refused

    def count_stored(self, messages: Iterable[Message]) -> None:
        """Source messages fully processed and committed (what ``consumed`` must add up to)."""
        for topic, n in Counter(m.topic for m in messages).items():
            metrics.MESSAGES_STORED.labels(topic).inc(n)


def _kafka_time(message: Message) -> datetime | None:
    """The message's Kafka timestamp (the producer's or the broker's clock); None if it has none,
    or one no capture time could be (:data:`~ioc.schemas.EARLIEST_CAPTURE` to
    :data:`~ioc.schemas.LATEST_CAPTURE`). Kafka before 4.0 takes any timestamp: a producer writing
    micro- or nanoseconds where Kafka wants milliseconds stamps its messages past the year 9999, where
    a datetime ends, and one such message failed its batch and stopped its agent."""
    seconds = message.timestamp
    if seconds is None or not _EARLIEST_S <= seconds <= _LATEST_S:  # NaN is neither
        return None
    return datetime.fromtimestamp(seconds, UTC)
