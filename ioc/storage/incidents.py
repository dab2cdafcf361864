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
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

__all__ = ["IncidentKey", "append_sightings", "lock_incidents", "open_incidents"]

IncidentKey = tuple[uuid.UUID, str]  # (watchlist entry, plate)

_CLOSED = ("resolved", "rejected")


async def lock_incidents(conn: AsyncConnection, keys: Sequence[IncidentKey]) -> None:
    """Serialise incident decisions for these (entry, plate) pairs until the transaction
    ends. The locks are taken in sorted order, one statement for all: two workers cannot
    deadlock, and a batch with many hits costs one round trip, not one per plate."""
    names = sorted(f"{entry_id}:{plate}" for entry_id, plate in keys)
    # a function scan returns the array's elements in order: the locks follow it
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest(%s::text[]) AS k",
                       [names])


async def open_incidents(
    conn: AsyncConnection, wanted: Sequence[tuple[IncidentKey, datetime]]
) -> dict[IncidentKey, uuid.UUID]:
    """For each (entry, plate) raised after its time, the newest open watchlist alert."""
    if not wanted:
        return {}
    cur = await conn.execute(
        "SELECT DISTINCT ON (k.entry_id, k.plate) k.entry_id, k.plate, a.alert_id"
        " FROM unnest(%s::text[], %s::text[], %s::timestamptz[]) AS k(entry_id, plate, since)"
        " JOIN alerts a ON a.subject = k.plate AND a.raised_at >= k.since AND a.kind = 'watchlist_hit'"
        " AND a.evidence->>'entry_id' = k.entry_id AND a.status <> ALL(%s)"
        " ORDER BY k.entry_id, k.plate, a.raised_at DESC",
        [[str(entry_id) for (entry_id, _), _ in wanted], [plate for (_, plate), _ in wanted],
         [since for _, since in wanted], list(_CLOSED)],
    )
    return {(uuid.UUID(entry_id), plate): alert_id for entry_id, plate, alert_id in await cur.fetchall()}


# Only the new sightings travel; the database skips those already in the route, appends
# the rest and trims (a wanted car parked in front of a camera would otherwise send its
# whole route again with every batch).
_APPEND_SIGHTINGS = """
WITH added AS (
    SELECT u.alert_id, (
               SELECT jsonb_agg(s.sighting ORDER BY s.n)
                 FROM jsonb_array_elements(u.new) WITH ORDINALITY AS s(sighting, n)
                WHERE NOT coalesce(a.evidence->'route', '[]'::jsonb)
                          @> jsonb_build_array(jsonb_build_object('read_id', s.sighting->'read_id'))
           ) AS new
      FROM jsonb_to_recordset(%(additions)s) AS u(alert_id uuid, new jsonb)
      JOIN alerts AS a USING (alert_id)
)
UPDATE alerts AS a
   SET evidence = jsonb_set(
           jsonb_set(a.evidence, '{route}', (
               SELECT jsonb_agg(r.sighting ORDER BY r.n)
                 FROM jsonb_array_elements(coalesce(a.evidence->'route', '[]'::jsonb) || added.new)
                      WITH ORDINALITY AS r(sighting, n)
                WHERE r.n > jsonb_array_length(coalesce(a.evidence->'route', '[]'::jsonb) || added.new)
                            - %(keep)s)),
           '{sightings}',
           to_jsonb(coalesce((a.evidence->>'sightings')::int, 1) + jsonb_array_length(added.new))),
       updated_at = now()
  FROM added
 WHERE a.alert_id = added.alert_id AND added.new IS NOT NULL
RETURNING a.alert_id
"""


async def append_sightings(
    conn: AsyncConnection, additions: Sequence[tuple[uuid.UUID, list[dict[str, Any]]]], *, keep: int
) -> set[uuid.UUID]:
    """Add sightings to incidents' routes, each addition an (alert id, sightings) pair. A
    sighting already in the route (same ``read_id``) is skipped; the route keeps the newest
    ``keep`` and ``evidence.sightings`` counts all. Returns the incidents that changed.
    Call with their locks held (a route is read, then written)."""
    if not additions:
        return set()
    rows = [{"alert_id": str(alert_id), "new": sightings} for alert_id, sightings in additions]
    cur = await conn.execute(_APPEND_SIGHTINGS, {"additions": Jsonb(rows), "keep": keep})
    return {alert_id for (alert_id,) in await cur.fetchall()}
