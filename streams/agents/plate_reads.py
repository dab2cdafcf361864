"""Plate reads -> database rows, and watchlist hits -> incidents and alerts."""

from __future__ import annotations

import logging

from faust.types import Message
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from ioc import metrics
from ioc.schemas import Alert, PlateRead, PlateReadBatch, utcnow
from ioc.storage.plate_reads import insert_plate_reads
from ioc.watchlist_matcher import Hit
from streams.context import WorkerContext
from streams.decoding import EventDecoder
from streams.sinks import write_batch
from streams.tables import WatchlistIndex
from streams.watchlist_alerts import record_hit

logger = logging.getLogger(__name__)

decoder = EventDecoder(PlateRead, PlateReadBatch, lambda b: b.reads)


async def store_batch(
    ctx: WorkerContext, watchlist: WatchlistIndex, batch: list[tuple[Message, list[PlateRead]]]
) -> None:
    reads = [read for _, message_reads in batch for read in message_reads]
    if not reads:
        return
    pool = await ctx.pool()
    await watchlist.ready()
    _, rejected = await write_batch(pool, "plate_reads", insert_plate_reads, reads)
    refused = {id(r.row) for r in rejected}
    for message, message_reads in batch:
        errors = [str(r.error) for r in rejected if any(r.row is m for m in message_reads)]
        if errors:
            await ctx.dead_letters.publish(message, "processing_error", "; ".join(errors))

    stored = [read for read in reads if id(read) not in refused]
    hits = [(read, hit) for read in stored for hit in watchlist.matches(read)]
    if hits:
        await _raise_alerts(ctx, pool, hits)

    committed_at = utcnow()
    for read in stored:
        metrics.STORE_LATENCY_SECONDS.observe(max(0.0, (committed_at - read.captured_at).total_seconds()))
    for message, message_reads in batch:
        if not any(id(r) in refused for r in message_reads):
            metrics.MESSAGES_STORED.labels(message.topic).inc()


async def _raise_alerts(
    ctx: WorkerContext, pool: AsyncConnectionPool, hits: list[tuple[PlateRead, Hit]]
) -> None:
    """Record hits as incidents (one transaction, retried on outages), then publish."""
    to_publish: dict[object, Alert] = {}  # by alert_id: a retried transaction overwrites

    async def record(conn: AsyncConnection, rows: list[tuple[PlateRead, Hit]]) -> int:
        for read, hit in rows:
            if (alert := await record_hit(conn, read, hit)) is not None:
                to_publish[alert.alert_id] = alert
        return len(rows)

    _, failed = await write_batch(pool, "alerts", record, hits)
    for error in failed:  # not expected: the rows come from validated events
        logger.error("watchlist hit not recorded: %s", error)
    for alert in to_publish.values():
        await ctx.send(ctx.topics.alerts, alert.subject, alert)
        metrics.ALERTS_RAISED.labels(alert.alert_kind, alert.severity).inc()


def register(ctx: WorkerContext, watchlist: WatchlistIndex) -> None:
    @ctx.app.agent(ctx.topics.plate_reads, name="store-plate-reads")
    async def store_plate_reads(stream):  # noqa: ANN001 - Faust stream
        async for batch in ctx.decoded_batches(stream, decoder.decode):
            await ctx.process(batch, lambda c, b: store_batch(c, watchlist, b))
