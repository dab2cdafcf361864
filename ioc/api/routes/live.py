"""The live alert stream (server-sent events) for operator pages.

Each event is ``event: alert`` with an alert in the same JSON shape as
``GET /api/alerts/{id}`` and an ``id:`` (the stream position, see
``ioc.api.live_alerts``). A client that reconnects with that id, in the
``Last-Event-ID`` header or the ``last_event_id`` query parameter, first gets
every alert it missed, then the live ones, none twice. When the gap is too old to
replay it gets ``event: reset`` instead and should reload the list
(``GET /api/alerts``). ``retry:`` tells clients to reconnect after a second;
``: keep-alive`` comments every 15 s keep proxies from closing an idle stream.

A stream ends when its caller may no longer read alerts: their token expired, or they were
deactivated or given another role (checked every :data:`ADMISSION_CHECK_S`, through the user
directory and its cache). The client's reconnection then gets 401 (403 for a role that reads no
alerts), as every other request would; the operator page signs out on either.
Where the database cannot answer, the stream goes on until the token expires: a video wall
stays live through a database outage.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated

import psycopg
from fastapi import APIRouter, Header, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse

from ioc.api.accounts import UserDirectory
from ioc.api.deps import ALERT_READERS, AlertReader
from ioc.api.live_alerts import CLOSED, AlertBroadcaster, StreamEvent, Subscription
from ioc.api.security import Principal

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/alerts", tags=["alerts"])

KEEPALIVE_S = 15.0
KEEPALIVE_COMMENT = b": keep-alive\n\n"
RETRY_MS = 1000
READY_WAIT_S = 5.0  # a starting process reads the replay window from the topic first
REACH_WAIT_S = 1.0  # an id from a replica slightly ahead: wait for this process to catch up
ADMISSION_CHECK_S = 15.0  # how often a stream checks that its caller may still read alerts
_LOOKUP_WAIT_S = 1.0  # the longest a check holds the stream up when the database is slow or down


def _frame(event: StreamEvent, subscription: Subscription) -> bytes:
    return b"id: %s\nevent: alert\ndata: %s\n\n" % (subscription.event_id.encode(), event.payload)


async def _still_admitted(request: Request, caller: Principal) -> bool:
    """Whether the stream's caller may still read alerts (a stream outlives the request that
    checked them); yes while the database cannot say, until their token expires."""
    if caller.expires is not None and caller.expires <= time.time():
        return False
    directory: UserDirectory = request.app.state.users
    try:
        looked_up = directory.lookup(caller.username, issued_at=caller.issued, generation=caller.generation,
                                     session_id=caller.session_id)
        current = await asyncio.wait_for(looked_up, _LOOKUP_WAIT_S)
    except (TimeoutError, psycopg.Error):
        logger.warning("live stream of %s: user directory unavailable, stream kept", caller.username)
        return True
    return current is not None and current.role in ALERT_READERS


async def _events(
    request: Request, caller: Principal, broadcaster: AlertBroadcaster, last_event_id: str | None
) -> AsyncIterator[bytes]:
    subscription = broadcaster.subscribe(last_event_id)
    try:
        head = b"retry: %d\nid: %s\n" % (RETRY_MS, subscription.event_id.encode())
        if subscription.reset is not None:
            yield head + b"event: reset\ndata: %s\n\n" % json.dumps({"reason": subscription.reset}).encode()
        else:
            yield head + b": connected, replaying %d\n\n" % len(subscription.replay)
        for event in subscription.replay:
            if subscription.accept(event):
                yield _frame(event, subscription)
        subscription.replay.clear()
        next_check = time.monotonic() + ADMISSION_CHECK_S
        while not await request.is_disconnected():
            if time.monotonic() >= next_check:
                if not await _still_admitted(request, caller):
                    return
                next_check = time.monotonic() + ADMISSION_CHECK_S
            try:
                event = await asyncio.wait_for(subscription.queue.get(), timeout=KEEPALIVE_S)
            except TimeoutError:
                yield KEEPALIVE_COMMENT
                continue
            if event is CLOSED:
                return
            if subscription.accept(event):
                yield _frame(event, subscription)
    finally:
        broadcaster.unsubscribe(subscription)


@router.get("/stream", summary="Server-sent events: every new or changed alert, as it happens; resumable",
            response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}}},
                       503: {"description": "live alerts not available yet (retry)"}})
async def stream(
    request: Request,
    caller: AlertReader,
    # no length limit here: a refused id would refuse every reconnection; one that is not
    # ours resets the page instead (and RequestLimits bounds headers and query strings)
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    last_event_id: Annotated[str | None, Query(
        description="The last id received, for clients that cannot set Last-Event-ID")] = None,
) -> StreamingResponse:
    broadcaster: AlertBroadcaster = request.app.state.alerts
    if not await broadcaster.wait_ready(READY_WAIT_S):
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "live alerts not available yet",
                            headers={"Retry-After": "5"})
    last = last_event_id_header or last_event_id
    await broadcaster.reach(last, REACH_WAIT_S)
    return StreamingResponse(_events(request, caller, broadcaster, last),
                             media_type="text/event-stream",
                             # the page takes a stream silent for a few keep-alives for dead
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no",
                                      "X-Keep-Alive-Seconds": f"{KEEPALIVE_S:g}"})
