"""Incidents: repeated watchlist hits of one plate merged into one alert with a route.

A wanted vehicle passing five cameras is one incident for the operator, not
five alerts. The first hit creates the alert; later hits of the same plate and
entry within the incident window append sightings to its ``evidence.route`` (the
newest ones; ``evidence.sightings`` counts them all, so a vehicle parked in front of a
camera cannot grow an alert without bound). Appending is idempotent on ``read_id``, so
replays do not grow the route, and an advisory lock per (entry, plate) keeps two
workers from opening two incidents.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

__all__ = ["append_sightings", "lock_incident", "open_incident"]

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


async def append_sightings(
    conn: AsyncConnection, alert_id: uuid.UUID, sightings: list[dict[str, Any]], *, keep: int
) -> bool:
    """Add sightings to the incident's route unless already there (same ``read_id``),
    keeping the newest ``keep`` in the route and counting all in ``evidence.sightings``;
    returns whether anything changed. Call with the incident's lock held."""
    cur = await conn.execute(
        "SELECT coalesce(evidence->'route', '[]'::jsonb) FROM alerts WHERE alert_id = %s FOR UPDATE",
        [alert_id],
    )
    row = await cur.fetchone()
    if row is None:
        return False
    route = row[0]
    known = {s.get("read_id") for s in route}
    new = [s for s in sightings if s["read_id"] not in known]
    if not new:
        return False
    await conn.execute(
        """UPDATE alerts
              SET evidence = jsonb_set(
                      jsonb_set(evidence, '{route}', %s),
                      '{sightings}', to_jsonb(coalesce((evidence->>'sightings')::int, 1) + %s)),
                  updated_at = now()
            WHERE alert_id = %s""",
        [Jsonb((route + new)[-keep:]), len(new), alert_id],
    )
    return True
