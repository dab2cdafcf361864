"""The request-duration histogram: an event stream is timed to its response head."""

from __future__ import annotations

import asyncio

import httpx
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route

from ioc import metrics
from ioc.api.middleware import RequestMetrics

HELD_S = 0.6


async def _events(_request: object) -> StreamingResponse:
    async def body():  # noqa: ANN202 - an event every HELD_S / 3, like a quiet shift
        for n in range(3):
            await asyncio.sleep(HELD_S / 3)
            yield f"data: {n}\n\n"

    return StreamingResponse(body(), media_type="text/event-stream")


async def _slow_text(_request: object) -> PlainTextResponse:
    await asyncio.sleep(HELD_S)
    return PlainTextResponse("done")


def _observed(route: str) -> tuple[float, float]:
    """(count, sum) of ``ioc_http_request_seconds`` for ``route`` (GET)."""
    samples = {s.name: s.value for m in metrics.HTTP_REQUEST_SECONDS.collect() for s in m.samples
               if s.labels.get("route") == route}
    name = "ioc_http_request_seconds"
    return samples.get(f"{name}_count", 0.0), samples.get(f"{name}_sum", 0.0)


async def test_an_event_stream_is_timed_to_its_head_and_a_slow_answer_to_its_end() -> None:
    app = RequestMetrics(Starlette(routes=[Route("/t/events", _events), Route("/t/slow", _slow_text)]))
    before = {route: _observed(route) for route in ("/t/events", "/t/slow")}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        events = await client.get("/t/events")
        slow = await client.get("/t/slow")
    assert events.text.count("data:") == 3 and slow.text == "done"
    (n_events, s_events), (n_slow, s_slow) = (
        tuple(a - b for a, b in zip(_observed(route), before[route], strict=True))
        for route in ("/t/events", "/t/slow"))
    assert n_events == n_slow == 1
    assert s_events < HELD_S / 3, f"the stream was timed to its end: {s_events:.3f} s"
    assert s_slow >= HELD_S
