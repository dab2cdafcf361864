"""Plate reads -> database rows, and watchlist hits -> alerts."""

from __future__ import annotations

from ioc.storage.alerts import insert_alerts
from ioc.storage.plate_reads import insert_plate_reads

from ioc import metrics
from ioc.schemas import PlateRead, utcnow
from streams.context import WorkerContext
from streams.sinks import write_batch
from streams.tables import WatchlistIndex, declare_watchlist_table
from streams.watchlist_alerts import alerts_for_read


def register(ctx: WorkerContext) -> None:
    app, topics = ctx.app, ctx.topics
    watchlist = WatchlistIndex(declare_watchlist_table(app, ctx.settings))

    @app.agent(topics.plate_reads, name="store-plate-reads")
    async def store_plate_reads(stream):  # noqa: ANN001 - Faust stream
        async for batch in ctx.decoded_batches(stream, PlateRead):
            if not batch:
                continue
            pool = await ctx.pool()
            reads = [read for _, read in batch]
            _, rejected = await write_batch(pool, "plate_reads", insert_plate_reads, reads)
            refused = {id(r.row) for r in rejected}
            for error in rejected:
                message = next(m for m, read in batch if read is error.row)
                await ctx.dead_letters.publish(message, "processing_error", str(error.error))

            alerts = [a for read in reads if id(read) not in refused
                      for a in alerts_for_read(read, watchlist.matches(read))]
            await write_batch(pool, "alerts", insert_alerts, alerts)
            for alert in alerts:
                await ctx.send(topics.alerts, alert.subject, alert)
                metrics.ALERTS_RAISED.labels(alert.alert_kind, alert.severity).inc()

            committed_at = utcnow()
            for message, read in batch:
                if id(read) in refused:
                    continue
                metrics.STORE_LATENCY_SECONDS.observe(
                    max(0.0, (committed_at - read.captured_at).total_seconds())
                )
                metrics.MESSAGES_STORED.labels(message.topic).inc()
