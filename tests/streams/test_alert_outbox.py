"""Every committed alert change reaches the alerts topic, against a real database: each change moves
the alert's revision on and is published with it; a publisher takes off the outbox only what it
published; an alert whose publisher died between commit and publish is published by the workers, as
it is now."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import timedelta
from types import SimpleNamespace

import pytest
from pipeline_helpers import KeepingProducer
from prometheus_client import REGISTRY
from psycopg import AsyncConnection

from ioc.config import Settings
from ioc.schemas import Alert, AlertStatus, Direction, PlateRead, WatchlistEntry, utcnow
from ioc.storage.alert_outbox import published, unpublished
from ioc.storage.alerts import get_alert, update_alert_status
from ioc.storage.database import connect
from ioc.watchlist_matcher import WatchlistMatcher
from streams import plate_read_sink
from streams.agents import alert_outbox
from streams.context import WorkerContext
from streams.watchlist_alerts import record_hits

ENTRY = WatchlistEntry(pattern="29A12345", reason="stolen", priority=1)
START = utcnow() - timedelta(minutes=5)


def _read(seconds: float, camera: str = "CP01-CAM1") -> PlateRead:
    source = uuid.uuid4()
    return PlateRead(
        read_id=PlateRead.derive_id(source, 0), source="edge", source_event_id=source,
        camera_id=camera, checkpoint_id=camera.split("-")[0], direction=Direction.IN,
        captured_at=START + timedelta(seconds=seconds), text=ENTRY.pattern, display=ENTRY.pattern,
        confidence=0.9,
    )


def _hits(*reads: PlateRead) -> list:
    matcher = WatchlistMatcher([ENTRY])
    return [(read, hit) for read in reads for hit in matcher.match(read.text, at=read.captured_at)]


class KilledWhileSending:
    """A worker's producer as its process is killed: nothing it sends reaches the broker."""

    async def send(self, *_: object) -> asyncio.Future:
        raise RuntimeError("killed")


def _worker(database_url: str, producer: object) -> tuple[WorkerContext, Callable]:
    """A worker's context on the test database with ``producer``, and its outbox timer's function."""
    timers: list = []
    app = SimpleNamespace(timer=lambda interval_s, name: timers.append, producer=producer)
    ctx = WorkerContext(settings=Settings(kafka_bootstrap="127.0.0.1:9", database_url=database_url), app=app,
                        topics=SimpleNamespace(alerts=SimpleNamespace(get_topic_name=lambda: "alerts")),
                        dead_letters=None, recognition=None)
    alert_outbox.register(ctx)
    [check] = timers
    return ctx, check


async def _queued(conn: AsyncConnection) -> list[tuple[uuid.UUID, int]]:
    cur = await conn.execute("SELECT alert_id, revision FROM alert_outbox ORDER BY alert_id")
    return await cur.fetchall()


async def _wait_out(conn: AsyncConnection) -> None:
    """As if :data:`~streams.agents.alert_outbox.UNPUBLISHED_FOR` had passed since what is queued was."""
    await conn.execute("UPDATE alert_outbox SET queued_at = queued_at - %s - interval '1 second'",
                       [alert_outbox.UNPUBLISHED_FOR])


def _republished() -> float:
    return REGISTRY.get_sample_value("ioc_alerts_republished_total") or 0.0


async def test_an_alert_whose_publisher_died_after_the_commit_is_published_by_the_workers(
    conn: AsyncConnection, database_url: str,
) -> None:
    """A worker recorded a watchlist hit, committed, and was killed as it published it (a rollout's
    SIGTERM, OOM): the alert was in the database and the list for good, never on the alerts topic.
    An operator then acknowledged it, and that API process stopped before it published too. A worker
    publishes the alert as it is now once it has been queued for long enough, and only then."""
    dying, _ = _worker(database_url, KilledWhileSending())
    try:
        with pytest.raises(RuntimeError, match="killed"):
            await plate_read_sink._raise_alerts(dying, await dying.pool(), _hits(_read(0)))  # noqa: SLF001
    finally:
        await (await dying.pool()).close()
    [(alert_id, revision)] = await _queued(conn)
    assert revision == 1
    await update_alert_status(conn, alert_id, AlertStatus.ACKNOWLEDGED, "operator")

    sent: list[bytes] = []
    ctx, check = _worker(database_url, KeepingProducer(sent))
    republished = _republished()
    try:
        await check()
        assert sent == []  # its publisher may still be at it
        await _wait_out(conn)
        await check()
        [event] = [Alert.model_validate_json(message) for message in sent]
        assert (event.alert_id, event.status, event.revision) == (alert_id, AlertStatus.ACKNOWLEDGED, 2)
        assert event.evidence["entry_id"] == str(ENTRY.entry_id)
        assert await _queued(conn) == []
        await _wait_out(conn)
        await check()
        assert len(sent) == 1, "published again"
    finally:
        await (await ctx.pool()).close()
    assert _republished() == republished + 1


async def test_revisions_move_on_with_every_change_and_are_published(
    conn: AsyncConnection, database_url: str,
) -> None:
    """Alert events carried no version: a worker appending a sighting and an operator changing the
    status could publish in the opposite order of their commits, and consumers could not tell the
    older state. Every change that changes an alert (by any process, or by hand) moves its revision
    on; what its publisher published is off the outbox."""
    sent: list[bytes] = []
    ctx, _ = _worker(database_url, KeepingProducer(sent))
    opening, later = _read(0), _read(60, "CP02-CAM1")
    try:
        pool = await ctx.pool()
        await plate_read_sink._raise_alerts(ctx, pool, _hits(opening))  # noqa: SLF001
        await plate_read_sink._raise_alerts(ctx, pool, _hits(later))  # noqa: SLF001 - a sighting appended
        await plate_read_sink._raise_alerts(ctx, pool, _hits(later))  # noqa: SLF001 - replayed: no change
    finally:
        await (await ctx.pool()).close()
    events = [Alert.model_validate_json(message) for message in sent]
    assert [(e.revision, e.evidence.get("sightings", 1)) for e in events] == [(1, 1), (2, 2)]
    assert await _queued(conn) == []
    alert_id = events[0].alert_id

    record = await update_alert_status(conn, alert_id, AlertStatus.ACKNOWLEDGED, "operator")
    assert record is not None and record.revision == 3
    assert record.as_event().revision == 3
    await conn.execute("UPDATE alerts SET severity = 'warning' WHERE alert_id = %s", [alert_id])  # by hand
    assert await _queued(conn) == [(alert_id, 4)]
    await conn.execute("UPDATE alerts SET status = status WHERE alert_id = %s", [alert_id])  # no change
    stored = await get_alert(conn, alert_id)
    assert stored is not None and stored.revision == 4
    assert await _queued(conn) == [(alert_id, 4)]


async def test_a_publish_takes_off_the_outbox_only_what_it_published(
    conn: AsyncConnection, database_url: str,
) -> None:
    """The publisher of a new incident marks it published after a worker appended a sighting to it:
    the newer change stays queued for its own publisher. A mark neither waits for a transaction
    changing the alert nor takes its change off."""
    async with conn.transaction():
        [opened] = await record_hits(conn, _hits(_read(0)))
    async with conn.transaction():
        [appended] = await record_hits(conn, _hits(_read(60, "CP02-CAM1")))
    assert (opened.revision, appended.revision) == (1, 2)
    assert await published(conn, [opened]) == 0
    assert await _queued(conn) == [(opened.alert_id, 2)]

    async with await connect(database_url) as operator:  # acknowledging, not yet committed
        await update_alert_status(operator, opened.alert_id, AlertStatus.ACKNOWLEDGED, "operator")
        assert await asyncio.wait_for(published(conn, [appended]), 5) == 0
        await operator.commit()
    assert await _queued(conn) == [(opened.alert_id, 3)]
    acknowledged = await get_alert(conn, opened.alert_id)
    assert acknowledged is not None
    assert await published(conn, [appended, acknowledged.as_event()]) == 1
    assert await _queued(conn) == []


async def test_queued_alerts_a_worker_took_are_left_to_others_until_it_would_have_published_them(
    conn: AsyncConnection,
) -> None:
    """Every worker runs the outbox check: one takes what it publishes, so the others do not publish
    it too; if it stops before it has, they find it due again later."""
    async with conn.transaction():
        [alert] = await record_hits(conn, _hits(_read(0)))
    assert await unpublished(conn, alert_outbox.UNPUBLISHED_FOR, 10) == []
    await _wait_out(conn)
    assert await unpublished(conn, alert_outbox.UNPUBLISHED_FOR, 10) == [alert.alert_id]
    assert await unpublished(conn, alert_outbox.UNPUBLISHED_FOR, 10) == []  # another worker
    await _wait_out(conn)  # the first stopped before publishing it
    assert await unpublished(conn, alert_outbox.UNPUBLISHED_FOR, 10) == [alert.alert_id]
