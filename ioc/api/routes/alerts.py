"""Alerts: the operators' queue, status changes with notes, and officers' hit decisions.

Operators acknowledge, escalate or resolve; officers (and supervisors) accept or
reject a watchlist hit with a reason from the configured list. Every change is
kept in the alert's history (who, when, note, reason) and published on the
alerts topic, so every open operator page sees it. An alert's crop link serves
the alert's own copy of its read's crop, kept as long as the alert (the read's
goes with the read retention period), and an incident's copies of its route
sightings' crops are served by read id as long as the route holds them; each
fetch of either is audited.
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from ioc.api.deps import (
    AlertHandler,
    AlertReader,
    ConnDep,
    DecisionReporter,
    HitDecider,
    PoolDep,
    SettingsDep,
)
from ioc.api.publishing import EventPublisher
from ioc.api.routes.reads import crop_response
from ioc.schemas import Alert, AlertKind, AlertStatus
from ioc.storage.alert_review import lock_alert
from ioc.storage.alerts import (
    AlertRecord,
    alert_crop,
    alert_decisions,
    alert_history,
    get_alert,
    recent_alerts,
    sighting_crop,
    update_alert_status,
)
from ioc.storage.audit import AuditNote

router = APIRouter(prefix="/api/alerts", tags=["alerts"])

# a crop link states no purpose: the alert it came with is the reason it is shown
CROP_PURPOSE = "alert evidence shown"
# closed for good: a rejected hit as a resolved alert (a new sighting of the plate opens a new incident)
FINAL = {AlertStatus.RESOLVED.value, AlertStatus.REJECTED.value}
DECIDABLE = {AlertStatus.NEW.value, AlertStatus.ACKNOWLEDGED.value, AlertStatus.ESCALATED.value}
# an officer's decision stands: an accepted hit stays open (its incident goes on collecting
# sightings) until it is resolved, and may only be resolved; taking it back to acknowledged or
# escalated would reopen it for another decision
_DECIDED = {
    AlertStatus.ACCEPTED.value: "the hit was accepted by an officer's decision: it can only be resolved",
    AlertStatus.REJECTED.value: "the hit was rejected by an officer's decision: it is closed",
}


class AlertPublic(BaseModel):
    alert_id: uuid.UUID
    kind: str
    severity: str
    subject: str
    status: str
    raised_at: datetime
    captured_at: datetime | None = None
    checkpoint_id: str | None = None
    camera_id: str | None = None
    read_id: uuid.UUID | None = None
    crop_url: str | None = Field(None, description="The alert's own copy of its read's crop (kept as long "
                                                    "as the alert); where the read had none it answers 404")
    evidence: dict[str, Any] = {}
    updated_at: datetime | None = None
    revision: int | None = Field(
        None, description="Moves on with every change of the alert: of two states of one alert (listed, or "
        "from the live stream), the higher is newer. Absent from a state published by a release before "
        "revisions (during a rolling upgrade)")

    @classmethod
    def of(cls, record: AlertRecord) -> AlertPublic:
        return cls(
            alert_id=record.alert_id, kind=record.kind, severity=record.severity, subject=record.subject,
            status=record.status, raised_at=record.raised_at, captured_at=record.captured_at,
            checkpoint_id=record.checkpoint_id, camera_id=record.camera_id, read_id=record.read_id,
            crop_url=_crop(record.alert_id, record.read_id), evidence=record.evidence,
            updated_at=record.updated_at, revision=record.revision,
        )

    @classmethod
    def of_event(cls, alert: Alert) -> AlertPublic:
        """The same shape from an alerts-topic event (what the live stream sends)."""
        return cls(
            alert_id=alert.alert_id, kind=alert.alert_kind.value, severity=alert.severity.value,
            subject=alert.subject, status=alert.status.value, raised_at=alert.raised_at,
            captured_at=alert.captured_at, checkpoint_id=alert.checkpoint_id, camera_id=alert.camera_id,
            read_id=alert.read_id, crop_url=_crop(alert.alert_id, alert.read_id), evidence=alert.evidence,
            # an event from a release before revisions has none: not revision 1, which may be older
            revision=alert.revision if "revision" in alert.model_fields_set else None,
        )


def _crop(alert_id: uuid.UUID, read_id: uuid.UUID | None) -> str | None:
    """Link to the alert's copy of the crop, not the read's: the read goes long before the alert."""
    return f"/api/alerts/{alert_id}/crop.jpg" if read_id is not None else None


class AlertsPublic(BaseModel):
    data: list[AlertPublic]
    count: int
    next_cursor: str | None = None


class StatusChange(BaseModel):
    status: Literal["acknowledged", "escalated", "resolved"]
    note: str | None = Field(None, max_length=1000)


class HitDecision(BaseModel):
    decision: Literal["accepted", "rejected"]
    reason: str = Field(max_length=200, description="One of GET /api/alerts/decision-reasons")
    note: str | None = Field(None, max_length=1000)


class HistoryEntry(BaseModel):
    alert_id: uuid.UUID
    status: str
    actor: str
    at: datetime
    note: str | None = None
    reason: str | None = None

    model_config = ConfigDict(from_attributes=True)  # built from a stored AlertEvent


class DecisionsPage(BaseModel):
    data: list[HistoryEntry]
    count: int
    next_cursor: str | None = Field(None, description="Pass as cursor for the next page; absent on the last")


def _token(moment: datetime, key: object) -> str:
    raw = f"{moment.isoformat()}|{key}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _untoken(token: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        moment, key = raw.split("|")
        return datetime.fromisoformat(moment), key
    except (ValueError, UnicodeDecodeError) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "invalid page cursor") from exc


def _cursor(record: AlertRecord) -> str:
    return _token(record.raised_at, record.alert_id)


def _parse_cursor(token: str) -> tuple[datetime, uuid.UUID]:
    moment, alert_id = _untoken(token)
    try:
        return moment, uuid.UUID(alert_id)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "invalid page cursor") from exc


def _parse_decision_cursor(token: str) -> tuple[datetime, int]:
    moment, event_id = _untoken(token)
    if not event_id.isascii() or not event_id.isdigit() or len(event_id) > 19:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "invalid page cursor")
    return moment, int(event_id)


@router.get("", response_model=AlertsPublic, response_model_exclude_none=True, summary="Newest alerts first")
async def list_alerts(
    conn: ConnDep,
    _: AlertReader,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    status_: Annotated[list[AlertStatus] | None, Query(alias="status")] = None,
    kind: AlertKind | None = None,
    since: AwareDatetime | None = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> AlertsPublic:
    before = _parse_cursor(cursor) if cursor else None
    records = await recent_alerts(conn, limit=limit, status=status_, kind=kind, since=since, before=before)
    return AlertsPublic(data=[AlertPublic.of(r) for r in records], count=len(records),
                        next_cursor=_cursor(records[-1]) if len(records) == limit else None)


@router.get("/decision-reasons", response_model=list[str],
            summary="The reasons an officer may give for accepting or rejecting a hit")
async def decision_reasons(settings: SettingsDep, _: HitDecider) -> list[str]:
    return settings.hit_decision_reasons


@router.get("/decisions", response_model=DecisionsPage, response_model_exclude_none=True,
            summary="Hit decisions (accepted / rejected, with reasons) in a period, oldest first: the report")
async def decisions(
    conn: ConnDep,
    _: DecisionReporter,
    since: AwareDatetime,
    until: AwareDatetime,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=200, description="previous page's next_cursor")] = None,
) -> DecisionsPage:
    after = _parse_decision_cursor(cursor) if cursor else None
    events = await alert_decisions(conn, since=since, until=until, limit=limit, after=after)
    return DecisionsPage(data=[HistoryEntry.model_validate(e) for e in events], count=len(events),
                         next_cursor=_token(events[-1].at, events[-1].alert_event_id)
                         if len(events) == limit else None)


@router.get("/{alert_id}", response_model=AlertPublic, response_model_exclude_none=True)
async def read_alert(alert_id: uuid.UUID, conn: ConnDep, _: AlertReader) -> AlertPublic:
    record = await get_alert(conn, alert_id)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such alert")
    return AlertPublic.of(record)


@router.get("/{alert_id}/crop.jpg", response_class=Response,
            summary="The plate crop of the read an alert was raised for (the alert's own copy; audited)",
            responses={200: {"content": {"image/jpeg": {}}},
                       404: {"description": "no such alert, or no crop with it"}})
async def read_alert_crop(alert_id: uuid.UUID, conn: ConnDep, user: AlertReader) -> Response:
    """Kept as long as the alert, after the read and its own crop are gone. A crop shows a plate:
    each fetch, found or not, is audited (``alert.crop``) by the statement that reads it, so if
    its record cannot be written the crop is not served."""
    note = AuditNote(actor=user.username, role=user.role, action="alert.crop", query={"alert_id": alert_id},
                     purpose=CROP_PURPOSE)
    return crop_response(await alert_crop(conn, alert_id, audit=note), missing="no crop with this alert")


@router.get("/{alert_id}/sightings/{read_id}/crop.jpg", response_class=Response,
            summary="The plate crop of a sighting in an incident's route (the incident's own copy; audited)",
            responses={200: {"content": {"image/jpeg": {}}},
                       404: {"description": "no such alert, no such sighting in its route, or no crop"}})
async def read_sighting_crop(
    alert_id: uuid.UUID, read_id: uuid.UUID, conn: ConnDep, user: AlertReader
) -> Response:
    """``read_id`` is a sighting's in ``evidence.route``: where the wanted vehicle went after the first
    camera, kept as long as the alert while the route holds the sighting. Audited as the alert's crop
    (``alert.sighting_crop``), by the statement that reads it."""
    note = AuditNote(actor=user.username, role=user.role, action="alert.sighting_crop",
                     query={"alert_id": alert_id, "read_id": read_id}, purpose=CROP_PURPOSE)
    return crop_response(await sighting_crop(conn, alert_id, read_id, audit=note),
                         missing="no crop with this sighting")


@router.get("/{alert_id}/history", response_model=list[HistoryEntry], response_model_exclude_none=True,
            summary="Every status the alert went through, oldest first",
            responses={404: {"description": "no such alert"}})
async def read_history(alert_id: uuid.UUID, conn: ConnDep, _: AlertReader) -> list[HistoryEntry]:
    """404 for an unknown alert, as GET /{alert_id} answers: an empty list had said the alert
    existed with nothing done to it. History rows go with their alert, so only an empty one asks."""
    events = await alert_history(conn, alert_id)
    if not events and await get_alert(conn, alert_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such alert")
    return [HistoryEntry.model_validate(e) for e in events]


async def _change(
    request: Request, pool: PoolDep, alert_id: uuid.UUID, new_status: str, actor: str, *,
    allowed_from: set[str] | None, note: str | None, reason: str | None = None,
    hits_only: bool = False,
) -> AlertPublic:
    # the connection goes back to the pool before publishing: a slow or absent broker must
    # not hold connections that plate look-ups need
    async with pool.connection() as conn, conn.transaction():
        current = await lock_alert(conn, alert_id)
        if current is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such alert")
        if hits_only and current.kind != AlertKind.WATCHLIST_HIT.value:
            raise HTTPException(status.HTTP_409_CONFLICT, "only watchlist hits are accepted or rejected")
        if current.status in FINAL or (allowed_from is not None and current.status not in allowed_from):
            raise HTTPException(status.HTTP_409_CONFLICT,
                                _DECIDED.get(current.status, f"alert is {current.status}"))
        if current.status == AlertStatus.ACCEPTED.value and new_status != AlertStatus.RESOLVED.value:
            raise HTTPException(status.HTTP_409_CONFLICT, _DECIDED[current.status])
        record = await update_alert_status(conn, alert_id, new_status, actor, note=note, reason=reason)
    assert record is not None  # locked above
    publisher: EventPublisher = request.app.state.publisher
    await publisher.alert_changed(record.as_event())
    return AlertPublic.of(record)


@router.post("/{alert_id}/status", response_model=AlertPublic, response_model_exclude_none=True,
             summary="Acknowledge, escalate or resolve, with a note (resolved is final)",
             responses={404: {"description": "no such alert"},
                        409: {"description": "the alert is resolved or rejected (closed), or accepted "
                                             "by an officer (then it can only be resolved)"}})
async def change_status(
    alert_id: uuid.UUID, change: StatusChange, request: Request, pool: PoolDep, user: AlertHandler
) -> AlertPublic:
    note = change.note.strip() if change.note and change.note.strip() else None
    return await _change(request, pool, alert_id, change.status, user.username, allowed_from=None, note=note)


@router.post("/{alert_id}/decision", response_model=AlertPublic, response_model_exclude_none=True,
             summary="Accept or reject a watchlist hit with a reason from the configured list",
             responses={404: {"description": "no such alert"},
                        409: {"description": "the alert is not a watchlist hit, is closed (resolved or "
                                             "rejected), or was decided already (accepted)"}})
async def decide(
    alert_id: uuid.UUID, decision: HitDecision, request: Request, pool: PoolDep, settings: SettingsDep,
    user: HitDecider,
) -> AlertPublic:
    if decision.reason not in settings.hit_decision_reasons:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"reason must be one of: {'; '.join(settings.hit_decision_reasons)}")
    note = decision.note.strip() if decision.note and decision.note.strip() else None
    return await _change(request, pool, alert_id, decision.decision, user.username, allowed_from=DECIDABLE,
                         note=note, reason=decision.reason, hits_only=True)
