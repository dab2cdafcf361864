"""Incidents: repeated watchlist hits of one plate merged into one alert with a route.

A wanted vehicle passing five cameras is one incident for the operator, not
five alerts. The first hit creates the alert; later hits of the same plate and
entry within the incident window append a sighting to its ``evidence.route``.
Appending is idempotent on ``read_id``, so replays do not grow the route, and an
advisory lock per (entry, plate) keeps two workers from opening two incidents.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

__all__ = ["append_sighting", "lock_incident", "open_incident"]

_CLOSED = ("resolved", "rejected")


async def lock_incident(conn: AsyncConnection, entry_id: uuid.UUID, plate: str) -> None:
    """Serialise incident decisions for one (entry, plate) until the transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"{entry_id}:{plate}"])


async def open_incident(
    conn: AsyncConnection, *, entry_id: uuid.UUID, plate: str, since: datetime
) -> uuid.UUID | None:
    """The newest open watchlist alert for this entry and plate raised after ``since``."""
    cur = await conn.execute(
        "SELECT alert_id FROM alerts WHERE kind = 'watchlist_hit' AND subject = %s"
        " AND evidence->>'entry_id' = %s AND status <> ALL(%s) AND raised_at >= %s"
        " ORDER BY raised_at DESC LIMIT 1",
        [plate, str(entry_id), list(_CLOSED), since],
    )
    row = await cur.fetchone()
    return row[0] if row else None


async def append_sighting(
    conn: AsyncConnection, alert_id: uuid.UUID, sighting: dict[str, Any]
) -> dict[str, Any] | None:
    """Add a sighting to the incident's route unless it is already there (same
    ``read_id``); returns the updated evidence, or None when nothing changed."""
    cur = await conn.execute(
        """UPDATE alerts
              SET evidence = jsonb_set(evidence, '{route}',
                                       coalesce(evidence->'route', '[]'::jsonb) || %s::jsonb),
                  updated_at = now()
            WHERE alert_id = %s
              AND NOT coalesce(evidence->'route', '[]'::jsonb) @> %s::jsonb
        RETURNING evidence""",
        [Jsonb([sighting]), alert_id, Jsonb([{"read_id": sighting["read_id"]}])],
    )
    row = await cur.fetchone()
    return row[0] if row else None
