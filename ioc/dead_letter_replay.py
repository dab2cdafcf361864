"""Read the dead-letter topic and send chosen letters' original messages back to their topics.

A message is dead-lettered with its original key and bytes (``ioc.schemas.DeadLetter``), so
once its cause is fixed (the camera registered, the workers upgraded, the database back) it
can be processed again; stored reads are idempotent, so a message replayed twice is stored
once. The topic is read once, up to where it ended when the read began, sending as it goes:
letters are never all held at once (an hour of a forgotten camera's frames is gigabytes), and a
letter that fails again is dead-lettered anew past that end, so it is not replayed in a loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition
from pydantic import ValidationError

from ioc.config import Settings
from ioc.schemas import DeadLetter

logger = logging.getLogger(__name__)

POLL_S = 1.5  # one wait for records
STALL_S = 60.0  # no record this long while partitions are unfinished: the read gives up
ENDS_TIMEOUT_S = 30.0  # for the first fetch of every partition, which tells where it ends


class UnfinishedRead(RuntimeError):
    """The read stopped before the end of some partitions: what it sent stays sent, and reading
    again is safe (stored reads are idempotent)."""


@dataclass(frozen=True, slots=True)
class Replayed:
    chosen: int
    sent: int
    truncated: int  # letters whose payload was cut to IOC_DEAD_LETTER_MAX_PAYLOAD: not sent
    elsewhere: int  # letters from a topic that is not a worker's source (this deployment's): not sent
    unreadable: int  # messages on the topic that are not dead letters
    unfinished: str | None = None  # why the read stopped before the topic's end, if it did


async def dead_letters(settings: Settings) -> AsyncIterator[DeadLetter | None]:
    """Each message of the dead-letter topic from its start up to its end when the read began,
    oldest first per partition (``None``: not a dead letter)."""
    topic = settings.topics.dead_letter
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_servers(), group_id=None,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                max_partition_fetch_bytes=16 * 1024 * 1024)  # fmt: skip
    try:
        await consumer.start()  # in the try: one that cannot reach the broker is closed too
        await consumer._client.force_metadata_update()  # noqa: SLF001 - aiokafka has no public call
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            return
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await _ends(consumer, partitions)
        unread = {tp for tp in partitions if ends[tp] > 0}
        consumer.pause(*(tp for tp in partitions if tp not in unread))
        last_record = time.monotonic()
        while unread and time.monotonic() - last_record < STALL_S:
            # a fetch of large letters over a slow link can take longer than one poll
            batch = await consumer.getmany(timeout_ms=int(POLL_S * 1000), max_records=200)
            if batch:
                last_record = time.monotonic()
            for tp, records in batch.items():
                for record in records:
                    if record.offset >= ends[tp]:
                        break
                    yield _letter(record.value)
            # every unfinished partition, not only those that brought records: one that retention
            # emptied (its start at its end) brings none and is at its end at once
            for tp in list(unread):
                if await consumer.position(tp) >= ends[tp]:
                    unread.discard(tp)
                    consumer.pause(tp)
        if unread:
            raise UnfinishedRead(f"{topic}: nothing came for {STALL_S:g} s before the end of partitions "
                                 f"{sorted(tp.partition for tp in unread)}")
    finally:
        await consumer.stop()


async def _ends(consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
    """Each partition's end offset from the first fetch the consumer makes of it. Not ListOffsets
    (``end_offsets``): Tansu's "latest" falls one batch short (see ioc.topic_counts)."""
    deadline = time.monotonic() + ENDS_TIMEOUT_S
    while any(consumer.highwater(tp) is None for tp in partitions):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no fetch of {partitions[0].topic} answered in {ENDS_TIMEOUT_S:g} s")
        await asyncio.sleep(0.05)
    return {tp: consumer.highwater(tp) for tp in partitions}


def _letter(value: bytes | None) -> DeadLetter | None:
    try:
        return DeadLetter.model_validate_json(value or b"")
    except ValidationError:
        return None


async def replay(settings: Settings, chosen: Callable[[DeadLetter], bool]) -> Replayed:
    """Send the original key and payload of each ``chosen`` letter back to its source topic,
    one at a time in the topic's order (a camera's frames keep theirs); not truncated payloads,
    nor letters of other topics."""
    sources = settings.topics.sources  # the only topics workers dead-letter from
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_servers(), acks="all",
                                max_request_size=settings.dead_letter_max_payload + 65536)  # fmt: skip
    counts = dict.fromkeys(("chosen", "sent", "truncated", "elsewhere", "unreadable"), 0)
    unfinished = None
    try:
        await producer.start()
        async for letter in dead_letters(settings):
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
    except UnfinishedRead as exc:
        unfinished = str(exc)
    finally:
        await producer.stop()
    return Replayed(**counts, unfinished=unfinished)
