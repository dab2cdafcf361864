"""Plate reads published as batch messages: at most 200 reads and at most 900 kB each, the reads in
their order. Edge envelopes of 200 reads with crops of a few kB came out over Kafka's default 1 MB
message limit, and the send was retried for ever."""

from __future__ import annotations

import asyncio
import os
import uuid
from types import SimpleNamespace

import pytest
from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError
from faust.exceptions import ProducerSendError

from ioc.config import Settings
from ioc.schemas import Direction, PlateRead, PlateReadBatch, utcnow
from streams.context import PLATE_READS_MESSAGE_BYTES, WorkerContext, plate_read_messages


def _reads(count: int, crop_bytes: int) -> list[PlateRead]:
    source = uuid.uuid4()
    return [PlateRead(read_id=PlateRead.derive_id(source, i), source="edge", source_event_id=source,
                      camera_id="CP01-CAM1", checkpoint_id="CP01", direction=Direction.IN,
                      captured_at=utcnow(),
                      text="29A12345", display="29A-123.45", confidence=0.9,
                      crop_jpeg=os.urandom(crop_bytes) if crop_bytes else None)
            for i in range(count)]  # fmt: skip


def _ids(messages: list[bytes]) -> list[uuid.UUID]:
    batches = [PlateReadBatch.model_validate_json(message) for message in messages]
    return [read.read_id for batch in batches for read in batch.reads]


def test_reads_with_large_crops_are_split_under_the_limit_in_order() -> None:
    reads = _reads(200, crop_bytes=3_700)
    messages = plate_read_messages(reads)
    assert len(messages) > 1
    assert all(len(message) <= PLATE_READS_MESSAGE_BYTES <= 900_000 for message in messages)  # Kafka: 1 MB
    assert _ids(messages) == [read.read_id for read in reads]


def test_small_reads_stay_one_message() -> None:
    reads = _reads(200, crop_bytes=0)
    messages = plate_read_messages(reads)
    assert len(messages) == 1 and _ids(messages) == [read.read_id for read in reads]


def test_a_read_larger_than_the_limit_goes_alone() -> None:
    reads = _reads(3, crop_bytes=700_000)
    messages = plate_read_messages(reads)
    assert len(messages) == 3 and _ids(messages) == [read.read_id for read in reads]


class _RefusingProducer:
    """Fails each send with the next of ``errors`` (then accepts), counting the tries."""

    def __init__(self, errors: list[BaseException]) -> None:
        self.errors, self.tries = errors, 0

    async def send(self, *_: object) -> asyncio.Future:
        self.tries += 1
        done = asyncio.get_running_loop().create_future()
        if self.errors:
            done.set_exception(self.errors.pop(0))
        else:
            done.set_result(None)
        return done


def _worker(producer: _RefusingProducer) -> WorkerContext:
    return WorkerContext(settings=Settings(kafka_bootstrap="127.0.0.1:9"),
                         app=SimpleNamespace(producer=producer), topics=None, dead_letters=None,
                         recognition=None)


async def test_a_send_the_broker_will_always_refuse_fails_the_batch_at_once() -> None:
    """A single read too large for any message (a gateway's huge crop) was retried every 10 s for
    ever, its agent's partitions stopped; it fails now, and the batch is dead-lettered. A broker
    away for a moment is still waited for."""
    topic = SimpleNamespace(get_topic_name=lambda: "ioc.plate-reads")
    away = _RefusingProducer([KafkaConnectionError("broker away"), KafkaConnectionError("broker away")])
    await _worker(away).send_many(topic, [("cam", b"{}")])
    assert away.tries == 3
    for refusal in (MessageSizeTooLargeError("too large"), _wrapped(MessageSizeTooLargeError("too large"))):
        too_large = _RefusingProducer([refusal] * 5)
        with pytest.raises((MessageSizeTooLargeError, ProducerSendError)):
            await asyncio.wait_for(_worker(too_large).send_many(topic, [("cam", b"{}")]), 5)
        assert too_large.tries == 1


def _wrapped(error: BaseException) -> ProducerSendError:
    """As Faust's producer raises it."""
    try:
        raise ProducerSendError(f"Error while sending: {error!r}") from error
    except ProducerSendError as wrapped:
        return wrapped
