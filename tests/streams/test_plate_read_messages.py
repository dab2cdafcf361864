"""Plate reads published as batch messages: at most 200 reads and at most 900 kB each, the reads in
their order. Edge envelopes of 200 reads with crops of a few kB came out over Kafka's default 1 MB
message limit, and the send was retried for ever."""

from __future__ import annotations

import os
import uuid

from ioc.schemas import Direction, PlateRead, PlateReadBatch, utcnow
from streams.context import PLATE_READS_MESSAGE_BYTES, plate_read_messages


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
