"""Plate reads -> database rows, and watchlist hits -> alerts."""

from __future__ import annotations

from ioc.storage.alerts import insert_alerts
from ioc.storage.plate_reads import insert_plate_reads

from ioc import metrics
from ioc.schemas import PlateRead, PlateReadBatch, utcnow
from streams.context import WorkerContext
from streams.decoding import EventDecoder
from streams.sinks import write_batch
from streams.tables import WatchlistIndex, declare_watchlist_table
from streams.watchlist_alerts import alerts_for_read


def register(ctx: WorkerContext) -> None:
    watchlist = WatchlistIndex(declare_watchlist_table(ctx.app, ctx.settings))
    decoder = EventDecoder(PlateRead, PlateReadBatch, lambda b: b.reads)

    @ctx.app.agent(ctx.topics.plate_reads, name="store-plate-reads")
    async def store_plate_reads(stream):  # noqa: ANN001 - Faust stream
        async for batch in ctx.decoded_batches(stream, decoder.decode):
            reads = [read for _, message_reads in batch for read in message_reads]
            if not reads:
                continue
            pool = await ctx.pool()
            _, rejected = await write_batch(pool, "plate_reads", insert_plate_reads, reads)
            refused = {id(r.row) for r in rejected}
            for message, message_reads in batch:
                errors = [str(r.error) for r in rejected if any(r.row is m for m in message_reads)]
                if errors:
                    await ctx.dead_letters.publish(message, "processing_error", "; ".join(errors))

            stored = [read for read in reads if id(read) not in refused]
            alerts = [alert for read in stored for alert in alerts_for_read(read, watchlist.matches(read))]
            await write_batch(pool, "alerts", insert_alerts, alerts)
            for alert in alerts:
                await ctx.send(ctx.topics.alerts, alert.subject, alert)
                metrics.ALERTS_RAISED.labels(alert.alert_kind, alert.severity).inc()

            committed_at = utcnow()
            for read in stored:
                metrics.STORE_LATENCY_SECONDS.observe(
                    max(0.0, (committed_at - read.captured_at).total_seconds())
                )
            for message, message_reads in batch:
                if not any(id(r) in refused for r in message_reads):
                    metrics.MESSAGES_STORED.labels(message.topic).inc()
