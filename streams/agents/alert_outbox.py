"""Alert changes their publisher never published: the workers publish them from the outbox.

Every alert change is queued in ``alert_outbox`` by the transaction that commits it, and taken off
by its publisher once the broker has it (:func:`ioc.storage.alert_outbox.mark_published`). One still
queued after :data:`UNPUBLISHED_FOR` lost its publisher: the process was killed between commit and
publish (a rollout's SIGTERM, OOM), or the API could not reach the broker. Without this the alert
was in the database and the list, but never on the topic: systems that page the police never heard
of it.

Every worker checks every :data:`CHECK_EVERY_S`, and publishes the current state of such alerts
(their newest revision) before it takes them off. A worker takes what it publishes for another
:data:`UNPUBLISHED_FOR`, so mostly one worker publishes each; but one slow to publish, or stopping
before it has marked them, leaves them to another: duplicates are acceptable (consumers keep the
highest revision per alert_id), losses are not (a change leaves the outbox only once a revision at
least as new is on the topic).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from ioc import metrics
from ioc.storage.alert_outbox import unpublished
from ioc.storage.alerts import get_alerts
from streams.context import WorkerContext

logger = logging.getLogger(__name__)

CHECK_EVERY_S = 10.0
# far longer than a live publisher takes from its commit to its mark (milliseconds; seconds while
# the broker elects a leader), and short enough for an alert that pages someone
UNPUBLISHED_FOR = timedelta(seconds=30)
MOST_AT_ONCE = 500  # alerts read and sent at once (a search of past reads may have raised thousands)


def register(ctx: WorkerContext) -> None:
    @ctx.timer(CHECK_EVERY_S, name="alert-outbox")
    async def publish_unpublished() -> None:
        await republish(ctx)


async def republish(ctx: WorkerContext) -> int:
    """Publish the alerts queued for longer than :data:`UNPUBLISHED_FOR` as they are now, then take
    them off the outbox; returns how many were published."""
    pool = await ctx.pool()
    total = 0
    while True:
        async with pool.connection() as conn:
            taken = await unpublished(conn, UNPUBLISHED_FOR, MOST_AT_ONCE)
            records = await get_alerts(conn, taken) if taken else {}
        alerts = [record.as_event() for record in records.values()]
        if alerts:
            await ctx.publish_alerts(alerts)
            metrics.ALERTS_REPUBLISHED.inc(len(alerts))
            total += len(alerts)
        if len(taken) < MOST_AT_ONCE:
            break
    if total:
        logger.warning("published %d alert change(s) queued for over %.0f s: their publisher stopped "
                       "or could not reach the broker", total, UNPUBLISHED_FOR.total_seconds())
    return total
