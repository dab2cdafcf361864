"""The audit trail of plate queries: officers see their own, auditors everyone's."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from ioc.api.deps import AUDIT_READERS, SELF_AUDIT_READERS, ConnDep, require_roles
from ioc.api.security import Principal
from ioc.storage.audit import list_audit

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


def _public(records) -> list[AuditPublic]:  # noqa: ANN001
    return [AuditPublic(**{f: getattr(r, f) for f in AuditPublic.model_fields}) for r in records]


@router.get("/mine", response_model=list[AuditPublic], summary="My own query history")
async def mine(
    conn: ConnDep, user: Annotated[Principal, Depends(require_roles(*SELF_AUDIT_READERS))],
    limit: Annotated[int, Query(ge=1, le=500)] = 100, before_id: int | None = None,
) -> list[AuditPublic]:
    return _public(await list_audit(conn, actor=user.username, limit=limit, before_id=before_id))


@router.get("", response_model=list[AuditPublic], summary="Everyone's queries (auditors)")
async def everyone(
    conn: ConnDep, _: Annotated[Principal, Depends(require_roles(*AUDIT_READERS))],
    actor: str | None = None, action: str | None = None,
    since: datetime | None = None, until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100, before_id: int | None = None,
) -> list[AuditPublic]:
    return _public(await list_audit(conn, actor=actor, action=action, since=since, until=until,
                                    limit=limit, before_id=before_id))
