"""Watchlist hits become alerts, merged per plate into incidents with a route."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from psycopg import AsyncConnection

from ioc.schemas import Alert, AlertKind, PlateRead, Severity
from ioc.storage.alerts import get_alert, insert_alerts
from ioc.storage.incidents import append_sighting, lock_incident, open_incident
from ioc.watchlist_matcher import Hit

INCIDENT_WINDOW = timedelta(minutes=30)
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


async def record_hit(
    conn: AsyncConnection, read: PlateRead, hit: Hit, *, past_read: bool = False
) -> Alert | None:
    """Open an incident or extend the open one; returns the alert to publish, if any.

    Call inside a transaction: the advisory lock holds until it ends.
    """
    await lock_incident(conn, hit.entry.entry_id, read.text)
    opening = alert_for_hit(read, hit, past_read=past_read)
    existing = await open_incident(
        conn, entry_id=hit.entry.entry_id, plate=read.text, since=read.captured_at - INCIDENT_WINDOW
    )
    if existing is None:
        await insert_alerts(conn, [opening])
        return opening
    if existing == opening.alert_id:
        return opening  # a replay of the opening read: publish again, consumers dedupe by id
    if await append_sighting(conn, existing, sighting(read, hit)) is None:
        return None
    record = await get_alert(conn, existing)
    assert record is not None
    return Alert(
        alert_id=record.alert_id, alert_kind=AlertKind(record.kind), severity=Severity(record.severity),
        subject=record.subject, raised_at=record.raised_at, captured_at=record.captured_at,
        checkpoint_id=record.checkpoint_id, camera_id=record.camera_id, read_id=record.read_id,
        status=record.status, evidence=record.evidence,
    )
