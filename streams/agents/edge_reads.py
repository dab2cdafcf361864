"""Edge (on-camera) plate reads -> validated, normalised plate reads."""

from __future__ import annotations

from ioc import metrics
from ioc.schemas import EdgePlateRead
from streams.context import WorkerContext
from streams.reads import InvalidPlateTextError, read_from_edge


def register(ctx: WorkerContext) -> None:
    app, topics = ctx.app, ctx.topics
    home = ctx.settings.home_province

    @app.agent(topics.edge_plate_reads, name="normalise-edge-reads")
    async def normalise_edge_reads(stream):  # noqa: ANN001 - Faust stream
        async for batch in ctx.decoded_batches(stream, EdgePlateRead):
            for message, edge in batch:
                try:
                    read = read_from_edge(edge, home_province=home)
                except InvalidPlateTextError as exc:
                    await ctx.dead_letters.publish(message, "invalid_event", str(exc))
                    continue
                await ctx.send(topics.plate_reads, edge.camera_id, read)
                metrics.PLATES_READ.labels("edge").inc()
                metrics.MESSAGES_STORED.labels(message.topic).inc()
