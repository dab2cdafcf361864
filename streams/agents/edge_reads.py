"""Edge (on-camera) plate reads -> validated, normalised plate reads, stored and matched."""

from __future__ import annotations

from faust.types import Message

from ioc.schemas import EdgePlateRead, EdgePlateReadBatch, PlateRead, utcnow
from streams.context import WorkerContext
from streams.decoding import EventDecoder
from streams.plate_read_sink import store_reads
from streams.reads import InvalidPlateTextError, read_from_edge
from streams.tables import WatchlistIndex

decoder = EventDecoder(EdgePlateRead, EdgePlateReadBatch, "reads")


async def normalise_batch(
    ctx: WorkerContext, watchlist: WatchlistIndex, batch: list[tuple[Message, list[EdgePlateRead]]]
) -> None:
    normalised: list[tuple[Message, list[PlateRead]]] = []
    done = []
    for message, edges in batch:
        unknown = sorted({e.camera_id for e in edges if not await ctx.is_known_camera(e.camera_id)})
        invalid, reads = [], []
        home, now = ctx.settings.home_province, utcnow()
        for index, edge in enumerate(edges):
            if edge.camera_id in unknown:
                continue
            ctx.saw_camera(edge.camera_id, edge.captured_at, message)
            try:
                reads.append(read_from_edge(edge, home_province=home, processed_at=now))
            except InvalidPlateTextError as exc:
                invalid.append(f"read {index}: {exc}")
        normalised.append((message, reads))
        # A camera not registered yet, or an on-camera misread, must not hold back the good reads
        # of a gateway's envelope: those are stored, and the message goes to the dead letter with
        # its original bytes, to be replayed once the camera is registered (stored reads are
        # idempotent: replaying stores only what was left out).
        if unknown:
            await ctx.dead_letters.publish(message, "unknown_camera", ", ".join(unknown))
        elif invalid:
            await ctx.dead_letters.publish(message, "invalid_event", "; ".join(invalid))
        else:
            done.append(message)
    refused = await store_reads(ctx, watchlist, normalised)  # counts the reads new to the database
    ctx.count_stored(m for m in done if id(m) not in refused)


def register(ctx: WorkerContext, watchlist: WatchlistIndex) -> None:
    @ctx.app.agent(ctx.topics.edge_plate_reads, name="normalise-edge-reads")
    async def normalise_edge_reads(stream):  # noqa: ANN001 - Faust stream
        await ctx.consume(stream, decoder.decode, lambda c, b: normalise_batch(c, watchlist, b))
