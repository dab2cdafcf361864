"""Alerts: the operators' queue, live updates, and hit decisions."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from ioc.api.deps import (
    ALERT_HANDLERS,
    ALERT_READERS,
    HIT_DECIDERS,
    ConnDep,
    SettingsDep,
    require_roles,
)
from ioc.api.security import Principal
from ioc.schemas import AlertKind, AlertStatus
from ioc.storage.alerts import (
    AlertRecord,
    alert_decisions,
    alert_history,
    get_alert,
    recent_alerts,
    update_alert_status,
)

router = APIRouter(prefix="/api/alerts", tags=["alerts"])

SSE_KEEPALIVE_S = 15.0


class AlertPublic(BaseModel):
    alert_id: uuid.UUID
    kind: str
    severity: str
    subject: str
    status: str
    raised_at: datetime
    captured_at: datetime | None
    checkpoint_id: str | None
    camera_id: str | None
    read_id: uuid.UUID | None
    evidence: dict[str, Any]

    @classmethod
    def of(cls, record: AlertRecord) -> AlertPublic:
        return cls(**{name: getattr(record, name) for name in cls.model_fields})


class AlertsPublic(BaseModel):
    data: list[AlertPublic]
    count: int


class StatusChange(BaseModel):
    status: Literal["acknowledged", "escalated", "resolved"]
    note: str | None = Field(None, max_length=1000)


class HitDecision(BaseModel):
    decision: Literal["accepted", "rejected"]
    reason: str = Field(max_length=200)
    note: str | None = Field(None, max_length=1000)


class HistoryEntry(BaseModel):
    status: str
    actor: str
    at: datetime
    note: str | None
    reason: str | None


@router.get("", response_model=AlertsPublic, summary="Newest alerts first")
async def list_alerts(
    conn: ConnDep,
    _: Annotated[Principal, Depends(require_roles(*ALERT_READERS))],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    status_: Annotated[list[AlertStatus] | None, Query(alias="status")] = None,
    kind: AlertKind | None = None,
    since: datetime | None = None,
) -> AlertsPublic:
    records = await recent_alerts(conn, limit=limit, status=status_, kind=kind, since=since)
    return AlertsPublic(data=[AlertPublic.of(r) for r in records], count=len(records))


@router.get("/stream", summary="Server-sent events: every new or updated alert")
async def stream_alerts(
    request: Request, _: Annotated[Principal, Depends(require_roles(*ALERT_READERS))]
) -> StreamingResponse:
    broadcaster = request.app.state.alerts

    async def events():  # noqa: ANN202
        queue = broadcaster.subscribe()
        try:
            yield b": connected\n\n"
            while not await request.is_disconnected():
                try:
                    payload = await asyncio.wait_for(queue.get(), timeout=SSE_KEEPALIVE_S)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                yield b"event: alert\ndata: " + payload + b"\n\n"
        finally:
            broadcaster.unsubscribe(queue)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/decision-reasons", response_model=list[str], summary="Reasons for accepting or rejecting hits")
async def decision_reasons(
    settings: SettingsDep, _: Annotated[Principal, Depends(require_roles(*HIT_DECIDERS))]
) -> list[str]:
    return settings.hit_decision_reasons


@router.get("/decisions", response_model=list[HistoryEntry], summary="Hit decisions in a period (report)")
async def decisions(
    conn: ConnDep,
    _: Annotated[Principal, Depends(require_roles("supervisor", "auditor", "admin"))],
    since: datetime,
    until: datetime,
) -> list[HistoryEntry]:
    return [HistoryEntry(status=e.status, actor=e.actor, at=e.at, note=e.note, reason=e.reason)
            for e in await alert_decisions(conn, since=since, until=until)]


@router.get("/{alert_id}", response_model=AlertPublic)
async def read_alert(
    alert_id: uuid.UUID, conn: ConnDep,
    _: Annotated[Principal, Depends(require_roles(*ALERT_READERS))],
) -> AlertPublic:
    record = await get_alert(conn, alert_id)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such alert")
    return AlertPublic.of(record)


@router.get("/{alert_id}/history", response_model=list[HistoryEntry])
async def read_history(
    alert_id: uuid.UUID, conn: ConnDep,
    _: Annotated[Principal, Depends(require_roles(*ALERT_READERS))],
) -> list[HistoryEntry]:
    return [HistoryEntry(status=e.status, actor=e.actor, at=e.at, note=e.note, reason=e.reason)
            for e in await alert_history(conn, alert_id)]


@router.post("/{alert_id}/status", response_model=AlertPublic, summary="Acknowledge, escalate or resolve")
async def change_status(
    alert_id: uuid.UUID, change: StatusChange, conn: ConnDep,
    user: Annotated[Principal, Depends(require_roles(*ALERT_HANDLERS))],
) -> AlertPublic:
    record = await update_alert_status(conn, alert_id, change.status, user.username, note=change.note)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such alert")
    return AlertPublic.of(record)


@router.post("/{alert_id}/decision", response_model=AlertPublic, summary="Accept or reject a hit")
async def decide(
    alert_id: uuid.UUID, decision: HitDecision, conn: ConnDep, settings: SettingsDep,
    user: Annotated[Principal, Depends(require_roles(*HIT_DECIDERS))],
) -> AlertPublic:
    if decision.reason not in settings.hit_decision_reasons:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY,
                            f"reason must be one of: {'; '.join(settings.hit_decision_reasons)}")
    record = await update_alert_status(conn, alert_id, decision.decision, user.username,
                                       note=decision.note, reason=decision.reason)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such alert")
    return AlertPublic.of(record)
