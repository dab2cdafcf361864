"""The live alert stream: an alert produced to the real alerts topic reaches an open
server-sent-events stream, in the API's alert shape, within a fraction of a second;
a client that reconnects with its last event id gets what it missed, once, from the
same API process or another one; a gap older than the replay window resets the page."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from served_api import PASSWORD, ApiServer, store_alerts, watchlist_alert
from webdriver_client import browser_available, chromium

from ioc import metrics
from ioc.api import live_alerts
from ioc.api.live_alerts import AlertBroadcaster, Subscription, encode_position, parse_position
from ioc.api.live_client import LiveAlertClient, SseEvent
from ioc.api.routes import live
from ioc.api.security import Principal, issue_token
from ioc.config import Settings
from ioc.schemas import Alert, AlertStatus

TIMESCALE = pytest.mark.parametrize("database_url", ["timescaledb"], indirect=True)
PLATES = [f"30A1234{i}" for i in range(6)]  # several keys: the alerts spread over the topic's partitions


async def _producer(api: ApiServer) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(bootstrap_servers=api.settings.kafka_bootstrap, linger_ms=0)
    await producer.start()
    return producer


async def _raise(
    producer: AIOKafkaProducer, api: ApiServer, count: int, *, pause: float = 0.0
) -> list[Alert]:
    alerts = [watchlist_alert(PLATES[i % len(PLATES)]) for i in range(count)]
    await _send(producer, api, alerts, pause=pause)
    return alerts


async def _send(
    producer: AIOKafkaProducer, api: ApiServer, alerts: list[Alert], *, pause: float = 0.0
) -> None:
    for alert in alerts:
        await producer.send_and_wait(api.settings.topics.alerts, alert.to_json(), key=alert.subject.encode())
        await asyncio.sleep(pause)


class _Page:
    """A resuming client read by a task into a queue, as the operator page reads its stream."""

    def __init__(
        self, url: str, token: str, *, last_event_id: str | None = None, use_query: bool = False
    ) -> None:
        self.client = LiveAlertClient(url, token, last_event_id=last_event_id, use_query=use_query)
        self.events: asyncio.Queue[SseEvent] = asyncio.Queue()
        self._task: asyncio.Task | None = None

    async def open(self) -> _Page:
        """Connect and wait for the stream's opening position."""
        self._task = asyncio.create_task(self._pump())
        async with asyncio.timeout(10):  # a fresh page has a position once the stream opened
            while not (self.client.connected_at and self.client.last_event_id is not None):
                await asyncio.sleep(0.02)
        return self

    async def _pump(self) -> None:
        async for event in self.client.events():
            self.events.put_nowait(event)

    async def next(self, count: int = 1, timeout: float = 15.0) -> list[SseEvent]:
        got = []
        async with asyncio.timeout(timeout):
            while len(got) < count:
                got.append(await self.events.get())
        return got

    async def alerts(self, count: int, timeout: float = 15.0) -> list[SseEvent]:
        got = await self.next(count, timeout)
        assert all(e.event == "alert" for e in got), got
        return got

    async def nothing_more(self, wait: float = 1.0) -> None:
        await asyncio.sleep(wait)
        assert self.events.empty(), self.events.get_nowait()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _ids(events: list[SseEvent]) -> list[str]:
    return [json.loads(e.data)["alert_id"] for e in events]


def _per_plate(alert_ids: list[str], by_id: dict[str, str]) -> dict[str, list[str]]:
    """Alert ids per plate (Kafka key): Kafka's order, which the stream must keep."""
    plates: dict[str, list[str]] = {}
    for alert_id in alert_ids:
        plates.setdefault(by_id[alert_id], []).append(alert_id)
    return plates


@TIMESCALE
async def test_alert_from_the_topic_reaches_the_stream(api: ApiServer) -> None:
    token = await api.token("operator")
    producer = await _producer(api)
    latencies: list[float] = []
    page = await _Page(api.url, token).open()
    try:
        assert parse_position(page.client.last_event_id) is not None  # a position before any alert
        for i in range(20):
            alert = watchlist_alert(f"30A1234{i % 10}")
            sent = time.perf_counter()
            await producer.send_and_wait(api.settings.topics.alerts, alert.to_json(),
                                         key=alert.subject.encode())
            (received,) = await page.alerts(1, timeout=10)
            latencies.append(time.perf_counter() - sent)
            body = json.loads(received.data)
            assert body["alert_id"] == str(alert.alert_id)
            assert body["kind"] == "watchlist_hit" and body["status"] == "new"
            assert body["evidence"]["route"][0]["checkpoint_id"] == "CP01"
            assert parse_position(received.id) is not None
    finally:
        await page.close()
        await producer.stop()
    assert page.client.retry_ms == 1000
    assert len(latencies) == 20  # how fast: `ioc bench api` (speed goals live in benchmarks)


@TIMESCALE
async def test_a_burst_longer_than_a_queue_keeps_a_reading_page_connected(api: ApiServer) -> None:
    """An entry matching a day of past reads raises hundreds of alerts at once. The burst came
    off the topic in one fetch and was queued whole before any stream could send: every page,
    reading or not, was disconnected at 200 and reconnected (past the replay window, reset)."""
    token = await api.token("operator")
    producer = await _producer(api)
    page = await _Page(api.url, token).open()
    try:
        alerts = [watchlist_alert(PLATES[i % len(PLATES)]) for i in range(3 * live_alerts.QUEUE_SIZE)]
        sends = [await producer.send(api.settings.topics.alerts, a.to_json(), key=a.subject.encode())
                 for a in alerts]  # fmt: skip
        await asyncio.gather(*sends)  # all on the topic before the API's consumer asks again
        received = await page.alerts(len(alerts), timeout=30)
    finally:
        await page.close()
        await producer.stop()
    assert sorted(_ids(received)) == sorted(str(a.alert_id) for a in alerts)
    assert len(page.client.connected_at) == 1, "the page was disconnected"


@TIMESCALE
async def test_reconnect_replays_what_was_missed_once(api: ApiServer) -> None:
    token = await api.token("operator")
    producer = await _producer(api)
    pages: list[_Page] = []
    try:
        first = await _Page(api.url, token).open()
        pages.append(first)
        before = await _raise(producer, api, 5)
        seen = await first.alerts(5)
        # five plates on up to five partitions, merged by timestamp: alerts raised within the
        # same millisecond may come in either order
        assert sorted(_ids(seen)) == sorted(str(a.alert_id) for a in before)
        await first.close()  # the page goes away ...
        missed = await _raise(producer, api, 7)  # ... alerts keep coming ...
        # ... and it comes back with its last id while more are being raised (the seam)
        during = asyncio.create_task(_raise(producer, api, 10, pause=0.02))
        back = await _Page(api.url, token, last_event_id=seen[-1].id, use_query=True).open()
        pages.append(back)
        received = await back.alerts(17)
        raised = missed + await during
        await back.nothing_more()
    finally:
        for page in pages:
            await page.close()
        await producer.stop()
    by_id = {str(a.alert_id): a.subject for a in before + raised}
    got = _ids(received)
    assert sorted(got) == sorted(str(a.alert_id) for a in raised)  # all of them, each once
    assert _per_plate(got, by_id) == _per_plate([str(a.alert_id) for a in raised], by_id)


@TIMESCALE
async def test_another_replica_resumes_the_stream(
    api_factory: Callable[..., Awaitable[ApiServer]],
) -> None:
    replica_a = await api_factory()
    token = await replica_a.token("operator")
    producer = await _producer(replica_a)
    pages: list[_Page] = []
    try:
        first = await _Page(replica_a.url, token).open()
        pages.append(first)
        earlier = await _raise(producer, replica_a, 4)
        await first.alerts(4)
        # a second process (a replica, or this one restarted) fills its window from the topic
        replica_b = await api_factory()
        more = await _raise(producer, replica_a, 6)
        seen = await first.alerts(2)  # the page saw two of them on replica A ...
        await first.close()
        later = await _raise(producer, replica_a, 3)  # ... then lost its connection
        token_b = issue_token(Principal("operator", "operator"),
                              secret=replica_b.settings.auth_secret.get_secret_value(), ttl_s=600)
        moved = await _Page(replica_b.url, token_b, last_event_id=seen[-1].id).open()
        pages.append(moved)
        received = await moved.alerts(7)
        await moved.nothing_more()
    finally:
        for page in pages:
            await page.close()
        await producer.stop()
    # alerts raised within the same millisecond on different partitions may reach the page in
    # either order (the stream merges partitions by timestamp): the two seen need not be the first
    seen_ids = set(_ids(seen))
    expected = [a for a in more if str(a.alert_id) not in seen_ids] + later
    by_id = {str(a.alert_id): a.subject for a in earlier + more + later}
    got = _ids(received)
    assert sorted(got) == sorted(str(a.alert_id) for a in expected)
    assert _per_plate(got, by_id) == _per_plate([str(a.alert_id) for a in expected], by_id)


@TIMESCALE
async def test_a_gap_older_than_the_window_resets_the_page(
    api_factory: Callable[..., Awaitable[ApiServer]],
) -> None:
    api = await api_factory(api_live_replay_events=3)
    token = await api.token("operator")
    producer = await _producer(api)
    pages: list[_Page] = []
    try:
        first = await _Page(api.url, token).open()
        watcher = await _Page(api.url, token).open()  # stays connected: shows when the server has them
        pages += [first, watcher]
        await _raise(producer, api, 1)
        seen = await first.alerts(1)
        await first.close()
        await _raise(producer, api, 5)  # more than the window holds
        await watcher.alerts(6)
        late = await _Page(api.url, token, last_event_id=seen[-1].id).open()
        pages.append(late)
        (reset,) = await late.next(1)
        assert reset.event == "reset" and json.loads(reset.data) == {"reason": "gap too large"}
        (fresh,) = await _raise(producer, api, 1)
        assert _ids(await late.alerts(1)) == [str(fresh.alert_id)]  # then live as usual

        stranger = await _Page(api.url, token, last_event_id="not-an-id").open()
        pages.append(stranger)
        (reset,) = await stranger.next(1)
        assert reset.event == "reset" and json.loads(reset.data) == {"reason": "invalid id"}
    finally:
        for page in pages:
            await page.close()
        await producer.stop()


async def test_stream_without_token_is_refused(api: ApiServer) -> None:
    async with api.client() as client:
        assert (await client.get("/api/alerts/stream")).status_code == 401


async def _stream_ends(client: httpx.AsyncClient, during: Callable[[], Awaitable[object]]) -> None:
    """Open the stream, run ``during``, and wait (5 s at most) for the server to end it."""
    async with client.stream("GET", "/api/alerts/stream") as response:
        assert response.status_code == 200
        await during()
        async def to_the_end() -> None:
            async for _ in response.aiter_bytes():
                pass
        await asyncio.wait_for(to_the_end(), 5)


async def test_a_stream_ends_when_its_user_is_deactivated(
    api: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "ADMISSION_CHECK_S", 0.2)
    monkeypatch.setattr(live, "KEEPALIVE_S", 0.2)
    await api.token("admin")
    await api.token("operator", "wall-2")
    async with api.client("admin") as admin, api.client("wall-2") as wall:
        async def deactivate() -> None:
            assert (await admin.post("/api/users/wall-2/deactivate")).status_code == 204
        await _stream_ends(wall, deactivate)
        assert (await wall.get("/api/alerts/stream")).status_code == 401


async def test_a_stream_ends_when_its_token_is_signed_out(
    api: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token signed out (a copy of it, say, still streaming a shared wall's alerts somewhere)
    kept its open stream until it expired: the stream's checks did not ask for the token's id."""
    monkeypatch.setattr(live, "ADMISSION_CHECK_S", 0.2)
    monkeypatch.setattr(live, "KEEPALIVE_S", 0.2)
    await api.user("wall-4", "operator")
    async with api.client() as client:
        signed_in = await client.post("/api/auth/token", json={"username": "wall-4", "password": PASSWORD})
        headers = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    async with httpx.AsyncClient(base_url=api.url, headers=headers) as wall:
        async def sign_out() -> None:
            assert (await wall.post("/api/auth/sign-out")).status_code == 204
        await _stream_ends(wall, sign_out)


async def test_a_stream_ends_when_its_token_expires(api: ApiServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "ADMISSION_CHECK_S", 0.2)
    monkeypatch.setattr(live, "KEEPALIVE_S", 0.2)
    await api.user("wall-3", "operator")
    token = issue_token(Principal("wall-3", "operator"), secret=api.settings.auth_secret.get_secret_value(),
                        ttl_s=2)
    async with httpx.AsyncClient(base_url=api.url, headers={"Authorization": f"Bearer {token}"}) as wall:
        started = time.monotonic()
        await _stream_ends(wall, lambda: asyncio.sleep(0))
        assert time.monotonic() - started >= 1.0  # not before the token's end
        assert (await wall.get("/api/alerts/stream")).status_code == 401


# ---------- the position and window logic, without servers ----------

def _record(partition: int, offset: int, *, age_s: float = 0.0, value: bytes | None = None) -> ConsumerRecord:
    if value is None:
        value = watchlist_alert(PLATES[partition % len(PLATES)]).to_json()
    timestamp = int((time.time() - age_s) * 1000)
    return ConsumerRecord("ioc.alerts", partition, offset, timestamp, 0, None, value, None, 0, len(value), [])


def _broadcaster(**settings: object) -> AlertBroadcaster:
    return AlertBroadcaster(Settings(env="test", **settings))


def _drain(subscription: Subscription) -> list[tuple[int, int]]:
    taken = []
    while not subscription.queue.empty():
        event = subscription.queue.get_nowait()
        if subscription.accept(event):
            taken.append((event.partition, event.offset))
    return taken


def test_positions_round_trip_and_reject_anything_else() -> None:
    assert encode_position({0: 12, 2: 7}) == "v1.12.0.7"
    assert parse_position("v1.12.0.7") == {0: 12, 1: 0, 2: 7}
    assert parse_position(encode_position({})) == {}
    for junk in (None, "", "12.0", "v2.1", "v1.-1", "v1.1e3", "v1.١", "v1." + "9" * 20, "v1." + ".1" * 5000):
        assert parse_position(junk) is None, junk


def test_resume_replays_after_the_id_and_the_seam_has_no_gap_or_repeat() -> None:
    broadcaster = _broadcaster(api_live_replay_events=100)
    broadcaster.take([_record(0, 0), _record(1, 0), _record(0, 1)])
    page = broadcaster.subscribe()
    broadcaster.take([_record(1, 1), _record(0, 2)])
    assert _drain(page) == [(1, 1), (0, 2)]
    last_id = page.event_id
    broadcaster.unsubscribe(page)
    broadcaster.take([_record(0, 3), _record(1, 2), _record(1, 3)])  # while the page is away

    back = broadcaster.subscribe(last_id)
    assert back.reset is None
    replayed = [(e.partition, e.offset) for e in back.replay if back.accept(e)]
    broadcaster.take([_record(0, 3), _record(0, 4)])  # a re-read after a reassignment, then new
    assert replayed + _drain(back) == [(0, 3), (1, 2), (1, 3), (0, 4)]
    assert parse_position(back.event_id) == {0: 5, 1: 4}


def test_an_id_outside_the_window_resets() -> None:
    broadcaster = _broadcaster(api_live_replay_events=3)
    broadcaster.take([_record(0, 0)])
    early = broadcaster.position
    broadcaster.take([_record(0, o) for o in range(1, 6)])
    assert broadcaster.subscribe(early).reset == "gap too large"
    assert broadcaster.subscribe(encode_position({0: 3})).reset is None  # 3, 4, 5 still held
    assert broadcaster.subscribe(encode_position({0: 99})).reset == "ahead of the topic"
    assert broadcaster.subscribe("v1.x").reset == "invalid id"

    aged = _broadcaster(api_live_replay_seconds=60)
    aged.take([_record(0, 0, age_s=120), _record(0, 1, age_s=5)])
    assert aged.subscribe(encode_position({0: 0})).reset == "gap too large"
    assert [e.offset for e in aged.subscribe(encode_position({0: 1})).replay] == [1]


def test_a_slow_page_is_disconnected_not_silently_short() -> None:
    broadcaster = _broadcaster()
    page = broadcaster.subscribe()
    broadcaster.take([_record(0, o) for o in range(250)])
    assert page.lagged
    assert _drain(page) == []  # only the end-of-stream marker: the page reconnects and resumes
    resumed = broadcaster.subscribe(page.event_id)
    assert resumed.reset is None and len(resumed.replay) == 250


def test_messages_that_are_not_alerts_advance_the_position_only() -> None:
    broadcaster = _broadcaster()
    broadcaster.take([_record(0, 0, value=b"not json"), _record(0, 1, value=b"")])
    assert broadcaster.position == "v1.2"
    assert broadcaster.subscribe(encode_position({0: 0})).replay == []



def test_an_id_from_a_replica_ahead_is_not_repeated() -> None:
    behind = _broadcaster()
    behind.take([_record(0, o) for o in range(3)])
    behind._high[0] = 6  # noqa: SLF001 - the broker said so in the last fetch; 3..5 are on their way
    page = behind.subscribe(encode_position({0: 5}))  # the page had 0..4 from the other replica
    assert page.reset is None and page.replay == []
    behind.take([_record(0, o) for o in range(3, 7)])
    assert _drain(page) == [(0, 5), (0, 6)]


# ---------- the operator page ----------

@TIMESCALE
@pytest.mark.browser
@pytest.mark.skipif(not browser_available(), reason="needs chromium and chromedriver")
async def test_the_page_resumes_after_a_drop_with_one_card_per_alert(api: ApiServer) -> None:
    """The stream ends under the page (as when its API process stops); the alerts raised
    meanwhile appear once, the ones it had stay single, a status change updates in place."""
    await api.user("live-operator", "operator")
    broadcaster: AlertBroadcaster = api.app.state.alerts
    producer = await _producer(api)

    async def raise_stored(count: int) -> list[Alert]:
        alerts = [watchlist_alert(PLATES[i % len(PLATES)]) for i in range(count)]
        await store_alerts(api, alerts)  # in the list (the database) and on the stream, as a worker does
        await _send(producer, api, alerts)
        return alerts

    cards = "[...document.querySelectorAll('#alerts li.alert')].map(li => li.dataset.alertId)"
    try:
        async with chromium() as browser:
            await browser.open(api.url + "/")
            await browser.wait_for("return !document.querySelector('#login-view').hidden")
            await browser.type("#login input[name=username]", "live-operator")
            await browser.type("#login input[name=password]", PASSWORD)
            await browser.click("#login button[type=submit]")
            await browser.wait_for("return document.querySelector('#live').classList.contains('on')")
            async with asyncio.timeout(10):
                while broadcaster.subscribers < 1:
                    await asyncio.sleep(0.05)
            first = await raise_stored(3)
            await browser.wait_for(f"return {cards}.length === 3 || null")
            replayed = metrics.LIVE_RESUMES.labels("replayed")._value.get()  # noqa: SLF001

            broadcaster.drain()  # the page's stream ends ...
            second = await raise_stored(3)  # ... while alerts keep coming
            acknowledged = first[0].model_copy(update={"status": AlertStatus.ACKNOWLEDGED})
            await _send(producer, api, [acknowledged])
            shown = await browser.wait_for(f"const ids = {cards}; return ids.length === 6 ? ids : null")
            card = f"document.querySelector(\"li.alert[data-alert-id='{first[0].alert_id}']\")"
            await browser.wait_for(f"return {card}.dataset.status === 'acknowledged'")
            await asyncio.sleep(1.0)
            expected = sorted(str(a.alert_id) for a in first + second)
            assert sorted(shown) == sorted(await browser.script(f"return {cards}")) == expected
            # it resumed with its Last-Event-ID (replayed), not a fresh stream plus a list reload
            assert metrics.LIVE_RESUMES.labels("replayed")._value.get() == replayed + 1  # noqa: SLF001
            assert await browser.console_errors() == []
    finally:
        await producer.stop()
