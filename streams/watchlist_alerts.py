"""Watchlist hits become alerts, merged per plate into incidents with a route."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import timedelta
from typing import Any

from psycopg import AsyncConnection

from ioc.schemas import Alert, AlertKind, PlateRead, Severity
from ioc.storage.alerts import get_alerts, insert_alerts
from ioc.storage.incidents import IncidentKey, append_sightings, counted_reads, lock_incidents, open_incidents
from ioc.watchlist_matcher import Hit

INCIDENT_WINDOW = timedelta(minutes=30)
ROUTE_KEEP = 50  # newest sightings kept in an incident's route (all are counted)
_SEVERITY_BY_PRIORITY = {1: Severity.CRITICAL, 2: Severity.CRITICAL, 3: Severity.WARNING}


def sighting(read: PlateRead, hit: Hit) -> dict[str, Any]:
    return {
        "read_id": str(read.read_id),
        "captured_at": read.captured_at.isoformat(),
        "checkpoint_id": read.checkpoint_id,
        "camera_id": read.camera_id,
        "direction": read.direction.value,
        "text": read.text,
        "confidence": read.confidence,
        "match_kind": hit.match_kind,
        "score": hit.score,
    }


def alert_id_for(read: PlateRead, hit: Hit) -> uuid.UUID:
    """Deterministic, so a replayed read opens no second incident."""
    return uuid.uuid5(read.read_id, f"watchlist:{hit.entry.entry_id}")


def alert_for_hit(read: PlateRead, hit: Hit, *, past_read: bool = False) -> Alert:
    """The alert opening an incident."""
    entry = hit.entry
    return Alert(
        alert_id=alert_id_for(read, hit),
        alert_kind=AlertKind.WATCHLIST_HIT,
        severity=_SEVERITY_BY_PRIORITY.get(entry.priority, Severity.INFO),
        subject=read.text,
        captured_at=read.captured_at,
        checkpoint_id=read.checkpoint_id,
        camera_id=read.camera_id,
        read_id=read.read_id,
        evidence={
            "entry_id": str(entry.entry_id),
            "pattern": entry.pattern,
            "reason": entry.reason,
            "priority": entry.priority,
            "added_by": entry.added_by,
            "match_kind": hit.match_kind,
            "score": hit.score,
            "matched_text": hit.matched_text,
            "read_confidence": read.confidence,
            "display": read.display,
            "direction": read.direction.value,
            "route": [sighting(read, hit)],
            "past_read": past_read,
        },
    )


async def uncounted_hits(
    conn: AsyncConnection, hits: list[tuple[PlateRead, Hit]]
) -> list[tuple[PlateRead, Hit]]:
    """The hits whose read no incident of their entry and plate has counted, open or closed, however
    long ago: what may be recorded. A live read comes again in a replay (a crash before its offset
    was committed, a dead-letter replay), and past-read matching searches an entry on every worker,
    again 10 s later, and again whenever a worker starts; what was counted before must raise
    nothing again (an incident an operator closed would otherwise be published again, or opened
    anew from a read appended to it). Takes the incidents' locks, held until the
    transaction ends (call inside one, then :func:`record_hits`): of two workers searching at once,
    the second finds what the first recorded."""
    keys = list({(hit.entry.entry_id, read.text) for read, hit in hits})
    if not keys:
        return []
    await lock_incidents(conn, keys)
    counted = await counted_reads(conn, keys, list({read.read_id for read, _ in hits}))
    return [(read, hit) for read, hit in hits
            if ((hit.entry.entry_id, read.text), read.read_id) not in counted]


async def record_hits(
    conn: AsyncConnection, hits: list[tuple[PlateRead, Hit]], *, past_read: bool = False
) -> list[Alert]:
    """Open or extend one incident per (entry, plate) with ``hits`` no incident counted yet
    (:func:`uncounted_hits`); returns the alerts to publish (each incident's current state, once).
    Call inside a transaction: the advisory locks hold until it ends.

    A batch's hits cost the same few statements however many plates they are for
    (a burst of edge reads carries dozens of watchlisted plates per batch).
    """
    groups: dict[IncidentKey, list[tuple[PlateRead, Hit]]] = defaultdict(list)
    for read, hit in sorted(hits, key=lambda pair: pair[0].captured_at):
        groups[(hit.entry.entry_id, read.text)].append((read, hit))
    if not groups:
        return []
    await lock_incidents(conn, list(groups))
    # capture time against capture time: an incident is open to reads within the window of its
    # latest sighting (the server's clock would put a camera running fast outside it for good)
    existing = await open_incidents(
        conn, [(key, group[0][0].captured_at - INCIDENT_WINDOW) for key, group in groups.items()]
    )
    incident_of: dict[IncidentKey, uuid.UUID] = {}
    openings: list[Alert] = []
    changed: set[uuid.UUID] = set()
    additions = []
    for key, group in groups.items():
        if key in existing:
            alert_id = existing[key]
        else:
            opening = alert_for_hit(*group[0], past_read=past_read)
            openings.append(opening)
            alert_id = opening.alert_id
            changed.add(alert_id)
        incident_of[key] = alert_id
        # the opening read too: it is in the route already, and is only remembered as counted
        additions.append((alert_id, [sighting(read, hit) for read, hit in group]))
    await insert_alerts(conn, openings)
    changed |= await append_sightings(conn, additions, keep=ROUTE_KEEP)
    records = await get_alerts(conn, list(changed))
    # by entry, then plate: the order the locks are taken in
    return [records[incident_of[key]].as_event() for key in sorted(groups, key=lambda k: (str(k[0]), k[1]))
            if incident_of[key] in changed]

