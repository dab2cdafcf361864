"""Alerts about the system's eyes: cameras going silent or coming back, and
checkpoints whose flow leaves its baseline. Ids are deterministic, so two
workers (or a replay) raising the same alert store it once."""

from __future__ import annotations

import uuid
from datetime import datetime

from detectors.flow_anomaly import FlowAnomaly
from ioc.schemas import Alert, AlertKind, Severity

_NAMESPACE = uuid.UUID("0b1c0c5e-7a11-4e57-9c1e-10c0a1e27000")


def camera_alert(camera_id: str, checkpoint_id: str, *, online: bool, last_seen: datetime | None,
                 at: datetime) -> Alert:
    kind = AlertKind.CAMERA_ONLINE if online else AlertKind.CAMERA_OFFLINE
    return Alert(
        alert_id=uuid.uuid5(_NAMESPACE, f"{kind}:{camera_id}:{last_seen.isoformat() if last_seen else '-'}"),
        alert_kind=kind,
        severity=Severity.INFO if online else Severity.WARNING,
        subject=camera_id,
        raised_at=at,
        captured_at=last_seen,
        checkpoint_id=checkpoint_id,
        camera_id=camera_id,
        evidence={"last_seen": last_seen.isoformat() if last_seen else None},
    )


def flow_alert(checkpoint_id: str, direction: str, window_end: datetime, window_minutes: float,
               anomaly: FlowAnomaly, *, at: datetime) -> Alert:
    return Alert(
        alert_id=uuid.uuid5(_NAMESPACE, f"flow:{checkpoint_id}:{direction}:{window_end.isoformat()}"),
        alert_kind=AlertKind.FLOW_ANOMALY,
        severity=Severity.WARNING,
        subject=checkpoint_id,
        raised_at=at,
        captured_at=window_end,
        checkpoint_id=checkpoint_id,
        evidence={
            "direction": direction,
            "anomaly": anomaly.kind,
            "observed": anomaly.observed,
            "expected": anomaly.expected,
            "score": anomaly.score,
            # what "expected" is: same_weekday / time_of_day (the usual for this time of day)
            # or trailing (the two hours before)
            "baseline": anomaly.baseline,
            "window_minutes": window_minutes,
        },
    )
