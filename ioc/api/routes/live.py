"""The live alert stream (server-sent events) for operator pages.

Each event is ``event: alert`` with an alert in the same JSON shape as
``GET /api/alerts/{id}``; ``: keep-alive`` comments every 15 s keep proxies
from closing an idle stream. The page reloads the list after reconnecting.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from ioc.api.deps import AlertReader
from ioc.api.live_alerts import CLOSED, AlertBroadcaster

router = APIRouter(prefix="/api/alerts", tags=["alerts"])

KEEPALIVE_S = 15.0


async def _events(request: Request, broadcaster: AlertBroadcaster) -> AsyncIterator[bytes]:
    queue = broadcaster.subscribe()
    try:
        yield b"retry: 3000\n: connected\n\n"
        while not await request.is_disconnected():
            try:
                payload = await asyncio.wait_for(queue.get(), timeout=KEEPALIVE_S)
            except TimeoutError:
                yield b": keep-alive\n\n"
                continue
            if payload == CLOSED:
                return
            yield b"event: alert\ndata: " + payload + b"\n\n"
    finally:
        broadcaster.unsubscribe(queue)


@router.get("/stream", summary="Server-sent events: every new or changed alert, as it happens",
            response_class=StreamingResponse, responses={200: {"content": {"text/event-stream": {}}}})
async def stream(request: Request, _: AlertReader) -> StreamingResponse:
    return StreamingResponse(_events(request, request.app.state.alerts), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
