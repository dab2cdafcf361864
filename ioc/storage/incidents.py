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
) -> dict[IncidentKey, tuple[uuid.UUID, list[dict[str, Any]]]]:
    """For each (entry, plate) raised after its time, the newest open watchlist alert and
    its route. Call with the incidents' locks held: only their holders change routes."""
    if not wanted:
        return {}
    cur = await conn.execute(
        "SELECT DISTINCT ON (k.entry_id, k.plate) k.entry_id, k.plate, a.alert_id,"
        " coalesce(a.evidence->'route', '[]'::jsonb)"
        " FROM unnest(%s::text[], %s::text[], %s::timestamptz[]) AS k(entry_id, plate, since)"
        " JOIN alerts a ON a.subject = k.plate AND a.raised_at >= k.since AND a.kind = 'watchlist_hit'"
        " AND a.evidence->>'entry_id' = k.entry_id AND a.status <> ALL(%s)"
        " ORDER BY k.entry_id, k.plate, a.raised_at DESC",
        [[str(entry_id) for (entry_id, _), _ in wanted], [plate for (_, plate), _ in wanted],
         [since for _, since in wanted], list(_CLOSED)],
    )
    rows = await cur.fetchall()
    return {(uuid.UUID(entry_id), plate): (alert_id, route) for entry_id, plate, alert_id, route in rows}


async def append_sightings(
    conn: AsyncConnection, additions: Sequence[tuple[uuid.UUID, list[dict[str, Any]], list[dict[str, Any]]]],
    *, keep: int,
) -> set[uuid.UUID]:
    """Add sightings to incidents' routes: each addition is (alert id, its route as
    :func:`open_incidents` read it, sightings). A sighting already in the route (same
    ``read_id``) is skipped; the route keeps the newest ``keep`` and ``evidence.sightings``
    counts all. Returns the incidents that changed. Call with their locks held."""
    ids, routes, added = [], [], []
    for alert_id, route, sightings in additions:
        known = {s.get("read_id") for s in route}
        new = [s for s in sightings if s["read_id"] not in known]
        if new:
            ids.append(alert_id)
            routes.append(Jsonb((route + new)[-keep:]))
            added.append(len(new))
    if ids:
        await conn.execute(
            """UPDATE alerts AS a
                  SET evidence = jsonb_set(
                          jsonb_set(a.evidence, '{route}', u.route),
                          '{sightings}', to_jsonb(coalesce((a.evidence->>'sightings')::int, 1) + u.added)),
                      updated_at = now()
                 FROM unnest(%s::uuid[], %s::jsonb[], %s::int[]) AS u(alert_id, route, added)
                WHERE a.alert_id = u.alert_id""",
            [ids, routes, added],
        )
    return set(ids)
