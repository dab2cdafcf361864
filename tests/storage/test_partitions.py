"""Plain PostgreSQL: daily partitions, a DEFAULT partition for strays, moved when their day is created."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from psycopg import AsyncConnection

from ioc.schemas import PlateRead
from ioc.storage.database import Capabilities, connect
from ioc.storage.partitions import ensure_partitions, partition_name
from ioc.storage.plate_reads import find_sightings, insert_plate_reads


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
