"""Watchlist hits become alerts with their evidence."""

from __future__ import annotations

import uuid

from ioc.schemas import Alert, AlertKind, PlateRead, Severity
from ioc.watchlist_matcher import Hit

_SEVERITY_BY_PRIORITY = {1: Severity.CRITICAL, 2: Severity.CRITICAL, 3: Severity.WARNING}


def alerts_for_read(read: PlateRead, hits: list[Hit]) -> list[Alert]:
    """One alert per (read, entry); ids are deterministic so replays don't duplicate."""
    return [
        Alert(
            alert_id=uuid.uuid5(read.read_id, f"watchlist:{hit.entry.entry_id}"),
            alert_kind=AlertKind.WATCHLIST_HIT,
            severity=_SEVERITY_BY_PRIORITY.get(hit.entry.priority, Severity.INFO),
            subject=read.text,
            captured_at=read.captured_at,
            checkpoint_id=read.checkpoint_id,
            camera_id=read.camera_id,
            read_id=read.read_id,
            evidence={
                "entry_id": str(hit.entry.entry_id),
                "pattern": hit.entry.pattern,
                "reason": hit.entry.reason,
                "priority": hit.entry.priority,
                "added_by": hit.entry.added_by,
                "match_kind": hit.match_kind,
                "score": hit.score,
                "matched_text": hit.matched_text,
                "read_confidence": read.confidence,
                "display": read.display,
                "direction": read.direction.value,
            },
        )
        for hit in hits
    ]
