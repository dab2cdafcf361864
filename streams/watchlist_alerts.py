"""Watchlist hits become alerts with their evidence."""

from __future__ import annotations

import uuid

from ioc.schemas import Alert, AlertKind, PlateRead, Severity, WatchlistEntry

_SEVERITY_BY_PRIORITY = {1: Severity.CRITICAL, 2: Severity.CRITICAL, 3: Severity.WARNING}


def alerts_for_read(read: PlateRead, entries: list[WatchlistEntry]) -> list[Alert]:
    """One alert per (read, entry); ids are deterministic so replays don't duplicate."""
    return [
        Alert(
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
                "match_kind": "exact",
                "score": 1.0,
                "read_confidence": read.confidence,
                "display": read.display,
                "direction": read.direction.value,
            },
        )
        for entry in entries
    ]
