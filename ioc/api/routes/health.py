"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter

from ioc.api.deps import ConnDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness and database readiness (public)")
async def healthz(conn: ConnDep) -> dict[str, str]:
    await conn.execute("SELECT 1")
    return {"status": "ok"}
