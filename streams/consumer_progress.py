"""How far this worker has processed each partition it holds of the topics that carry cameras'
events, as a time: what camera health judges silence against (``ioc.storage.consumer_progress``).

A partition with nothing waiting is processed to now. One with messages waiting is processed to
the Kafka time of the last message this worker finished: the cameras' later events are still in
Kafka, not missing. A partition this worker has not finished a message of and that has messages
waiting (just assigned, with a backlog) says nothing: its previous owner's record stands.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from datetime import datetime

import faust
from faust.exceptions import ConsumerNotStarted
from faust.types import TP

from streams.consumer_lag import assigned_highwaters

__all__ = ["partition_progress"]


def partition_progress(
    app: faust.App, processed: Mapping[TP, tuple[int, datetime]], topics: Set[str], now: datetime
) -> dict[tuple[str, int], datetime]:
    """(topic, partition) -> processed to, for the assigned partitions of ``topics``; ``processed``
    holds the offset and Kafka time of the last message finished on each partition
    (:attr:`streams.context.WorkerContext.processed`)."""
    consumer, committed = app.consumer, app.monitor.tp_committed_offsets
    progress: dict[tuple[str, int], datetime] = {}
    try:
        assigned = list(assigned_highwaters(consumer, topics))
    except ConsumerNotStarted:  # nothing processed yet: nothing to say
        return progress
    for tp, highwater in assigned:
        last = processed.get(tp)
        next_offset = max(last[0] + 1 if last else 0, committed.get(tp) or 0)
        if highwater is not None and next_offset >= highwater:
            progress[(tp.topic, tp.partition)] = now
        elif last is not None:
            progress[(tp.topic, tp.partition)] = min(last[1], now)
    return progress
