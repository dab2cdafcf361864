"""Read the dead-letter topic and send chosen letters' original messages back to their topics.

A message is dead-lettered with its original key and bytes (``ioc.schemas.DeadLetter``), so
once its cause is fixed (the camera registered, the workers upgraded, the database back) it
can be processed again; stored reads are idempotent, so a message replayed twice is stored
once. A replay reads the topic twice: once to its end, to note where that is, then again up to
there, sending as it goes. Letters are never all held at once (an hour of a forgotten camera's
frames is gigabytes), and a letter that fails again is dead-lettered anew past that end: it is
not replayed in a loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition
from pydantic import ValidationError

from ioc.config import Settings
from ioc.schemas import DeadLetter

IDLE_S = 1.5  # the topic is read until it has been quiet this long (see ioc.topic_counts)


@dataclass(frozen=True, slots=True)
class Replayed:
    chosen: int
    sent: int
    truncated: int  # letters whose payload was cut to IOC_DEAD_LETTER_MAX_PAYLOAD: not sent
    elsewhere: int  # letters from a topic that is not a worker's source (this deployment's): not sent
    unreadable: int  # messages on the topic that are not dead letters


def source_topics(settings: Settings) -> set[str]:
    """The topics whose messages workers dead-letter: the only ones replayed to."""
    t = settings.topics
    return {t.frames, t.edge_plate_reads, t.sensor_readings}


async def dead_letters(
    settings: Settings, *, until: Mapping[int, int] | None = None
) -> AsyncIterator[tuple[int, int, DeadLetter | None]]:
    """``(partition, offset, letter)`` for each message of the dead-letter topic from its start,
    oldest first per partition (``None``: not a dead letter), until it has been quiet for
    :data:`IDLE_S`, or, given ``until``, up to (not including) those offsets per partition."""
    topic = settings.topics.dead_letter
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                max_partition_fetch_bytes=16 * 1024 * 1024)  # fmt: skip
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public call
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
                      if until is None or until.get(p, 0) > 0]  # fmt: skip
        if not partitions:
            return
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        open_partitions = {tp.partition for tp in partitions}
        while open_partitions and (batch := await consumer.getmany(timeout_ms=int(IDLE_S * 1000),
                                                                   max_records=200)):  # fmt: skip
            for tp, records in batch.items():
                for record in records:
                    if until is not None and record.offset >= until[tp.partition]:
                        break
                    yield tp.partition, record.offset, _letter(record.value)
                if until is not None and await consumer.position(tp) >= until[tp.partition]:
                    open_partitions.discard(tp.partition)
                    consumer.pause(tp)
    finally:
        await consumer.stop()


def _letter(value: bytes | None) -> DeadLetter | None:
    try:
        return DeadLetter.model_validate_json(value or b"")
    except ValidationError:
        return None


async def replay(settings: Settings, chosen: Callable[[DeadLetter], bool]) -> Replayed:
    """Send the original key and payload of each ``chosen`` letter back to its source topic,
    one at a time in the topic's order (a camera's frames keep theirs); not truncated payloads,
    nor letters of other topics."""
    ends: dict[int, int] = {}
    async for partition, offset, _ in dead_letters(settings):
        ends[partition] = offset + 1
    sources = source_topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                                max_request_size=settings.dead_letter_max_payload + 65536)  # fmt: skip
    await producer.start()
    counts = dict.fromkeys(("chosen", "sent", "truncated", "elsewhere", "unreadable"), 0)
    try:
        async for _, _, letter in dead_letters(settings, until=ends):
            if letter is None:
                counts["unreadable"] += 1
                continue
            if not chosen(letter):
                continue
            counts["chosen"] += 1
            if letter.source_topic not in sources:
                counts["elsewhere"] += 1
            elif letter.payload_truncated:
                counts["truncated"] += 1
            else:
                await producer.send_and_wait(letter.source_topic, letter.payload, key=letter.key)
                counts["sent"] += 1
    finally:
        await producer.stop()
    return Replayed(**counts)
