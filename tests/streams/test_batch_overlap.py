"""How an agent's batches overlap (``WorkerContext.consume``): the next batch starts
while one waits, what follows ``earlier_batches_done`` runs in the order taken, and a
take is finished before Faust is asked for the next one (which acknowledges it).

The stream is a stand-in for Faust's: only ``take_events``, with Faust's contract that
asking for the next take acknowledges the previous one. The real worker is covered by
the pipeline and reliability tests (order on the plate-reads topic, SIGKILL, outages).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from types import SimpleNamespace

import numpy as np
import pytest
from faust.types import Message

from detectors.jpeg import encode_jpeg
from ioc.config import Settings
from ioc.schemas import CameraFrame, Direction, utcnow
from ioc.storage.migrations import migrate
from streams.agents.frames import recognize_batch
from streams.context import WorkerContext
from streams.plate_read_sink import _together
from streams.recognition_pool import RecognitionPool


class TakesStream:
    def __init__(self, takes: list[list[int]], log: list[tuple[str, int]]) -> None:
        self._takes, self._log = takes, log

    async def take_events(self, size: int, *, within: float) -> AsyncIterator[list[SimpleNamespace]]:
        for index, take in enumerate(self._takes):
            self._log.append(("take", index))
            yield [SimpleNamespace(message=Message("t", 0, n, time.time(), 0, [], None, n, None))
                   for n in take]


class RecordingDeadLetters:
    def __init__(self) -> None:
        self.published: list[tuple[object, str]] = []

    async def publish(self, message: object, reason: str, error: str) -> None:
        self.published.append((message.value, reason))


def _context(dead_letters: RecordingDeadLetters, in_flight: int = 2) -> WorkerContext:
    settings = Settings(kafka_bootstrap="127.0.0.1:9", sink_batch_events=2, sink_batches_in_flight=in_flight)
    return WorkerContext(settings=settings, app=None, topics=None, dead_letters=dead_letters,
                         recognition=None)


@pytest.mark.parametrize("in_flight", [1, 2, 3])
async def test_next_batch_starts_while_one_waits_and_ordered_parts_keep_take_order(in_flight: int) -> None:
    log: list[tuple[str, int]] = []
    ctx = _context(RecordingDeadLetters(), in_flight)

    async def handler(_: WorkerContext, batch: list) -> None:
        first = batch[0][1][0]
        log.append(("start", first))
        await asyncio.sleep(0.05 if first in (0, 6) else 0)  # these batches' database is slow
        await ctx.earlier_batches_done()
        log.append(("ordered", first))

    stream = TakesStream([[0, 1, 2, 3, 4, 5], [6, 7, 8, 9]], log)
    await ctx.consume(stream, lambda value: [value], handler)

    # events 0-5 are three batches of two; up to `in_flight` start before the first is done
    started_early = [n for n in (2, 4) if log.index(("start", n)) < log.index(("ordered", 0))]
    assert started_early == [2, 4][: in_flight - 1]
    assert [n for kind, n in log if kind == "ordered"] == [0, 2, 4, 6, 8]
    # the second take is asked for (acknowledging the first) only once the first is done
    assert log.index(("take", 1)) > log.index(("ordered", 4))
    assert (log.index(("start", 8)) < log.index(("ordered", 6))) == (in_flight > 1)


async def test_a_failing_batch_is_dead_lettered_and_does_not_hold_up_the_next() -> None:
    log: list[tuple[str, int]] = []
    dead = RecordingDeadLetters()
    ctx = _context(dead)

    async def handler(_: WorkerContext, batch: list) -> None:
        first = batch[0][1][0]
        if first == 0:
            await asyncio.sleep(0.02)
            raise RuntimeError("a bug in this batch")
        await ctx.earlier_batches_done()
        log.append(("ordered", first))

    await ctx.consume(TakesStream([[0, 1, 2, 3, 4, 5]], log), lambda value: [value], handler)

    assert dead.published == [(0, "processing_error"), (1, "processing_error")]
    assert [n for kind, n in log if kind == "ordered"] == [2, 4]


async def test_a_batch_failing_once_the_worker_stops_is_left_for_replay_not_dead_lettered() -> None:
    """Faust closes the context (recogniser, pool) while agents still work on batches: the
    callbacks (the intake's, dropping the acks of what is in flight) run before anything
    closes, and a batch that fails from then on is replayed by the next owner, not dead-lettered."""
    dead = RecordingDeadLetters()
    ctx = _context(dead)
    order: list[str] = []
    ctx.recognition = SimpleNamespace(close=lambda: order.append("recogniser closed"))
    ctx.before_close(lambda: order.append("acks dropped"))
    working, closed = asyncio.Event(), asyncio.Event()

    async def handler(_: WorkerContext, batch: list) -> None:
        working.set()
        await closed.wait()
        raise RuntimeError("cannot schedule new futures after shutdown")

    consuming = asyncio.create_task(ctx.consume(TakesStream([[0, 1]], []), lambda value: [value], handler))
    await asyncio.wait_for(working.wait(), 5)
    await ctx.close()
    closed.set()
    await asyncio.wait_for(consuming, 5)
    assert order == ["acks dropped", "recogniser closed"]
    assert dead.published == []


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_frames_the_shutdown_stops_in_recognition_are_left_for_replay(database_url: str) -> None:
    """The recogniser closes while a batch's frames wait for it: they come back cancelled, or
    refused by the stopped pool. Replayed by the partitions' next owner, not dead-lettered: a
    deploy would otherwise fill the dead letters with good frames."""
    await migrate(database_url)
    dead = RecordingDeadLetters()
    settings = Settings(kafka_bootstrap="127.0.0.1:9", database_url=database_url, require_known_cameras=False)
    ctx = WorkerContext(settings=settings, app=None, topics=None, dead_letters=dead,
                        recognition=RecognitionPool(threads=1, home_province="20"))
    jpeg = encode_jpeg(np.full((720, 1280, 3), 120, np.uint8))
    frames = [(Message("frames", 0, i, 0.0, 0, [], b"cam", b"", None),
               [CameraFrame(camera_id="cam", checkpoint_id="cp", direction=Direction.IN, captured_at=utcnow(),
                            jpeg=jpeg)])
              for i in range(12)]
    working = asyncio.create_task(ctx.process(frames, lambda c, batch: recognize_batch(c, None, batch)))
    while ctx.recognition._pending < len(frames):  # noqa: SLF001 - every frame handed to the pool
        await asyncio.sleep(0.01)
    await ctx.close()
    await asyncio.wait_for(working, 30)
    assert dead.published == []


async def test_where_one_overlapped_step_fails_the_other_is_stopped() -> None:
    """A plate-reads batch records incidents and publishes its reads at once: where one fails,
    the batch is dead-lettered whole, so the other must not go on (reads published as well)."""
    log: list[str] = []

    async def fails() -> None:
        await asyncio.sleep(0.01)
        raise RuntimeError("a bug")

    async def publishes() -> None:
        try:
            await asyncio.sleep(1)
            log.append("published")
        except asyncio.CancelledError:
            log.append("stopped")
            raise

    with pytest.raises(RuntimeError, match="a bug"):
        await _together(fails(), publishes())
    await asyncio.sleep(0.05)
    assert log == ["stopped"]
