"""What ``write_batch`` waits out and what it refuses: a missing table or grant is no row's fault
(a worker started before `ioc migrate`), so the batch waits for it instead of being refused row
by row and dead-lettered; a row with bad data is refused alone. A real database."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from psycopg import AsyncConnection

from ioc.storage.database import connect, open_pool
from streams import retries
from streams.sinks import write_batch


async def _write(conn: AsyncConnection, rows: Sequence[int]) -> int:
    cur = await conn.execute("INSERT INTO later (n) SELECT unnest(%s::int[])", [list(rows)])
    return cur.rowcount


async def test_a_missing_table_is_waited_for_not_blamed_on_the_rows(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retries, "FIRST_WAIT_S", 0.05)
    pool = await open_pool(database_url, min_size=1, max_size=2)
    try:
        writing = asyncio.create_task(write_batch(pool, "later", _write, [1, 2, 3]))
        await asyncio.sleep(0.5)  # the worker retries while the table is missing
        assert not writing.done()
        async with await connect(database_url, autocommit=True) as conn:
            await conn.execute("CREATE TABLE later (n int CHECK (n < 3))")
        written, refused = await asyncio.wait_for(writing, 10)
        # the CHECK refuses 3: that row alone, for what it is
        assert [r.row for r in refused] == [3] and written == 2
    finally:
        await pool.close()
