"""Count the messages in topics by reading them, for summaries and benchmarks.

Reading instead of asking for end offsets: Tansu's ListOffsets "latest" is
wrong for multi-message batches, and a count that matters should be exact.
"""

from __future__ import annotations

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from ioc.config import Settings

IDLE_S = 1.5


def events_in(payload: bytes | None) -> int:
    """Events carried by one message: a batch envelope's items, else one."""
    if payload and payload.startswith(b"{"):
        body = orjson.loads(payload)
        for key in ("reads", "readings"):
            if isinstance(body.get(key), list):
                return len(body[key])
    return 1


async def count_messages(
    settings: Settings, topics: list[str], *, batched: frozenset[str] = frozenset()
) -> dict[str, int]:
    """Messages per topic; for ``batched`` topics, the events inside them."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        group_id=None,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or await _partitions(consumer, topic))
        ]
        counts = dict.fromkeys(topics, 0)
        if not partitions:
            return counts
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        while True:
            batch = await consumer.getmany(timeout_ms=int(IDLE_S * 1000), max_records=10_000)
            if not batch:
                return counts
            for tp, records in batch.items():
                if tp.topic in batched:
                    counts[tp.topic] += sum(events_in(r.value) for r in records)
                else:
                    counts[tp.topic] += len(records)
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public call
    return consumer.partitions_for_topic(topic) or set()
