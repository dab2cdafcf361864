"""A replayed message stores nothing twice, and must count nothing twice: its reads already stored
are no new vehicles, no new plate reads, and no capture-to-store latency (an old read's capture
time read as minutes of latency). The message itself is still taken in and stored, so "taken in =
stored + dead-lettered" holds. Through the edge agent and the real sink, on a real database."""

from __future__ import annotations

import time
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import Message
from prometheus_client import REGISTRY

from ioc.config import Settings
from ioc.schemas import CameraFrame, Direction, EdgePlateRead, PlateRead, utcnow
from ioc.storage.cameras import upsert_camera
from ioc.storage.database import connect
from ioc.storage.migrations import migrate
from streams.agents.edge_reads import normalise_batch
from streams.agents.frames import recognize_batch
from streams.context import WorkerContext

TOPIC = "edge-plate-reads"


class _Context(WorkerContext):
    """A worker's context with the reads' topic recorded instead of sent."""

    published: list[PlateRead]

    async def send_plate_reads(self, batch: list[tuple[Message, list[PlateRead]]]) -> None:
        self.published.extend(read for _, reads in batch for read in reads)


class _DeadLetters:
    def __init__(self) -> None:
        self.reasons: list[str] = []

    async def publish(self, message: object, reason: str, error: str) -> None:
        self.reasons.append(reason)


class _NoWatchlist:
    async def ready(self) -> None:
        return None

    def matches(self, read: PlateRead) -> list[Any]:
        return []


class _Recogniser:
    """Two plates in every frame, as the recogniser reads them."""

    async def recognize(self, jpeg: bytes, *, look_closer: str | None = None) -> SimpleNamespace:
        plates = [SimpleNamespace(text=text, display=text, confidence=0.93, layout="one_line", colour="white",
                                  province=text[:2], out_of_province=False, bbox=(10, 20, 110, 60),
                                  candidates=[(text, 0.93)])
                  for text in ("20A11111", "20A22222")]
        return SimpleNamespace(plates=plates, crops_jpeg=[None, None])


def _context(database_url: str, kind: type[_Context] = _Context) -> _Context:
    settings = Settings(kafka_bootstrap="127.0.0.1:9", database_url=database_url)
    ctx = kind(settings=settings, app=None, topics=None, dead_letters=_DeadLetters(),
               recognition=_Recogniser())  # type: ignore[arg-type]
    ctx.published = []
    return ctx


def _envelope(*edges: EdgePlateRead) -> tuple[Message, list[EdgePlateRead]]:
    """A gateway's envelope as the edge agent gets it (decoded); a redelivery is the same bytes."""
    return Message(TOPIC, 0, 7, time.time(), 0, [], b"gateway-1", b"", None), list(edges)


def _edge(camera_id: str, checkpoint_id: str, text: str) -> EdgePlateRead:
    return EdgePlateRead(camera_id=camera_id, checkpoint_id=checkpoint_id, direction=Direction.IN,
                         captured_at=utcnow(), text=text, confidence=0.95)


def _total(name: str, **labels: str) -> float:
    """The sum of a metric's samples named ``name`` whose labels include ``labels``."""
    return sum(sample.value for family in REGISTRY.collect() for sample in family.samples
               if sample.name == name and labels.items() <= sample.labels.items())


def _rise(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: after[name] - before[name] for name in before}


def _counters(checkpoint: str, *, source: str = "edge", topic: str = TOPIC) -> dict[str, float]:
    return {
        "vehicles": _total("ioc_checkpoint_vehicles_total", checkpoint=checkpoint),
        "latencies": _total("ioc_event_store_latency_seconds_count"),
        "plates": _total("ioc_plates_read_total", source=source),
        "stored": _total("ioc_messages_stored_total", topic=topic),
    }


async def test_a_redelivered_envelope_counts_its_vehicles_once(database_url: str) -> None:
    """A rebalance delivers an envelope again: its reads are in the database already."""
    await migrate(database_url)
    checkpoint = f"RPL-{uuid.uuid4().hex[:8]}"
    camera = f"{checkpoint}-CAM1"
    async with await connect(database_url, autocommit=True) as conn:
        await upsert_camera(conn, camera, checkpoint)
    edges = [_edge(camera, checkpoint, text) for text in ("20A11111", "29A22222", "20B33333")]
    ctx = _context(database_url)
    try:
        before = _counters(checkpoint)
        await normalise_batch(ctx, _NoWatchlist(), [_envelope(*edges)])  # type: ignore[arg-type]
        once = _counters(checkpoint)
        await normalise_batch(ctx, _NoWatchlist(), [_envelope(*edges)])  # type: ignore[arg-type]
        twice = _counters(checkpoint)
    finally:
        await (await ctx.pool()).close()
    assert _rise(before, once) == {"vehicles": 3, "latencies": 3, "plates": 3, "stored": 1}
    assert _rise(once, twice) == {"vehicles": 0, "latencies": 0, "plates": 0, "stored": 1}, \
        "the redelivered reads were counted again"
    assert len(ctx.published) == 6, "the reads' topic is at least once: a redelivery publishes again"


async def test_a_dead_lettered_envelope_replayed_counts_only_what_it_left_out(database_url: str) -> None:
    """The documented fix for ``unknown_camera``: register the camera, replay the envelope. Its reads
    of the cameras known at first were stored then, and are counted then only."""
    await migrate(database_url)
    checkpoint = f"RPL-{uuid.uuid4().hex[:8]}"
    known, late = f"{checkpoint}-CAM1", f"{checkpoint}-CAM2"
    edges = [_edge(known, checkpoint, "20A11111"), _edge(known, checkpoint, "20A22222"),
             _edge(late, checkpoint, "29A33333")]
    ctx = _context(database_url)
    try:
        async with await connect(database_url, autocommit=True) as conn:
            await upsert_camera(conn, known, checkpoint)
            before = _counters(checkpoint)
            await normalise_batch(ctx, _NoWatchlist(), [_envelope(*edges)])  # type: ignore[arg-type]
            assert ctx.dead_letters.reasons == ["unknown_camera"]
            first = _counters(checkpoint)
            await upsert_camera(conn, late, checkpoint)
        await ctx.cameras(max_age_s=0)
        await normalise_batch(ctx, _NoWatchlist(), [_envelope(*edges)])  # type: ignore[arg-type]
        replayed = _counters(checkpoint)
    finally:
        await (await ctx.pool()).close()
    assert _rise(before, first) == {"vehicles": 2, "latencies": 2, "plates": 2, "stored": 0}
    assert _rise(first, replayed) == {"vehicles": 1, "latencies": 1, "plates": 1, "stored": 1}
    assert ctx.dead_letters.reasons == ["unknown_camera"], "the replay is stored whole"


async def test_a_redelivered_frame_counts_its_reads_once(database_url: str) -> None:
    """A frame camera's vehicles are its passages (counted elsewhere), but its reads and their
    capture-to-store latency are counted as an edge camera's are: once."""
    await migrate(database_url)
    checkpoint = f"RPL-{uuid.uuid4().hex[:8]}"
    camera = f"{checkpoint}-CAM1"
    async with await connect(database_url, autocommit=True) as conn:
        await upsert_camera(conn, camera, checkpoint)
    frame = CameraFrame(camera_id=camera, checkpoint_id=checkpoint, direction=Direction.IN,
                        captured_at=utcnow(), jpeg=b"\xff\xd8\xff\xd9")
    ctx = _context(database_url)
    try:
        before = _counters(checkpoint, source="camera", topic="camera-frames")
        for _ in range(2):
            message = Message("camera-frames", 0, 3, time.time(), 0, [], camera.encode(), b"", None)
            await recognize_batch(ctx, _NoWatchlist(), [(message, [frame])])  # type: ignore[arg-type]
        after = _counters(checkpoint, source="camera", topic="camera-frames")
    finally:
        await (await ctx.pool()).close()
    assert _rise(before, after) == {"vehicles": 0, "latencies": 2, "plates": 2, "stored": 2}
    assert ctx.dead_letters.reasons == []


class _SendFailsOnce(_Context):
    """The reads' topic refuses the first send (a broker away): the batch comes again."""

    async def send_plate_reads(self, batch: list[tuple[Message, list[PlateRead]]]) -> None:
        if not self.published:
            self.published.append(None)  # type: ignore[arg-type]
            raise ConnectionError("broker away")
        await super().send_plate_reads(batch)


async def test_reads_stored_before_a_failed_send_are_counted_once_when_the_batch_comes_again(
    database_url: str,
) -> None:
    """The reads are committed, then the send to the reads' topic fails and the batch is taken
    again (a retry, or a replay from the committed offset): they are new to nobody then, so they
    must have been counted when stored, not after the send."""
    await migrate(database_url)
    checkpoint = f"RPL-{uuid.uuid4().hex[:8]}"
    camera = f"{checkpoint}-CAM1"
    async with await connect(database_url, autocommit=True) as conn:
        await upsert_camera(conn, camera, checkpoint)
    edges = [_edge(camera, checkpoint, text) for text in ("20A44444", "29A55555")]
    ctx = _context(database_url, _SendFailsOnce)
    try:
        before = _counters(checkpoint)
        with pytest.raises(ConnectionError):
            await normalise_batch(ctx, _NoWatchlist(), [_envelope(*edges)])  # type: ignore[arg-type]
        await normalise_batch(ctx, _NoWatchlist(), [_envelope(*edges)])  # type: ignore[arg-type]
        after = _counters(checkpoint)
    finally:
        await (await ctx.pool()).close()
    assert _rise(before, after) == {"vehicles": 2, "latencies": 2, "plates": 2, "stored": 1}
