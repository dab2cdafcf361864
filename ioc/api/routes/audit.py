"""The audit trail: auditors see everyone's queries; everyone sees their own."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, ConfigDict

from ioc.api.deps import AnyRole, AuditReader, ConnDep
from ioc.storage.audit import AuditRecord, list_audit

router = APIRouter(prefix="/api/audit", tags=["audit"])


class AuditPublic(BaseModel):
    audit_id: int
    at: datetime
    actor: str
    role: str
    action: str
    query: dict[str, Any]
    purpose: str
    result_count: int

    model_config = ConfigDict(from_attributes=True)  # built from a stored AuditRecord


class AuditPage(BaseModel):
    data: list[AuditPublic]
    count: int
    next_before_id: int | None = None


Limit = Annotated[int, Query(ge=1, le=500)]


def _page(records: list[AuditRecord], limit: int) -> AuditPage:
    return AuditPage(data=[AuditPublic.model_validate(r) for r in records], count=len(records),
                     next_before_id=records[-1].audit_id if len(records) == limit else None)


@router.get("", response_model=AuditPage, summary="Everyone's audit records, newest first")
async def everyone(
    conn: ConnDep,
    _: AuditReader,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    limit: Limit = 100,
    before_id: int | None = None,
) -> AuditPage:
    records = await list_audit(conn, actor=actor, action=action, since=since, until=until, limit=limit,
                               before_id=before_id)
    return _page(records, limit)


@router.get("/mine", response_model=AuditPage, summary="The caller's own query history, newest first")
async def mine(
    conn: ConnDep,
    user: AnyRole,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    limit: Limit = 100,
    before_id: int | None = None,
) -> AuditPage:
    records = await list_audit(conn, actor=user.username, since=since, until=until, limit=limit,
                               before_id=before_id)
    return _page(records, limit)
