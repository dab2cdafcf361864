"""The one Faust app of the project, built from settings (no side effects at import)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path

import aiokafka
import faust
from aiokafka.errors import IllegalStateError
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from ioc.config import Settings


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: faust_aiokafka.Transport) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Faust passes fetch_max_wait_ms=1500 with no setting to change it; the consumer
        # reads it only when it starts, so setting it here is in time.
        if not hasattr(consumer, "_fetch_max_wait_ms"):
            raise RuntimeError("aiokafka no longer has _fetch_max_wait_ms: update streams/app.py")
        consumer._fetch_max_wait_ms = self.app.conf.ioc_fetch_max_wait_ms
        # Producers the worker does not know may write in transactions: read only what they
        # committed (Faust reads uncommitted unless it runs transactions itself).
        if not hasattr(consumer, "_isolation_level"):
            raise RuntimeError("aiokafka no longer has _isolation_level: update streams/app.py")
        consumer._isolation_level = "read_committed"
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with a configurable fetch wait (``IOC_CONSUMER_FETCH_MAX_WAIT_MS``),
    that skips no message of a partition with no committed offset (:meth:`perform_seek`)."""

    _uncommitted: list[TP] = []  # of the last seek to the committed offsets

    def _new_consumer_thread(self) -> _ConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed = await super().seek_to_committed()
        self._uncommitted = uncommitted_partitions(committed)
        return committed

    async def perform_seek(self) -> None:
        """Faust calls this at each assignment, and when a fetch comes back while its flow is
        stopped (a rebalance under way): it drops the fetched records and seeks "back to the
        committed offsets". A partition with none committed (a new group, a partition added, a
        broker that lost its data) was not moved: its position stayed past the dropped records,
        which were never processed (a restarted test broker's first 1,208 events, about one run in
        five). Such a partition is read from its start, as the offset reset policy (earliest) has
        a new one read: what its streams took may come again (the writes are idempotent), nothing
        is missed. Not from its read offset: a rebalance that clears the agents' queues leaves
        there the offset of a message it cleared, never processed."""
        self._uncommitted = []
        await super().perform_seek()
        if self._uncommitted and self.app.conf.consumer_auto_offset_reset == "earliest":
            # revoked meanwhile: the next assignment seeks again; aiokafka takes only its own partitions
            with contextlib.suppress(AssertionError, IllegalStateError):
                await self._thread.seek_to_beginning(
                    *(aiokafka.TopicPartition(tp.topic, tp.partition) for tp in self._uncommitted))


def uncommitted_partitions(committed: Mapping[TP, int | None]) -> list[TP]:
    """The partitions Faust's seek to the committed offsets left where they were (as its
    ``perform_seek`` reads them: no offset, or a negative one)."""
    return [tp for tp, offset in committed.items() if offset is None or offset < 0]


def create_app(settings: Settings, *, web_port: int | None = None) -> faust.App:
    """A Faust app tuned for at-least-once delivery on a Kafka-protocol broker.

    Offsets are committed only for events the agents have acknowledged, and agents
    acknowledge only after the database commit (see ``streams.sinks``). Session and
    rebalance timeouts are short so a restarted worker rejoins in seconds.
    """
    brokers = [f"kafka://{host}" for host in settings.kafka_servers().split(",")]
    # Faust creates only the last level of its data directory; the parent (by default in
    # the temp dir, which may be cleaned at any time) must exist or the worker cannot start.
    Path(settings.worker_data_dir).mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.consumer_group,
        broker=brokers,
        store="memory://",
        datadir=f"{settings.worker_data_dir}/{settings.consumer_group}",
        processing_guarantee="at_least_once",
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        topic_allow_declare=True,
        autodiscover=False,
        web_enabled=False,
        web_bind=settings.worker_web_host,
        web_port=web_port if web_port is not None else settings.worker_web_port,
        broker_session_timeout=6,
        broker_rebalance_timeout=6,
        broker_heartbeat_interval=1,
        broker_commit_every=200,
        broker_commit_interval=0.5,
        stream_wait_empty=False,
        producer_linger_ms=0,
        producer_compression_type=(
            None if settings.producer_compression == "none" else settings.producer_compression
        ),
        # aiokafka sends one batch per partition per round trip (see Settings)
        producer_max_batch_size=settings.producer_max_batch_bytes,
        # dead letters carry the original message (up to IOC_DEAD_LETTER_MAX_PAYLOAD) in base64
        producer_max_request_size=4 * settings.dead_letter_max_payload // 3 + 65536,
    )
    app.conf.ioc_fetch_max_wait_ms = settings.consumer_fetch_max_wait_ms
    app.transport.Consumer = _Consumer
    return app
