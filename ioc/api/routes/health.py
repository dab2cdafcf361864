"""Liveness, readiness and Prometheus metrics (public: probes and scrapers carry no token).

``metrics_router`` is included only where the process serves its metrics on the API's own port
(``IOC_API_METRICS_PORT`` unset): deployments give them a port of their own, which the public
does not reach (``ioc api`` starts it)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response, status
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from pydantic import BaseModel

from ioc.api.deps import PoolDep

router = APIRouter(tags=["health"])
metrics_router = APIRouter(tags=["health"])

ComponentState = Literal["ok", "down", "disabled"]


class Alive(BaseModel):
    status: Literal["ok"]


class HealthPublic(BaseModel):
    status: Literal["ok", "degraded", "down"]
    database: ComponentState
    kafka_publisher: ComponentState
    live_alerts: ComponentState


async def _database_ok(pool: PoolDep) -> bool:
    try:
        async with pool.connection(timeout=2.0) as conn:
            await conn.execute("SELECT 1")
    except Exception:
        return False
    return True


@router.get("/livez", response_model=Alive, summary="Liveness (public)")
async def livez() -> Alive:
    """200 while the process serves requests; nothing else is checked. Live alert streams need
    only Kafka, so a database failover must not get the process restarted: readiness
    (``/healthz``) takes it out of the Service meanwhile."""
    return Alive(status="ok")


@router.get("/healthz", response_model=HealthPublic, summary="Readiness (public)",
            responses={503: {"model": HealthPublic, "description": "database unreachable"}})
async def healthz(request: Request, pool: PoolDep, response: Response) -> HealthPublic:
    """200 while the database answers (Kafka being down degrades, not fails: look-ups still work)."""
    kafka_configured = bool(request.app.state.settings.kafka_bootstrap)
    publisher, alerts = request.app.state.publisher, request.app.state.alerts
    database: ComponentState = "ok" if await _database_ok(pool) else "down"
    kafka: ComponentState = ("ok" if publisher.connected else "down") if kafka_configured else "disabled"
    live: ComponentState = ("ok" if alerts.ready.is_set() else "down") if kafka_configured else "disabled"
    overall = "down" if database == "down" else ("degraded" if "down" in (kafka, live) else "ok")
    if overall == "down":
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return HealthPublic(status=overall, database=database, kafka_publisher=kafka, live_alerts=live)


@metrics_router.get("/metrics", summary="Prometheus metrics (public: deployments set IOC_API_METRICS_PORT)",
                    response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def prometheus_metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
