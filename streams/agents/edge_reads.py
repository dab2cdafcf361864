"""Edge (on-camera) plate reads -> validated, normalised plate reads."""

from __future__ import annotations

from faust.types import Message

from ioc import metrics
from ioc.schemas import EdgePlateRead, EdgePlateReadBatch
from streams.context import WorkerContext
from streams.decoding import EventDecoder
from streams.reads import InvalidPlateTextError, read_from_edge

decoder = EventDecoder(EdgePlateRead, EdgePlateReadBatch, lambda b: b.reads)


async def normalise_batch(ctx: WorkerContext, batch: list[tuple[Message, list[EdgePlateRead]]]) -> None:
    reads, done = [], []
    for message, edges in batch:
        unknown = sorted({e.camera_id for e in edges if not await ctx.is_known_camera(e.camera_id)})
        if unknown:
            await ctx.dead_letters.publish(message, "unknown_camera", ", ".join(unknown))
            continue
        invalid = []
        for index, edge in enumerate(edges):
            ctx.saw_camera(edge.camera_id, edge.captured_at)
            try:
                reads.append(read_from_edge(edge, home_province=ctx.settings.home_province))
            except InvalidPlateTextError as exc:
                invalid.append(f"read {index}: {exc}")
        if invalid:
            # An on-camera misread must not hold back the good reads of its envelope: those
            # are stored, and the message goes to the dead letter with its original bytes
            # (replaying it is harmless: stored reads are idempotent).
            await ctx.dead_letters.publish(message, "invalid_event", "; ".join(invalid))
        else:
            done.append(message)
    await ctx.send_plate_reads(reads)
    metrics.PLATES_READ.labels("edge").inc(len(reads))
    for message in done:
        metrics.MESSAGES_STORED.labels(message.topic).inc()


def register(ctx: WorkerContext) -> None:
    @ctx.app.agent(ctx.topics.edge_plate_reads, name="normalise-edge-reads")
    async def normalise_edge_reads(stream):  # noqa: ANN001 - Faust stream
        async for batch in ctx.decoded_batches(stream, decoder.decode):
            await ctx.process(batch, normalise_batch)
