"""Camera frames -> plate reads (through the recogniser in a thread pool), stored and matched."""

from __future__ import annotations

import asyncio

from faust.types import Message

from detectors.jpeg import UndecodableImageError
from ioc.schemas import CameraFrame, PlateRead
from ioc.storage.cameras import Camera
from streams.context import WorkerContext
from streams.decoding import decode_event
from streams.plate_read_sink import store_reads
from streams.reads import reads_from_frame
from streams.tables import WatchlistIndex


class RecognitionStopped(RuntimeError):
    """Frames of a batch were not recognised because the worker is stopping."""


def decode_frame(payload: bytes | None) -> list[CameraFrame]:
    return [decode_event(CameraFrame, payload)]


async def recognize_batch(
    ctx: WorkerContext, watchlist: WatchlistIndex, decoded: list[tuple[Message, list[CameraFrame]]]
) -> None:
    batch = []
    for message, (frame,) in decoded:
        if await ctx.is_known_camera(frame.camera_id):
            ctx.saw_camera(frame.camera_id, frame.captured_at, message)
            batch.append((message, frame))
        else:
            await ctx.dead_letters.publish(message, "unknown_camera", frame.camera_id)
    cameras = await ctx.cameras()  # after the checks, which may have read the registry again
    # All frames of the batch run in parallel on the pool, each as closely as its camera is set
    # to be looked at; the batch size bounds the work in flight (back-pressure on the consumer).
    results = await asyncio.gather(*(
        ctx.recognition.recognize(frame.jpeg, look_closer=_look_closer(cameras.get(frame.camera_id)))
        for _, frame in batch
    ), return_exceptions=True)
    if ctx.closing and any(isinstance(r, BaseException) for r in results):
        # the recogniser closed under the batch (frames cancelled, or refused by the stopped pool):
        # the shutdown's doing, not the frames'; the partitions' next owner reads them again
        raise RecognitionStopped(f"the worker is stopping with {len(batch)} frames in recognition")
    reads: list[tuple[Message, list[PlateRead]]] = []
    for (message, frame), result in zip(batch, results, strict=True):
        if isinstance(result, UndecodableImageError):
            await ctx.dead_letters.publish(message, "undecodable_image", str(result))
        elif isinstance(result, BaseException):
            await ctx.dead_letters.publish(message, "processing_error", repr(result))
        else:
            reads.append((message, reads_from_frame(frame, result.plates, result.crops_jpeg)))
    refused = await store_reads(ctx, watchlist, reads)  # counts the reads new to the database
    ctx.count_stored(m for m, _ in reads if id(m) not in refused)


def _look_closer(camera: Camera | None) -> str | None:
    """The camera's own look-closer setting; None (the worker's) for a camera not registered."""
    return None if camera is None else camera.look_closer


def register(ctx: WorkerContext, watchlist: WatchlistIndex) -> None:
    @ctx.app.agent(ctx.topics.frames, name="recognize-frames")
    async def recognize_frames(stream):  # noqa: ANN001 - Faust stream
        await ctx.consume(stream, decode_frame, lambda c, b: recognize_batch(c, watchlist, b),
                          size=ctx.settings.recognition_queue)
