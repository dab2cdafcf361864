"""Incidents: repeated watchlist hits of one plate merged into one alert with a route.

A wanted vehicle passing five cameras is one incident for the operator, not
five alerts. The first hit creates the alert; later hits of the same plate and
entry, within the incident window of its latest sighting, append sightings to its
``evidence.route`` (the newest ones by capture time; ``evidence.sightings`` counts
them all, so a vehicle parked in front of a camera cannot grow an alert without
bound). Appending is idempotent per read (``incident_reads``), so replays and
past-read matching run by every worker neither grow the route nor the count, and
an advisory lock per (entry, plate) keeps two workers from opening two incidents, and an
operator from closing an incident while a worker adds a sighting to it
(``ioc.storage.alert_review.lock_alert``). An incident keeps its own copy of the crop of each
sighting its route holds (``sighting_evidence``): the reads go long before the alert, and the
route's pictures are where the wanted vehicle went after the first camera.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from ioc.storage.database import lock_names

__all__ = ["IncidentKey", "append_sightings", "counted_reads", "lock_incidents", "open_incidents"]

IncidentKey = tuple[uuid.UUID, str]  # (watchlist entry, plate)

_CLOSED = ("resolved", "rejected")


async def lock_incidents(conn: AsyncConnection, keys: Sequence[IncidentKey]) -> None:
    """Serialise incident decisions for these (entry, plate) pairs until the transaction
    ends. The locks are taken in sorted order, one statement for all: two workers cannot
    deadlock, and a batch with many hits costs one round trip, not one per plate."""
    await lock_names(conn, (f"{entry_id}:{plate}" for entry_id, plate in keys))


# when an incident was last sighted: its newest sighting's capture time (camera clock, as
# the reads compared with it), not raised_at (server clock: a camera 40 minutes fast would
# never find its open incident and open a new one with every batch)
_OPEN_INCIDENTS = """
SELECT DISTINCT ON (k.entry_id, k.plate) k.entry_id, k.plate, a.alert_id
  FROM unnest(%s::text[], %s::text[], %s::timestamptz[]) AS k(entry_id, plate, since)
  JOIN alerts a ON a.subject = k.plate AND a.kind = 'watchlist_hit'
   AND a.evidence->>'entry_id' = k.entry_id AND a.status <> ALL(%s)
 CROSS JOIN LATERAL (
       SELECT greatest(a.captured_at, max((s->>'captured_at')::timestamptz)) AS last_seen
         FROM jsonb_array_elements(coalesce(a.evidence->'route', '[]'::jsonb)) AS s
       ) AS seen
 WHERE seen.last_seen >= k.since
 ORDER BY k.entry_id, k.plate, seen.last_seen DESC, a.raised_at DESC
"""


async def open_incidents(
    conn: AsyncConnection, wanted: Sequence[tuple[IncidentKey, datetime]]
) -> dict[IncidentKey, uuid.UUID]:
    """For each (entry, plate), the open watchlist alert last sighted at or after its time (a
    capture time), the most recently sighted if several."""
    if not wanted:
        return {}
    cur = await conn.execute(
        _OPEN_INCIDENTS,
        [[str(entry_id) for (entry_id, _), _ in wanted], [plate for (_, plate), _ in wanted],
         [since for _, since in wanted], list(_CLOSED)],
    )
    return {(uuid.UUID(entry_id), plate): alert_id for entry_id, plate, alert_id in await cur.fetchall()}


# any incident of the pair, open or closed: an alert's subject is its plate (alerts_subject_idx),
# and incident_reads is probed by (alert_id, read_id)
_COUNTED_READS = """
SELECT DISTINCT k.entry_id, k.plate, r.read_id
  FROM unnest(%s::text[], %s::text[]) AS k(entry_id, plate)
  JOIN alerts a ON a.subject = k.plate AND a.kind = 'watchlist_hit' AND a.evidence->>'entry_id' = k.entry_id
  JOIN incident_reads r ON r.alert_id = a.alert_id AND r.read_id = ANY(%s::uuid[])
"""


async def counted_reads(
    conn: AsyncConnection, keys: Sequence[IncidentKey], read_ids: Sequence[uuid.UUID]
) -> set[tuple[IncidentKey, uuid.UUID]]:
    """Which of ``read_ids`` an incident of these (entry, plate) pairs counted, open or closed,
    however long ago, as ((entry, plate), read) pairs."""
    if not keys or not read_ids:
        return set()
    cur = await conn.execute(_COUNTED_READS, [[str(entry_id) for entry_id, _ in keys],
                                              [plate for _, plate in keys], list(read_ids)])
    return {((uuid.UUID(entry_id), plate), read_id) for entry_id, plate, read_id in await cur.fetchall()}


# Only the new sightings travel. Each read is registered in incident_reads (one row per
# incident and read): a read registered before was counted before, however long ago and
# whether or not the route still holds it, so it is skipped. A read in the route already
# (the opening read, which the caller passes along) is registered without being counted
# again. The rest are appended and counted, and the route keeps the newest by capture time
# (hours-old reads found by past-read matching do not push out the latest stops).
_APPEND_SIGHTINGS = """
WITH given AS (
    SELECT DISTINCT ON (u.alert_id, s.sighting->>'read_id') u.alert_id, s.sighting, s.n
      FROM jsonb_to_recordset(%(additions)s) AS u(alert_id uuid, new jsonb)
      JOIN alerts AS a USING (alert_id)
     CROSS JOIN LATERAL jsonb_array_elements(u.new) WITH ORDINALITY AS s(sighting, n)
     ORDER BY u.alert_id, s.sighting->>'read_id', s.n
),
registered AS (
    INSERT INTO incident_reads (alert_id, read_id)
    SELECT alert_id, (sighting->>'read_id')::uuid FROM given
    ON CONFLICT DO NOTHING
    RETURNING alert_id, read_id
),
added AS (
    SELECT g.alert_id, jsonb_agg(g.sighting ORDER BY g.n) AS new
      FROM given AS g
      JOIN registered AS r ON r.alert_id = g.alert_id AND r.read_id = (g.sighting->>'read_id')::uuid
      JOIN alerts AS a ON a.alert_id = g.alert_id
     WHERE NOT coalesce(a.evidence->'route', '[]'::jsonb)
               @> jsonb_build_array(jsonb_build_object('read_id', g.sighting->'read_id'))
     GROUP BY g.alert_id
)
UPDATE alerts AS a
   SET evidence = jsonb_set(
           jsonb_set(a.evidence, '{route}', (
               SELECT jsonb_agg(newest.sighting ORDER BY newest.at, newest.n)
                 FROM (SELECT r.sighting, r.n, (r.sighting->>'captured_at')::timestamptz AS at
                         FROM jsonb_array_elements(coalesce(a.evidence->'route', '[]'::jsonb) || added.new)
                              WITH ORDINALITY AS r(sighting, n)
                        ORDER BY at DESC, n DESC
                        LIMIT %(keep)s) AS newest)),
           '{sightings}',
           to_jsonb(coalesce((a.evidence->>'sightings')::int, 1) + jsonb_array_length(added.new))),
       updated_at = now()
  FROM added
 WHERE a.alert_id = added.alert_id
RETURNING a.alert_id
"""


# The route's crops follow the route, as it is after the statement above: each given sighting the
# route holds gets a copy of its read's crop (stored before its hit is recorded; a replay copies
# one an earlier attempt missed, nothing twice), and a sighting pushed out of the route loses its
# copy, so a vehicle parked in front of a camera keeps at most ``keep`` of them.
_KEEP_ROUTE_CROPS = """
WITH given AS (
    SELECT u.alert_id, (s.sighting->>'read_id')::uuid AS read_id,
           (s.sighting->>'captured_at')::timestamptz AS captured_at
      FROM jsonb_to_recordset(%(additions)s) AS u(alert_id uuid, new jsonb)
     CROSS JOIN LATERAL jsonb_array_elements(u.new) AS s(sighting)
),
route AS (
    SELECT a.alert_id, (s.sighting->>'read_id')::uuid AS read_id
      FROM alerts AS a
     CROSS JOIN LATERAL jsonb_array_elements(coalesce(a.evidence->'route', '[]'::jsonb)) AS s(sighting)
     WHERE a.alert_id IN (SELECT alert_id FROM given)
),
copied AS (
    INSERT INTO sighting_evidence (alert_id, read_id, crop_jpeg)
    SELECT g.alert_id, g.read_id, c.crop_jpeg
      FROM given AS g
      JOIN route AS r USING (alert_id, read_id)
      JOIN plate_crops AS c ON c.read_id = g.read_id AND c.captured_at = g.captured_at
    ON CONFLICT DO NOTHING
)
DELETE FROM sighting_evidence AS e
 WHERE e.alert_id IN (SELECT alert_id FROM given)
   AND NOT EXISTS (SELECT 1 FROM route AS r WHERE r.alert_id = e.alert_id AND r.read_id = e.read_id)
"""


async def append_sightings(
    conn: AsyncConnection, additions: Sequence[tuple[uuid.UUID, list[dict[str, Any]]]], *, keep: int
) -> set[uuid.UUID]:
    """Add sightings to incidents' routes, each addition an (alert id, sightings) pair; returns
    the incidents that changed. Call with their locks held (a route is read, then written).

    Idempotent per read: a read this incident counted before is skipped, even one long gone
    from the route (``incident_reads`` remembers every read an incident counted, one small row
    each, deleted with the alert). Pass an incident's opening read too: it is in the route
    already, and is then remembered without being counted twice. The route keeps the newest
    ``keep`` sightings by capture time; ``evidence.sightings`` counts every read once. Each
    sighting the route holds has its crop copied in the same transaction, as long as it holds it.
    """
    if not additions:
        return set()
    rows = [{"alert_id": str(alert_id), "new": sightings} for alert_id, sightings in additions]
    cur = await conn.execute(_APPEND_SIGHTINGS, {"additions": Jsonb(rows), "keep": keep})
    changed = {alert_id for (alert_id,) in await cur.fetchall()}
    await conn.execute(_KEEP_ROUTE_CROPS, {"additions": Jsonb(rows)})
    return changed
