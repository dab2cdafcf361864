"""Indexes added to a time-series table that already holds data, without stopping its writers.

A plain ``CREATE INDEX`` holds a SHARE lock on the table and every partition or chunk for the
whole build, and the writers queue behind it: a trigram index over a province's month of plate
reads takes hours, and plate reads stop for as long. So an index is built

- on plain PostgreSQL, partition by partition ``CONCURRENTLY`` and attached to an index made on
  the parent alone, which becomes valid once every partition has one;
- on TimescaleDB (which refuses ``CONCURRENTLY`` on a hypertable) with
  ``timescaledb.transaction_per_chunk``: one chunk at a time, the others open to writers.

Both need a connection in autocommit mode. Both can be run again after an interruption (a
Job past its deadline, a lost connection): what an interrupted build left invalid is dropped
and built again.
"""

from __future__ import annotations

import logging

from psycopg import AsyncConnection, sql
from psycopg.pq import TransactionStatus

from ioc.storage.database import Layout

logger = logging.getLogger(__name__)

__all__ = ["create_index_online"]

# A partition created while the build runs gets the index with it; one that slipped in
# between a pass's look at the partitions and the parent turning valid is built by the next
_MAX_PASSES = 3


async def create_index_online(
    conn: AsyncConnection, layout: Layout, table: str, name: str, method: str
) -> None:
    """Index ``table`` as ``name``, ``USING method`` (``gin (text gin_trgm_ops)``: code, never input)."""
    if not conn.autocommit or conn.info.transaction_status != TransactionStatus.IDLE:
        raise RuntimeError("create_index_online needs an autocommit connection outside a transaction")
    if layout == "timescaledb":
        await _on_hypertable(conn, table, name, method)
    else:
        await _on_partitions(conn, table, name, method)


async def _valid(conn: AsyncConnection, index: str) -> bool | None:
    """Whether index ``index`` is valid; None where it does not exist."""
    cur = await conn.execute(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(%s)", [index])
    row = await cur.fetchone()
    return None if row is None else bool(row[0])


async def _on_hypertable(conn: AsyncConnection, table: str, name: str, method: str) -> None:
    if await _valid(conn, name) is False:  # left by an interrupted build: some chunks lack it
        await conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    cur = await conn.execute("SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhparent = to_regclass(%s))",
                             [table])
    has_chunks = (await cur.fetchone())[0]
    # without chunks there is nothing to wait for, and nothing to build one at a time
    per_chunk = sql.SQL(" WITH (timescaledb.transaction_per_chunk)" if has_chunks else "")
    await conn.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} USING {}{}").format(
        sql.Identifier(name), sql.Identifier(table), sql.SQL(method), per_chunk))


async def _on_partitions(conn: AsyncConnection, table: str, name: str, method: str) -> None:
    await conn.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON ONLY {} USING {}").format(
        sql.Identifier(name), sql.Identifier(table), sql.SQL(method)))
    for _ in range(_MAX_PASSES):
        if await _valid(conn, name):
            return
        for partition in await _partitions_without(conn, table, name):
            await _build_on_partition(conn, partition, name, f"{partition}_{name.removeprefix(table + '_')}",
                                      method)
    if not await _valid(conn, name):
        raise RuntimeError(f"index {name} is still not valid after {_MAX_PASSES} passes over {table}")


async def _partitions_without(conn: AsyncConnection, table: str, index: str) -> list[str]:
    """The partitions of ``table`` with no index attached to the parent's ``index``."""
    cur = await conn.execute(
        """
        SELECT part.relname
          FROM pg_inherits AS link JOIN pg_class AS part ON part.oid = link.inhrelid
         WHERE link.inhparent = to_regclass(%(table)s)
           AND NOT EXISTS (SELECT 1 FROM pg_inherits AS attached
                             JOIN pg_index AS child ON child.indexrelid = attached.inhrelid
                            WHERE attached.inhparent = to_regclass(%(index)s)
                              AND child.indrelid = part.oid)
         ORDER BY part.relname
        """,
        {"table": table, "index": index},
    )
    return [relname for (relname,) in await cur.fetchall()]


async def _build_on_partition(
    conn: AsyncConnection, partition: str, parent_index: str, index: str, method: str
) -> None:
    if await _valid(conn, index) is False:  # an interrupted CONCURRENTLY build leaves it invalid
        await conn.execute(sql.SQL("DROP INDEX CONCURRENTLY {}").format(sql.Identifier(index)))
    await conn.execute(sql.SQL("CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON {} USING {}").format(
        sql.Identifier(index), sql.Identifier(partition), sql.SQL(method)))
    await conn.execute(sql.SQL("ALTER INDEX {} ATTACH PARTITION {}").format(
        sql.Identifier(parent_index), sql.Identifier(index)))
    logger.info("index %s built on %s", index, partition)
