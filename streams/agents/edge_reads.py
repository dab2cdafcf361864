"""Edge (on-camera) plate reads -> validated, normalised plate reads."""

from __future__ import annotations

from ioc import metrics
from ioc.schemas import EdgePlateRead, EdgePlateReadBatch
from streams.context import WorkerContext
from streams.decoding import EventDecoder
from streams.reads import InvalidPlateTextError, read_from_edge


def register(ctx: WorkerContext) -> None:
    home = ctx.settings.home_province
    decoder = EventDecoder(EdgePlateRead, EdgePlateReadBatch, lambda b: b.reads)

    @ctx.app.agent(ctx.topics.edge_plate_reads, name="normalise-edge-reads")
    async def normalise_edge_reads(stream):  # noqa: ANN001 - Faust stream
        async for batch in ctx.decoded_batches(stream, decoder.decode):
            reads, done = [], []
            for message, edges in batch:
                unknown = [e.camera_id for e in edges if not await ctx.is_known_camera(e.camera_id)]
                if unknown:
                    await ctx.dead_letters.publish(message, "unknown_camera", ", ".join(sorted(set(unknown))))
                    continue
                for edge in edges:
                    ctx.saw_camera(edge.camera_id, edge.captured_at)
                try:
                    reads += [read_from_edge(edge, home_province=home) for edge in edges]
                except InvalidPlateTextError as exc:
                    # The whole message is dead-lettered with its original bytes, so a
                    # gateway can resend it corrected; valid reads are not half-applied.
                    await ctx.dead_letters.publish(message, "invalid_event", str(exc))
                    continue
                done.append(message)
            await ctx.send_plate_reads(reads)
            metrics.PLATES_READ.labels("edge").inc(len(reads))
            for message in done:
                metrics.MESSAGES_STORED.labels(message.topic).inc()
