"""The FastAPI application: routes, metrics, limits, the operator page."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiokafka import AIOKafkaProducer
from fastapi import FastAPI, Request
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ioc import metrics
from ioc.api.live_alerts import AlertBroadcaster
from ioc.api.routes import alerts, audit, auth, health, operations, plates, watchlist
from ioc.api.security import LoginThrottle
from ioc.config import Settings
from ioc.storage.database import open_pool

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = await open_pool(settings.database_conninfo(), min_size=1,
                                         max_size=settings.database_pool_size)
        app.state.producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=0)
        await app.state.producer.start()
        app.state.alerts = AlertBroadcaster(settings)
        await app.state.alerts.start()
        try:
            yield
        finally:
            await app.state.alerts.stop()
            await app.state.producer.stop()
            await app.state.pool.close()

    app = FastAPI(
        title="IOC stream processor API",
        summary="Alerts, plate look-ups and watchlist for an Intelligent Operations Centre",
        version="1.0.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.login_throttle = LoginThrottle()
    app.add_middleware(GZipMiddleware, minimum_size=500)

    @app.middleware("http")
    async def limits_and_metrics(request: Request, call_next):  # noqa: ANN001, ANN202
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > settings.api_max_body_bytes):
            return JSONResponse({"detail": "request body too large"}, status_code=413)
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        metrics.HTTP_REQUESTS.labels(path, request.method, str(response.status_code)).inc()
        metrics.HTTP_REQUEST_SECONDS.labels(path, request.method).observe(time.perf_counter() - started)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    for module in (health, auth, alerts, plates, watchlist, operations, audit):
        app.include_router(module.router)
    app.include_router(plates.crops)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        """Prometheus text format (public, like /healthz; restrict at the ingress if needed)."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app.mount("/", StaticFiles(directory=STATIC_DIR, html=True), name="operator-page")
    return app
