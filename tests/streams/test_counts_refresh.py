"""The workers' counts refresh against a real database: queued minutes are recounted and taken off,
and a minute the database refuses to recount does not stop the others."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from types import SimpleNamespace

import psycopg
import pytest

from ioc.config import Settings
from ioc.schemas import Direction, PlateRead, utcnow
from ioc.storage.database import connect, open_pool
from ioc.storage.migrations import migrate
from ioc.storage.plate_reads import insert_plate_reads
from streams.agents import counts

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


def _edge_read(at: datetime) -> PlateRead:
    source = uuid.uuid4()
    return PlateRead(read_id=PlateRead.derive_id(source, 0), source="edge", source_event_id=source,
                     camera_id="CP01-CAM1", checkpoint_id="CP01", direction=Direction.IN, captured_at=at,
                     text="29A12345", display="29A-123.45", confidence=0.9)


async def _stored(database_url: str, *captured: datetime, queued: bool = True) -> None:
    """A migrated database holding an edge read captured at each of ``captured``; its minutes
    queued, or not (rows written by other means, which only the sweep recounts)."""
    await migrate(database_url)
    async with await connect(database_url) as conn:
        await insert_plate_reads(conn, [_edge_read(at) for at in captured])
        if not queued:
            await conn.execute("DELETE FROM uncounted_minutes")
        await conn.commit()


def _minute(at: datetime) -> datetime:
    return at.replace(second=0, microsecond=0)


def _refusing(monkeypatch: pytest.MonkeyPatch, bad: datetime, error: Exception) -> None:
    """``refresh_counts`` raising ``error`` for any range holding the minute of ``bad``."""
    refresh = counts.refresh_counts

    async def refusing(conn: psycopg.AsyncConnection, *, since: datetime, until: datetime) -> int:
        if _minute(since) <= _minute(bad) <= _minute(until):
            raise error
        return await refresh(conn, since=since, until=until)

    monkeypatch.setattr(counts, "refresh_counts", refusing)


async def _refresh_twice(database_url: str) -> tuple[list[tuple[datetime, int]], int]:
    """Run the counts timer twice; the minutes counted and the rows left queued."""
    timers: list[Callable[[], Awaitable[None]]] = []
    pool = await open_pool(database_url, min_size=1, max_size=2)

    async def the_pool() -> object:
        return pool

    ctx = SimpleNamespace(settings=Settings(database_url=database_url), pool=the_pool,
                          timer=lambda *_, **__: lambda fun: timers.append(fun) or fun)
    counts.register(ctx)  # type: ignore[arg-type]
    try:
        for _ in range(2):
            await timers[0]()
    finally:
        await pool.close()
    async with await connect(database_url) as conn:
        counted = await (await conn.execute(
            "SELECT bucket, vehicles FROM checkpoint_counts WHERE vehicles > 0 ORDER BY 1")).fetchall()
        queued = (await (await conn.execute("SELECT count(*) FROM uncounted_minutes")).fetchone())[0]
    return counted, queued


async def test_a_minute_the_database_refuses_does_not_stop_the_other_counts(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refresh takes the queued minutes and recounts them in one transaction: a minute the
    database refused to recount (a value it cannot sum) rolled back every refresh after it, the
    same oldest minutes taken again each time, and no checkpoint was counted any more."""
    good, bad = utcnow() - timedelta(hours=3), utcnow() - timedelta(hours=2)
    await _stored(database_url, good, bad)
    _refusing(monkeypatch, bad, psycopg.errors.NumericValueOutOfRange("value out of range: overflow"))
    assert await _refresh_twice(database_url) == ([(_minute(good), 1)], 0)


async def test_a_minute_refused_with_any_database_error_does_not_stop_the_other_counts(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only data, integrity and programming errors were taken for a refusal: a minute the database
    refused otherwise (a compressed chunk it cannot update) rolled back every refresh, and nothing
    was counted any more, restarts or not (the queue is in the database)."""
    bad, good = utcnow() - timedelta(hours=3), utcnow() - timedelta(hours=1)
    await _stored(database_url, bad, good)
    _refusing(monkeypatch, bad, psycopg.errors.FeatureNotSupported("cannot update compressed chunk"))
    assert await _refresh_twice(database_url) == ([(_minute(good), 1)], 0)


async def test_a_good_minute_next_to_a_refused_one_is_counted(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The minutes were recounted apart range by range, each run of consecutive minutes refused as a
    whole: the good minutes of a refused run were taken off the queue and never counted."""
    bad = _minute(utcnow() - timedelta(hours=2)) + timedelta(seconds=10)
    good = bad + timedelta(minutes=1)
    await _stored(database_url, bad, good)
    _refusing(monkeypatch, bad, psycopg.errors.NumericValueOutOfRange("value out of range: overflow"))
    assert await _refresh_twice(database_url) == ([(_minute(good), 1)], 0)


async def test_a_refused_minute_in_the_sweep_does_not_lose_the_others(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sweep recounts the last 15 minutes for rows written by other means (never queued): one
    minute of them refused lost the other 14."""
    bad = _minute(utcnow() - timedelta(minutes=6)) + timedelta(seconds=10)
    good = bad + timedelta(minutes=1)
    await _stored(database_url, bad, good, queued=False)
    _refusing(monkeypatch, bad, psycopg.errors.NumericValueOutOfRange("value out of range: overflow"))
    assert await _refresh_twice(database_url) == ([(_minute(good), 1)], 0)
