"""A client of the live alert stream that behaves like the operator page: it reconnects
after the server's ``retry:`` delay and resumes with ``Last-Event-ID``. Benchmarks
and tests use it to check, from the outside, that no alert is lost or repeated.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx

__all__ = ["LiveAlertClient", "SseEvent"]

_DEFAULT_RETRY_MS = 1000


@dataclass(frozen=True, slots=True)
class SseEvent:
    event: str
    data: str
    id: str | None


@dataclass
class LiveAlertClient:
    """``async for event in client.events()``: alert and reset events, across reconnections.

    ``connected_at`` holds the ``time.monotonic()`` of every successful (re)connection.
    """

    base_url: str
    token: str
    last_event_id: str | None = None
    use_query: bool = False  # send the id as ``?last_event_id=`` instead of the header
    retry_ms: int = _DEFAULT_RETRY_MS
    connected_at: list[float] = field(default_factory=list)
    failures: int = 0

    async def events(self) -> AsyncIterator[SseEvent]:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=httpx.Timeout(10.0, read=60.0),
                                     headers={"Authorization": f"Bearer {self.token}"}) as http:
            while True:
                try:
                    async for event in self._connection(http):
                        yield event
                except (httpx.HTTPError, OSError):
                    self.failures += 1
                await asyncio.sleep(self.retry_ms / 1000)

    async def _connection(self, http: httpx.AsyncClient) -> AsyncIterator[SseEvent]:
        headers, params = {"Accept": "text/event-stream"}, {}
        if self.last_event_id is not None:
            if self.use_query:
                params["last_event_id"] = self.last_event_id
            else:
                headers["Last-Event-ID"] = self.last_event_id
        async with http.stream("GET", "/api/alerts/stream", headers=headers, params=params) as response:
            if response.status_code != 200:
                self.failures += 1
                return
            self.connected_at.append(time.monotonic())
            kind, data, pending_id = "message", [], None
            async for line in response.aiter_lines():
                if line == "":
                    # the id counts once its event is complete: a cut-off event is not received
                    if pending_id is not None:
                        self.last_event_id, pending_id = pending_id, None
                    if data:
                        yield SseEvent(kind, "\n".join(data), self.last_event_id)
                    kind, data = "message", []
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "event":
                    kind = value
                elif name == "data":
                    data.append(value)
                elif name == "id" and "\0" not in value:
                    pending_id = value
                elif name == "retry" and value.isdigit():
                    self.retry_ms = int(value)

