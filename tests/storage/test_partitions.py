"""Plain PostgreSQL: daily partitions, a DEFAULT partition for strays, moved when their day is created."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from psycopg import AsyncConnection, errors

from ioc.schemas import PlateRead
from ioc.storage.database import Capabilities, connect
from ioc.storage.partitions import ensure_partitions, partition_name
from ioc.storage.plate_reads import find_sightings, insert_plate_reads
from ioc.storage.retention import run_retention


async def test_stray_rows_move_into_their_new_day(
    conn: AsyncConnection, caps: Capabilities, make_read: Callable[..., PlateRead], now: datetime
) -> None:
    if caps.timescaledb:
        pytest.skip("TimescaleDB creates chunks on demand")
    old = now - timedelta(days=20)
    reads = [make_read("30A12345", captured_at=old + timedelta(hours=h)) for h in (0, 1)]
    assert await insert_plate_reads(conn, reads) == 2
    await conn.commit()
    in_default = await (await conn.execute("SELECT count(*) FROM ONLY plate_reads_default")).fetchone()
    assert in_default == (2,)

    created = await ensure_partitions(conn, old, since=old - timedelta(days=1))
    await conn.commit()
    assert partition_name("plate_reads", old.date()) in created
    assert await ensure_partitions(conn, old, since=old - timedelta(days=1)) == []
    moved = await (await conn.execute(
        f"SELECT count(*) FROM {partition_name('plate_reads', old.date())}")).fetchone()
    assert moved == (2,)
    assert await (await conn.execute("SELECT count(*) FROM ONLY plate_reads_default")).fetchone() == (0,)
    # generated columns were recomputed on the way: look-alike search still finds them
    found = await find_sightings(conn, text="3OA12345", fuzzy=True, since=old - timedelta(days=1),
                                 until=old + timedelta(days=1), limit=10)
    assert len(found) == 2
    assert await insert_plate_reads(conn, reads) == 0


async def test_concurrent_ensure_partitions(migrated_url: str, caps: Capabilities, now: datetime) -> None:
    if caps.timescaledb:
        pytest.skip("TimescaleDB creates chunks on demand")

    async def ensure() -> list[str]:
        async with await connect(migrated_url) as conn:
            created = await ensure_partitions(conn, now + timedelta(days=30))
            await conn.commit()
            return created

    results = await asyncio.gather(ensure(), ensure(), ensure())
    names = [n for r in results for n in r]
    assert len(names) == len(set(names)) > 0


async def _waiting_on_a_lock(conn: AsyncConnection, pid: int, timeout: float = 10.0) -> None:
    """Until backend ``pid`` waits for a lock (a table's or a row's)."""
    for _ in range(int(timeout / 0.05)):
        cur = await conn.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
        row = await cur.fetchone()
        if row and row[0] == "Lock":
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"backend {pid} never waited for a lock")


async def test_writes_during_the_move_out_of_default_are_kept(
    migrated_url: str, caps: Capabilities, make_read: Callable[..., PlateRead], now: datetime
) -> None:
    """A worker storing a read for the day while its partition is created: the read must be
    neither lost nor make the creation fail. The test holds a lock on a stray row, so the
    move stops in the middle (the old move: after its copy, at its DELETE) while a second
    connection stores a read for that day."""
    if caps.timescaledb:
        pytest.skip("TimescaleDB creates chunks on demand")
    old = now - timedelta(days=20)
    strays = [make_read(f"30A{i:05d}", captured_at=old + timedelta(hours=i)) for i in range(3)]
    late = make_read("30A99999", captured_at=old + timedelta(hours=5))
    async with await connect(migrated_url) as holder, await connect(migrated_url) as mover, \
            await connect(migrated_url, autocommit=True) as watcher:
        await insert_plate_reads(holder, strays)
        await holder.commit()
        await holder.execute("SELECT 1 FROM plate_reads WHERE read_id = %s FOR UPDATE", [strays[0].read_id])
        move = asyncio.create_task(ensure_partitions(mover, old, since=old))
        await _waiting_on_a_lock(watcher, mover.info.backend_pid)

        async def store_late() -> int:
            async with await connect(migrated_url) as writer:
                stored = await insert_plate_reads(writer, [late])
                await writer.commit()
                return stored

        store = asyncio.create_task(store_late())
        await asyncio.wait([store], timeout=1.0)  # the old move let it commit; the fixed one makes it wait
        await holder.rollback()
        created = await move
        await mover.commit()
        assert await store == 1
    assert partition_name("plate_reads", old.date()) in created
    async with await connect(migrated_url) as conn:
        cur = await conn.execute("SELECT read_id FROM plate_reads")
        assert {r for (r,) in await cur.fetchall()} == {r.read_id for r in [*strays, late]}
        day = partition_name("plate_reads", old.date())
        assert await (await conn.execute(f"SELECT count(*) FROM {day}")).fetchone() == (4,)
        assert await (await conn.execute("SELECT count(*) FROM ONLY plate_reads_default")).fetchone() == (0,)


async def test_each_tables_partitions_are_committed_on_their_own(
    migrated_url: str, caps: Capabilities, now: datetime
) -> None:
    """Called as retention calls it (a connection outside a transaction, not autocommit): a
    table whose days cannot be created (its parent locked by a long query) must not take back
    the days of the tables done before it, nor keep their parents locked meanwhile. Each table
    was a savepoint of one transaction, holding every parent to the end."""
    if caps.timescaledb:
        pytest.skip("TimescaleDB creates chunks on demand")
    ahead = now + timedelta(days=40)
    async with await connect(migrated_url) as blocker, await connect(migrated_url) as retention:
        await blocker.execute("LOCK TABLE sensor_readings IN ACCESS SHARE MODE")  # a long report
        with pytest.raises(errors.LockNotAvailable):
            await ensure_partitions(retention, ahead, since=ahead)
        await retention.rollback()  # as a failed retention run ends
        await blocker.rollback()
    async with await connect(migrated_url) as conn:
        existing = {name for (name,) in await (await conn.execute(
            "SELECT relname::text FROM pg_class WHERE relname LIKE %s", ["%_p" + ahead.strftime("%Y%m%d")]
        )).fetchall()}
    assert partition_name("plate_reads", ahead.date()) in existing
    assert partition_name("plate_crops", ahead.date()) in existing
    assert partition_name("sensor_readings", ahead.date()) not in existing


async def test_retention_moves_the_rows_of_days_it_missed_out_of_default(
    conn: AsyncConnection, caps: Capabilities, make_read: Callable[..., PlateRead], now: datetime
) -> None:
    """The retention job stopped for a week: those days had no partitions, their rows fell into
    DEFAULT, and a later run made partitions from today on only, so they stayed there."""
    if caps.timescaledb:
        pytest.skip("TimescaleDB creates chunks on demand")
    missed = [now - timedelta(days=d) for d in (9, 5)]
    assert await insert_plate_reads(conn, [make_read("30A12345", captured_at=at) for at in missed]) == 2
    await conn.commit()
    assert await (await conn.execute("SELECT count(*) FROM ONLY plate_reads_default")).fetchone() == (2,)
    await run_retention(conn, caps, read_days=30, alert_days=365, now=now)
    await conn.commit()
    assert await (await conn.execute("SELECT count(*) FROM ONLY plate_reads_default")).fetchone() == (0,)
    for at in missed:
        day = partition_name("plate_reads", at.date())
        assert await (await conn.execute(f"SELECT count(*) FROM {day}")).fetchone() == (1,)
