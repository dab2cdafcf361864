"""``ioc_consumer_lag_messages``: how far this worker is behind on each source partition it holds.

Lag is the partition's highwater (from the consumer's last fetch) minus the offset
committed for it, i.e. what a restart would have to process again; before the first
commit of this process the read position stands in. Refreshed every few seconds;
series of partitions this worker no longer holds are removed, so a rebalance leaves
no stale lag behind.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Set

import faust
from aiokafka.errors import IllegalStateError
from faust.exceptions import ConsumerNotStarted
from faust.types import TP, ConsumerT

from ioc import metrics
from streams.context import WorkerContext

logger = logging.getLogger(__name__)

__all__ = ["assigned_highwaters", "consumer_lags", "register"]

REFRESH_EVERY_S = 2.0
# what asking about a partition revoked meanwhile raises: aiokafka's two ways of saying so
REVOKED = (AssertionError, IllegalStateError)


def assigned_highwaters(consumer: ConsumerT, topics: Set[str]) -> Iterator[tuple[TP, int | None]]:
    """The assigned partitions of ``topics`` with their highwater as the last fetch gave it (None
    before one); a partition revoked meanwhile is left out."""
    for tp in consumer.assignment():
        if tp.topic not in topics:
            continue
        try:
            highwater = consumer.highwater(tp)
        except REVOKED:
            continue
        yield tp, highwater


async def consumer_lags(app: faust.App, topics: Set[str]) -> dict[tuple[str, int], int]:
    """(topic, partition) -> messages not yet committed, for the assigned partitions of ``topics``."""
    consumer, committed = app.consumer, app.monitor.tp_committed_offsets
    lags: dict[tuple[str, int], int] = {}
    for tp, highwater in assigned_highwaters(consumer, topics):
        offset = committed.get(tp)
        if offset is None and highwater is not None:
            try:
                offset = await consumer.position(tp)
            except REVOKED:
                continue
        if highwater is not None and offset is not None:
            lags[(tp.topic, tp.partition)] = max(0, highwater - offset)
    return lags


def register(ctx: WorkerContext) -> None:
    sources = ctx.settings.topics.sources
    reported: set[tuple[str, str]] = set()

    @ctx.timer(REFRESH_EVERY_S, name="consumer-lag")
    async def refresh_consumer_lag() -> None:
        try:
            lags = await consumer_lags(ctx.app, sources)
        except ConsumerNotStarted:
            return
        current = set()
        for (topic, partition), lag in lags.items():
            labels = (topic, str(partition))
            metrics.CONSUMER_LAG.labels(*labels).set(lag)
            current.add(labels)
        for labels in reported - current:
            metrics.CONSUMER_LAG.remove(*labels)
        reported.clear()
        reported.update(current)
