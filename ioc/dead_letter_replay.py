"""Read the dead-letter topic and send chosen letters' original messages back to their topics.

A message is dead-lettered with its original key and bytes (``ioc.schemas.DeadLetter``), so
once its cause is fixed (the camera registered, the workers upgraded, the database back) it
can be processed again; stored reads are idempotent, so a message replayed twice is stored
once. The topic is read to its end first, then replayed: a letter that fails again is
dead-lettered anew, after the read, and is not replayed in a loop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition
from pydantic import ValidationError

from ioc.config import Settings
from ioc.schemas import DeadLetter

IDLE_S = 1.5  # the topic is read until it has been quiet this long (see ioc.topic_counts)


@dataclass(frozen=True, slots=True)
class Replayed:
    sent: int
    truncated: int  # letters whose payload was cut to IOC_DEAD_LETTER_MAX_PAYLOAD: not sent
    elsewhere: int  # letters from a topic that is not a worker's source (this deployment's): not sent


def source_topics(settings: Settings) -> set[str]:
    """The topics whose messages workers dead-letter: the only ones replayed to."""
    t = settings.topics
    return {t.frames, t.edge_plate_reads, t.sensor_readings}


async def read_dead_letters(
    settings: Settings, keep: Callable[[DeadLetter], bool]
) -> tuple[list[DeadLetter], int]:
    """The letters on the dead-letter topic that ``keep`` accepts, oldest first per partition,
    and how many messages there were not letters at all."""
    topic = settings.topics.dead_letter
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                max_partition_fetch_bytes=16 * 1024 * 1024)  # fmt: skip
    await consumer.start()
    try:
        await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public call
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            return [], 0
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        letters, unreadable = [], 0
        while batch := await consumer.getmany(timeout_ms=int(IDLE_S * 1000), max_records=1000):
            for records in batch.values():
                for record in records:
                    try:
                        letter = DeadLetter.model_validate_json(record.value or b"")
                    except ValidationError:
                        unreadable += 1
                        continue
                    if keep(letter):
                        letters.append(letter)
        return letters, unreadable
    finally:
        await consumer.stop()


async def replay(settings: Settings, letters: Iterable[DeadLetter]) -> Replayed:
    """Send each letter's original key and payload to its source topic, one at a time in order
    (a camera's frames keep theirs); not truncated payloads, nor letters of other topics."""
    sources = source_topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                                max_request_size=settings.dead_letter_max_payload + 65536)  # fmt: skip
    await producer.start()
    sent = truncated = elsewhere = 0
    try:
        for letter in letters:
            if letter.source_topic not in sources:
                elsewhere += 1
            elif letter.payload_truncated:
                truncated += 1
            else:
                await producer.send_and_wait(letter.source_topic, letter.payload, key=letter.key)
                sent += 1
    finally:
        await producer.stop()
    return Replayed(sent=sent, truncated=truncated, elsewhere=elsewhere)
