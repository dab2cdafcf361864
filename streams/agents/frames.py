"""Camera frames -> plate reads, through the recogniser in a thread pool."""

from __future__ import annotations

import asyncio

from detectors.jpeg import UndecodableImageError
from ioc import metrics
from ioc.schemas import CameraFrame
from streams.context import WorkerContext
from streams.reads import reads_from_frame


def register(ctx: WorkerContext) -> None:
    app, topics = ctx.app, ctx.topics

    @app.agent(topics.frames, name="recognize-frames")
    async def recognize_frames(stream):  # noqa: ANN001 - Faust stream
        async for batch in ctx.decoded_batches(stream, CameraFrame):
            # All frames of the batch run in parallel on the pool; the batch size
            # bounds the work in flight (back-pressure on the consumer).
            results = await asyncio.gather(
                *(ctx.recognition.recognize(frame.jpeg) for _, frame in batch),
                return_exceptions=True,
            )
            for (message, frame), result in zip(batch, results, strict=True):
                if isinstance(result, UndecodableImageError):
                    await ctx.dead_letters.publish(message, "undecodable_image", str(result))
                    continue
                if isinstance(result, BaseException):
                    await ctx.dead_letters.publish(message, "processing_error", repr(result))
                    continue
                for read in reads_from_frame(frame, result.plates, result.crops_jpeg):
                    await ctx.send(topics.plate_reads, frame.camera_id, read)
                    metrics.PLATES_READ.labels("camera").inc()
                metrics.MESSAGES_STORED.labels(message.topic).inc()
