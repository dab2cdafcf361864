"""The FastAPI application: routers, middleware, the operator page and the lifespan
(database pool, live alerts consumer, Kafka producer)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
from fastapi import APIRouter, FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.middleware.gzip import GZipMiddleware

from ioc import metrics
from ioc.api.accounts import UserDirectory
from ioc.api.deps import roles_of
from ioc.api.live_alerts import AlertBroadcaster
from ioc.api.middleware import RequestLimits, RequestMetrics, SecurityHeaders
from ioc.api.publishing import EventPublisher
from ioc.api.routes import alerts, audit, auth, cameras, counts, health, live, plates, reads, users, watchlist
from ioc.api.security import LoginThrottle
from ioc.config import Settings, get_settings
from ioc.process_tuning import tune_garbage_collection
from ioc.storage.database import open_pool

logger = logging.getLogger(__name__)

__all__ = ["STATIC_DIR", "create_app"]

STATIC_DIR = Path(__file__).parent / "static"
# and /metrics where IOC_API_METRICS_PORT is unset (development, tests); deployments set it, so the
# metrics are served on a port of their own and the API port answers /metrics with 404
PUBLIC_PATHS = {"/healthz", "/livez", "/api/auth/token", "/", "/openapi.json"}

_DESCRIPTION = """\
Live alerts, plate look-ups, watchlist management and the audit trail of the IOC
stream processor.

Sign in with `POST /api/auth/token` (OAuth2 password grant) and send the token as
`Authorization: Bearer ...`. Every endpoint lists the roles it admits
(`x-roles`); every plate query needs a `purpose` and is audited, and so is every crop fetched.
"""


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    # autocommit: a look-up is one query plus its audit row, not BEGIN/query/INSERT/COMMIT;
    # handlers that write more than one row open a transaction explicitly
    pool = await open_pool(settings.database_conninfo(), min_size=2, max_size=settings.database_pool_size,
                           name="ioc-api", autocommit=True,
                           statement_timeout_s=settings.api_statement_timeout_s)
    app.state.pool = pool
    app.state.users = UserDirectory(pool)
    publisher = app.state.publisher = EventPublisher(settings, pool)
    broadcaster = app.state.alerts = AlertBroadcaster(settings)
    heartbeat = asyncio.create_task(metrics.beat_event_loop(), name="event-loop-heartbeat")
    try:
        await publisher.start()
        if settings.kafka_bootstrap:
            await broadcaster.start()
        tune_garbage_collection()
        yield
    finally:
        heartbeat.cancel()
        await broadcaster.stop()
        await publisher.stop()
        await pool.close()


def _document_roles(router: APIRouter) -> None:
    """Put each route's roles in the OpenAPI document (``x-roles`` and the description)."""
    for route in router.routes:
        if not isinstance(route, APIRoute):
            continue
        roles = roles_of(route.dependant)
        extra = dict(route.openapi_extra or {})
        extra["x-roles"] = list(roles) if roles is not None else ["public"]
        route.openapi_extra = extra
        who = ", ".join(roles) if roles is not None else "public, no token"
        route.description = f"{route.description}\n\n**Roles:** {who}".strip()


async def _unstorable_value(request: Request, exc: Exception) -> JSONResponse:
    """A value the database cannot take or compare (a NUL character, a time out of its
    range) is the caller's mistake: 422, not a server error. Nothing was stored: the
    request's connection rolls back."""
    logger.warning("%s %s: value refused by the database: %s", request.method, request.url.path, exc)
    return JSONResponse({"detail": "a value in the request cannot be stored or searched "
                         "(control characters such as NUL, or out of range)"},
                        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _query_timed_out(request: Request, exc: Exception) -> JSONResponse:
    """A query the database cancelled at ``IOC_API_STATEMENT_TIMEOUT_S`` (a look-up no index
    narrows, such as a fuzzy ``*12345`` over a month): 503 with what to do, not a 500."""
    logger.warning("%s %s: query cancelled: %s", request.method, request.url.path, exc)
    return JSONResponse({"detail": "the query took too long and was cancelled: narrow it "
                         "(a shorter time window, more characters of the plate) or try again later"},
                        status_code=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "30"})


async def _invalid_request(request: Request, exc: Exception) -> Response:
    """FastAPI's 422 answer, written as ASCII JSON: a lone surrogate escape (``"\\ud800"``,
    valid JSON but not encodable as UTF-8) echoed in the error would otherwise make
    writing the answer itself fail with a 500."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    body = json.dumps({"detail": jsonable_encoder(errors)}, ensure_ascii=True).encode()
    return Response(body, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, media_type="application/json")


def _document_422(app: FastAPI) -> None:
    """The 422 body as the API sends it: FastAPI documents ``detail`` as a list of field
    errors, but checks in the handlers (a purpose that says nothing, a pattern that
    would match every plate) answer with one message."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schemas = generate().get("components", {}).get("schemas", {})
            error = schemas.get("HTTPValidationError", {}).get("properties", {})
            if "detail" in error:
                error["detail"] = {"title": "Detail", "anyOf": [
                    {k: v for k, v in error["detail"].items() if k != "title"},
                    {"type": "string", "description": "one message"}]}
        return app.openapi_schema or generate()

    app.openapi = openapi  # type: ignore[method-assign] - FastAPI's documented way to amend the schema


def _operator_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API for ``settings`` (default: the environment's); nothing connects until startup."""
    settings = settings or get_settings()
    app = FastAPI(title="IOC stream processor API", version="1", description=_DESCRIPTION,
                  lifespan=_lifespan, openapi_url="/openapi.json", docs_url="/docs", redoc_url=None,
                  max_body_size=settings.api_max_body_bytes)
    app.state.settings = settings
    app.state.login_throttle = LoginThrottle()
    # outermost last: metrics see every response; gzip for slow mobile links
    app.add_middleware(GZipMiddleware, minimum_size=500)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestMetrics)
    app.add_middleware(RequestLimits)  # outermost: refuses before metrics label anything
    app.add_exception_handler(psycopg.DataError, _unstorable_value)
    app.add_exception_handler(psycopg.errors.QueryCanceled, _query_timed_out)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    # live before alerts: /api/alerts/stream must not be read as an alert id
    for module in (health, auth, plates, reads, live, alerts, watchlist, counts, cameras, audit, users):
        _document_roles(module.router)
        app.include_router(module.router)
    if not settings.api_metrics_port:  # else on a port of its own (ioc api starts it)
        _document_roles(health.metrics_router)
        app.include_router(health.metrics_router)
    app.add_api_route("/", _operator_page, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    _document_422(app)
    return app
