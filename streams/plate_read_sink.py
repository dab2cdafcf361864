"""Plate reads -> database rows, watchlist hits -> incidents and alerts, and the reads
onto the ``plate-reads`` topic for downstream consumers.

Called by the agents that produce reads (edge reads, frames) before they acknowledge
their source messages: storing where the reads are made saves a second decode and a
Kafka round trip per read, and a replayed source message stores nothing twice. Nor does it
count anything twice: the per-read metrics (vehicles, reads, capture-to-store latency) take only
the reads the database did not have, as its count windows do; the message itself is still stored.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Coroutine, Sequence

from faust.types import Message
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from ioc import metrics
from ioc.schemas import Alert, PlateRead, utcnow
from ioc.storage.plate_reads import insert_new_plate_reads
from ioc.watchlist_matcher import Hit
from streams.checkpoint_vehicles import count_edge_reads
from streams.context import WorkerContext
from streams.reads import count_reads
from streams.sinks import write_batch
from streams.tables import WatchlistIndex
from streams.watchlist_alerts import record_hits, uncounted_hits


async def store_reads(
    ctx: WorkerContext, watchlist: WatchlistIndex, batch: list[tuple[Message, list[PlateRead]]]
) -> set[int]:
    """Store, match and publish the reads of each source message, and count those new to the
    database; returns the ids of the messages whose reads the database refused (they went to the
    dead letter)."""
    reads = [read for _, message_reads in batch for read in message_reads]
    if not reads:
        return set()
    pool = await ctx.pool()
    cameras = await ctx.cameras()  # before writing: an outage here stores nothing
    await watchlist.ready()
    # by id(read); across a retry's attempts: one whose commit was lost may have stored them
    new: dict[int, PlateRead] = {}

    async def insert(conn: AsyncConnection, rows: Sequence[PlateRead]) -> int:
        inserted = await insert_new_plate_reads(conn, rows)
        new.update((id(read), read) for read in inserted)
        return len(inserted)

    _, rejected = await write_batch(pool, "plate_reads", insert, reads)
    committed_at = utcnow()
    # counted once, when first stored, and at once: a read counted again on a replay made Grafana
    # disagree with the database (an old capture time read as minutes of latency), and one counted
    # only after the Kafka sends below was never counted where they failed and the batch came again
    fresh = list(new.values())
    for read in fresh:
        metrics.STORE_LATENCY_SECONDS.observe(max(0.0, (committed_at - read.captured_at).total_seconds()))
    count_reads(fresh)
    count_edge_reads(fresh, cameras)  # a frame camera's vehicles are its passages (agents.passages)
    refused = {id(r.row) for r in rejected}
    refused_messages = await ctx.dead_letter_refused(batch, rejected)

    stored = [read for read in reads if id(read) not in refused]
    hits = [(read, hit) for read in stored for hit in watchlist.matches(read)]
    # a camera's reads reach the topic, its incidents and its passages in the order taken
    await ctx.earlier_batches_done()
    # incidents (database) and the read stream (Kafka) wait on different servers: overlap them;
    # where one fails the other is stopped, as the batch is then dead-lettered whole
    await _together(
        _raise_alerts(ctx, pool, hits),
        ctx.send_plate_reads([
            (message, [r for r in message_reads if id(r) not in refused])
            for message, message_reads in batch if id(message) not in refused_messages
        ]),
    )

    partition_of = {id(read): message.tp for message, message_reads in batch for read in message_reads}
    for read in stored:  # a replayed read too: it tells which lanes this worker feeds
        if read.source == "camera":  # an edge camera fuses its own frames: its read is the passage
            ctx.passages.add(read, partition_of[id(read)])
    return refused_messages


class HitsNotRecordedError(RuntimeError):
    """Watchlist hits the database refused: their batch is dead-lettered, to be replayed once
    the cause is fixed (the hits recorded meanwhile are not recorded twice)."""


async def _together(*steps: Coroutine[object, object, None]) -> None:
    """Run ``steps`` at once; the first failure cancels the others and is raised as it is
    (not as an ExceptionGroup: callers tell outages from bugs by the exception's type)."""
    tasks = [asyncio.ensure_future(step) for step in steps]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        raise




async def _raise_alerts(
    ctx: WorkerContext, pool: AsyncConnectionPool, hits: list[tuple[PlateRead, Hit]]
) -> None:
    """Record hits as incidents (one transaction, retried on outages), then publish them and take
    them off the outbox."""
    if not hits:
        return
    to_publish: dict[object, Alert] = {}  # by alert_id: a retried transaction overwrites
    recorded: dict[tuple[object, object], str] = {}  # (read, entry) -> match kind, as to_publish

    async def record(conn: AsyncConnection, rows: list[tuple[PlateRead, Hit]]) -> int:
        # a replayed read that an incident counted raises nothing again, even once the incident is
        # closed (a lost publish is the outbox's to make good), and is not counted again
        fresh = await uncounted_hits(conn, rows)
        for alert in await record_hits(conn, fresh):
            to_publish[alert.alert_id] = alert
        recorded.update(((read.read_id, hit.entry.entry_id), hit.match_kind) for read, hit in fresh)
        return len(rows)

    _, failed = await write_batch(pool, "alerts", record, hits)
    for rejected in failed:
        read, hit = rejected.row
        recorded.pop((read.read_id, hit.entry.entry_id), None)
    for match_kind, n in Counter(recorded.values()).items():
        metrics.WATCHLIST_HITS.labels(match_kind).inc(n)
    await ctx.publish_alerts(list(to_publish.values()))
    published_at = utcnow()
    for alert in to_publish.values():
        metrics.ALERTS_RAISED.labels(alert.alert_kind, alert.severity).inc()
    # capture to alert, once per read whose incident was published (a replay publishes nothing new)
    incidents = {(alert.evidence.get("entry_id"), alert.subject) for alert in to_publish.values()}
    latencies = {read.read_id: (published_at - read.captured_at).total_seconds() for read, hit in hits
                 if (str(hit.entry.entry_id), read.text) in incidents}
    for seconds in latencies.values():
        metrics.ALERT_LATENCY_SECONDS.observe(max(0.0, seconds))
    if failed:  # not expected (the rows come from validated events), and never to be lost in a log
        raise HitsNotRecordedError(f"{len(failed)} watchlist hits refused by the database, the first: "
                                   f"{failed[0]}")
