"""ASGI middleware: per-route HTTP metrics, browser security headers (``no-store`` on the API's
answers) and request size limits.

Both are plain ASGI (no ``BaseHTTPMiddleware``), so streamed responses such as
the live alert stream pass through untouched.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ioc import metrics

__all__ = ["MAX_HEADER_BYTES", "MAX_QUERY_BYTES", "RequestLimits", "RequestMetrics", "SecurityHeaders"]


class RequestMetrics:
    """``ioc_http_requests_total`` and ``ioc_http_request_seconds`` labelled by route
    template (``/api/alerts/{alert_id}``), never by the raw path, so label sets stay small.

    An event stream (the live alerts) is timed to its response head, not to its end: it stays
    open for the console's whole shift, and its hours had pinned the route's p99 at the top bucket.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status, answered = 500, None

        async def status_send(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status = message["status"]
                if _is_event_stream(message):
                    answered = time.perf_counter()
            await send(message)

        try:
            await self.app(scope, receive, status_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            metrics.HTTP_REQUESTS.labels(template, method, str(status)).inc()
            ended = answered or time.perf_counter()
            metrics.HTTP_REQUEST_SECONDS.labels(template, method).observe(ended - started)


def _is_event_stream(start: Message) -> bool:
    return any(name.lower() == b"content-type" and value.startswith(b"text/event-stream")
               for name, value in start.get("headers", []))


_SECURITY_HEADERS = [
    # the operator page loads nothing from elsewhere: no CDN, no inline script
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
     b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


_NO_STORE = (b"cache-control", b"no-store")


class SecurityHeaders:
    """Browser hardening headers on every response (the API's own docs page excepted from CSP).

    Answers under ``no_store`` (the API's) that set no ``Cache-Control`` of their own get
    ``no-store``: sightings, alerts, the audit trail and watchlist exports are not kept in a
    handheld's or a shared console PC's browser cache. Those that set one keep it (a crop's
    ``private, no-store``, the live stream's ``no-cache``).
    """

    def __init__(self, app: ASGIApp, *, csp_exempt: tuple[str, ...] = ("/docs",),
                 no_store: tuple[str, ...] = ("/api/",)) -> None:
        self.app = app
        self.csp_exempt = csp_exempt
        self.no_store = no_store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        exempt = path.startswith(self.csp_exempt)
        no_store = path.startswith(self.no_store)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in _SECURITY_HEADERS:
                    if name not in present and not (exempt and name == b"content-security-policy"):
                        headers.append((name, value))
                if no_store and _NO_STORE[0] not in present:
                    headers.append(_NO_STORE)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


MAX_QUERY_BYTES = 8 * 1024    # the longest real query (a sightings search) is under 1 KiB
MAX_HEADER_BYTES = 32 * 1024  # what common proxies allow in all (4 x 8 KiB); a token is about 300 bytes


class RequestLimits:
    """414 for an over-long query string, 431 for over-large headers, before any route runs.

    uvicorn's parser takes headers of any size; refusing them here keeps them out of
    logs, metrics labels, token parsing and the database.
    """

    def __init__(self, app: ASGIApp, *, max_query_bytes: int = MAX_QUERY_BYTES,
                 max_header_bytes: int = MAX_HEADER_BYTES) -> None:
        self.app = app
        self.max_query_bytes = max_query_bytes
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = None
            if len(scope.get("query_string", b"")) > self.max_query_bytes:
                refusal = 414, b"query string too long"
            elif sum(len(name) + len(value) for name, value in scope["headers"]) > self.max_header_bytes:
                refusal = 431, b"request headers too large"
            if refusal is not None:
                status, detail = refusal
                body = b'{"detail":"' + detail + b'"}'
                await send({"type": "http.response.start", "status": status, "headers": [
                    (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close")]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
