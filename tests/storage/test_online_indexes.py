"""Trigram indexes added to a plate_reads that holds data leave its writers writing (both layouts)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

import psycopg
import pytest
from psycopg import AsyncConnection, sql

from ioc.schemas import PlateRead
from ioc.storage.database import connect, detect_capabilities
from ioc.storage.migrations import migrate
from ioc.storage.online_indexes import create_index_online
from ioc.storage.plate_reads import insert_plate_reads

TRIGRAM_MIGRATIONS = ("0004_trigram_index", "0008_skeleton_trigram_index")
TRIGRAM_INDEXES = ("plate_reads_text_trgm_idx", "plate_reads_skeleton_trgm_idx")


async def _before_the_trigram_indexes(url: str) -> None:
    """A database migrated as one whose server gained pg_trgm only now (or one upgraded from
    before 0004): everything but the trigram indexes."""
    await migrate(url)
    async with await connect(url, autocommit=True) as conn:
        for index in TRIGRAM_INDEXES:
            await conn.execute(f"DROP INDEX IF EXISTS {index}")
        await conn.execute("DELETE FROM schema_migrations WHERE name = ANY(%s)", [list(TRIGRAM_MIGRATIONS)])


async def _hold(conn: AsyncConnection, day: datetime) -> None:
    """Open a transaction on ``conn`` that holds the partition or chunk of ``day`` as a writer
    does, and nothing else (not plate_reads itself)."""
    cur = await conn.execute(
        "SELECT tableoid::regclass::text FROM plate_reads WHERE captured_at = %s LIMIT 1", [day])
    (part,) = await cur.fetchone()
    await conn.execute(sql.SQL("LOCK TABLE {} IN ROW EXCLUSIVE MODE").format(sql.SQL(part)))


async def _waiting_migration(url: str) -> bool:
    """Whether the migration's index build is waiting on a lock or another transaction."""
    async with await connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE query ILIKE 'CREATE INDEX%%' AND wait_event_type = 'Lock'")
        return (await cur.fetchone())[0] > 0


async def test_reads_are_stored_while_the_trigram_indexes_are_built(
    database_url: str, make_read: Callable[..., PlateRead], now: datetime
) -> None:
    """The index's build on an old day takes long (here: held up by a transaction that writes to
    that day's partition or chunk alone). Before, the build's lock on the whole table queued
    every writer behind it: a read of today waited as long as the build, hours at a province's
    volume. Now it is stored at once."""
    await _before_the_trigram_indexes(database_url)
    async with await connect(database_url) as setup:
        await insert_plate_reads(setup, [make_read("30A12345", captured_at=now - timedelta(days=d))
                                         for d in range(3)])  # fmt: skip
        await setup.commit()
    in_flight = await connect(database_url)
    try:
        await _hold(in_flight, now - timedelta(days=2))
        migration = asyncio.create_task(migrate(database_url))
        for _ in range(100):
            if await _waiting_migration(database_url) or migration.done():
                break
            await asyncio.sleep(0.1)
        assert not migration.done(), "the build should wait for the open transaction"
        async with await connect(database_url) as writer:
            await writer.execute("SET lock_timeout = '3s'")
            try:
                stored = await insert_plate_reads(writer, [make_read("51F86988", captured_at=now)])
            except psycopg.errors.LockNotAvailable:
                stored = 0
            await writer.commit()
        assert stored == 1, "today's read waited for the index build"
        await in_flight.commit()
        applied = await asyncio.wait_for(migration, 60)
    finally:
        await in_flight.close()
    assert set(TRIGRAM_MIGRATIONS) <= set(applied)
    async with await connect(database_url) as conn:
        for index in TRIGRAM_INDEXES:
            row = await (await conn.execute(
                "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", [index])).fetchone()
            assert row == (True,), index
        found = await conn.execute("SELECT count(*) FROM plate_reads WHERE text LIKE '%%6988'")
        assert (await found.fetchone())[0] == 1


async def test_an_interrupted_build_is_built_again(database_url: str, make_read: Callable[..., PlateRead],
                                                   now: datetime) -> None:  # fmt: skip
    """A build stopped part-way (the migrate Job past its deadline, a lost connection) leaves an
    invalid index behind; the next run builds it again, whole."""
    await _before_the_trigram_indexes(database_url)
    args = ("plate_reads", "plate_reads_text_trgm_idx", "gin (text gin_trgm_ops)")
    async with await connect(database_url, autocommit=True) as conn:
        await insert_plate_reads(conn, [make_read(captured_at=now - timedelta(days=d)) for d in range(3)])
        layout = (await detect_capabilities(conn)).layout
        in_flight = await connect(database_url)
        try:
            await _hold(in_flight, now - timedelta(days=1))
            await conn.execute("SET statement_timeout = '1s'")
            with pytest.raises(psycopg.errors.QueryCanceled):
                await create_index_online(conn, layout, *args)
        finally:
            await in_flight.commit()
            await in_flight.close()
        await conn.execute("SET statement_timeout = 0")
        assert await _invalid_indexes(conn), "the interrupted build should have left an invalid index"
        await create_index_online(conn, layout, *args)
        assert await _invalid_indexes(conn) == []
        cur = await conn.execute(
            "SELECT indisvalid FROM pg_index WHERE indexrelid = 'plate_reads_text_trgm_idx'::regclass")
        assert await cur.fetchone() == (True,)


async def _invalid_indexes(conn: AsyncConnection) -> list[str]:
    cur = await conn.execute("SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid")
    return [name for (name,) in await cur.fetchall()]
