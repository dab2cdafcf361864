"""Watchlist hits become alerts, merged per plate into incidents with a route."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import timedelta
from typing import Any

from psycopg import AsyncConnection

from ioc.schemas import Alert, AlertKind, PlateRead, Severity
from ioc.storage.alerts import get_alert, insert_alerts
from ioc.storage.incidents import append_sightings, lock_incident, open_incident
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


def alert_for_hit(read: PlateRead, hit: Hit, *, past_read: bool = False) -> Alert:
    """The alert opening an incident; its id is deterministic so replays don't duplicate."""
    entry = hit.entry
    return Alert(
        alert_id=uuid.uuid5(read.read_id, f"watchlist:{entry.entry_id}"),
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


async def record_hits(
    conn: AsyncConnection, hits: list[tuple[PlateRead, Hit]], *, past_read: bool = False
) -> list[Alert]:
    """Open or extend one incident per (entry, plate); returns the alerts to publish
    (each incident's current state, once). Call inside a transaction: the advisory
    locks hold until it ends."""
    groups: dict[tuple[uuid.UUID, str], list[tuple[PlateRead, Hit]]] = defaultdict(list)
    for read, hit in sorted(hits, key=lambda pair: pair[0].captured_at):
        groups[(hit.entry.entry_id, read.text)].append((read, hit))
    alerts = []
    for (entry_id, plate), group in sorted(groups.items(), key=lambda item: (str(item[0][0]), item[0][1])):
        if (alert := await _record_group(conn, entry_id, plate, group, past_read=past_read)) is not None:
            alerts.append(alert)
    return alerts


async def _record_group(
    conn: AsyncConnection, entry_id: uuid.UUID, plate: str, group: list[tuple[PlateRead, Hit]], *,
    past_read: bool,
) -> Alert | None:
    await lock_incident(conn, entry_id, plate)  # locks taken in a fixed order: no deadlocks
    openings = [alert_for_hit(read, hit, past_read=past_read) for read, hit in group]
    existing = await open_incident(
        conn, entry_id=entry_id, plate=plate, since=group[0][0].captured_at - INCIDENT_WINDOW
    )
    if existing is None:
        await insert_alerts(conn, openings[:1])
        existing, group = openings[0].alert_id, group[1:]
        changed = True
    else:  # a replay of the opening read publishes the incident again (consumers dedupe by id)
        changed = any(opening.alert_id == existing for opening in openings)
    sightings = [sighting(read, hit) for read, hit in group]
    if sightings and await append_sightings(conn, existing, sightings, keep=ROUTE_KEEP):
        changed = True
    if not changed:
        return None
    record = await get_alert(conn, existing)
    assert record is not None
    return Alert(
        alert_id=record.alert_id, alert_kind=AlertKind(record.kind), severity=Severity(record.severity),
        subject=record.subject, raised_at=record.raised_at, captured_at=record.captured_at,
        checkpoint_id=record.checkpoint_id, camera_id=record.camera_id, read_id=record.read_id,
        status=record.status, evidence=record.evidence,
    )
