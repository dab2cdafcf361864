"""The alerts outbox: alert changes committed and not yet known to be on the alerts topic.

A trigger queues every change of an alert (a new alert, a status change, a sighting appended, an
edit by hand) in the transaction that commits it, with the alert's new revision (migration 0018).
Whoever publishes the change takes it off with :func:`published`; a change still queued a while
later lost its publisher (killed between commit and publish, or the broker unreachable) and is
published by the workers (``streams.agents.alert_outbox``). Consumers keep the highest revision per
alert, so publishing a state twice is harmless; not publishing it is what this prevents.

Neither function waits for a row lock: a row locked is one a transaction is changing (it queues a
newer revision) or another worker is taking, and it is left as it is.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Iterable
from datetime import timedelta

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from ioc.schemas import Alert

__all__ = ["mark_published", "published", "unpublished"]

logger = logging.getLogger(__name__)

# the rows published up to their revision: a newer change queued meanwhile stays for its publisher
_PUBLISHED = """
DELETE FROM alert_outbox
 WHERE alert_id IN (
       SELECT o.alert_id
         FROM alert_outbox AS o
         JOIN unnest(%s::uuid[], %s::bigint[]) AS p(alert_id, revision) USING (alert_id)
        WHERE o.revision <= p.revision
          FOR UPDATE OF o SKIP LOCKED)
"""

# taken for another ``older_than``: other workers leave them meanwhile, and find them due again
# if this one stops before it has published them
_UNPUBLISHED = """
UPDATE alert_outbox SET queued_at = now()
 WHERE alert_id IN (
       SELECT alert_id FROM alert_outbox
        WHERE queued_at < now() - %(older_than)s
        ORDER BY queued_at
        LIMIT %(limit)s
          FOR UPDATE SKIP LOCKED)
RETURNING alert_id
"""


async def published(conn: AsyncConnection, alerts: Iterable[Alert]) -> int:
    """Take these alerts off the outbox, each as far as the revision published; returns how many
    rows went. A newer change of one of them stays queued."""
    newest: dict[uuid.UUID, int] = {}
    for alert in alerts:
        newest[alert.alert_id] = max(alert.revision, newest.get(alert.alert_id, 0))
    if not newest:
        return 0
    cur = await conn.execute(_PUBLISHED, [list(newest), list(newest.values())])
    return cur.rowcount


async def unpublished(conn: AsyncConnection, older_than: timedelta, limit: int) -> list[uuid.UUID]:
    """At most ``limit`` alerts whose change has been queued for longer than ``older_than`` (by the
    database's clock), those queued longest. Each is taken for another ``older_than``: the
    caller publishes the alert's current state, then calls :func:`published`."""
    cur = await conn.execute(_UNPUBLISHED, {"older_than": older_than, "limit": limit})
    return [alert_id for (alert_id,) in await cur.fetchall()]


async def mark_published(pool: AsyncConnectionPool, alerts: Collection[Alert]) -> None:
    """What a publisher calls once the broker has acknowledged ``alerts``: :func:`published`, on a
    connection of its own. A failure (the database down) is only logged: the alerts stay queued and
    are published again later, which consumers, keeping the highest revision, shrug off."""
    if not alerts:
        return
    try:
        async with pool.connection() as conn:
            await published(conn, alerts)
    except psycopg.Error as exc:  # the pool's timeout and its closing too
        logger.warning("%d published alert(s) left in the outbox (%s): they will be published again",
                       len(alerts), exc)
