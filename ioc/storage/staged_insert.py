"""Idempotent bulk writes: COPY into a session temp table, then INSERT ... ON CONFLICT.

COPY is the fastest way in, but it cannot skip rows that already exist; the
INSERT from the staging table can. Replaying a batch therefore adds nothing,
and the count of new rows tells the caller what really changed.

Rows that are only ever inserted (``DO NOTHING``) are first copied straight into
the table: nearly every batch is new, and that skips the staging copy and the
conflict checks (together half the database's time per plate read). A batch that
meets a row already there (a replay) rolls back and takes the staged path.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager

from psycopg import AsyncConnection, AsyncCursor, sql
from psycopg.errors import UniqueViolation
from psycopg.types.json import set_json_dumps

from ioc.storage.database import json_dumps

__all__ = ["StagedTable", "copy_and_insert", "copy_and_insert_keys"]


class StagedTable:
    """How one target table is staged: which columns, their types, its unique key.

    ``returning_sql`` (optional) turns the INSERT into a CTE ``inserted``, and is
    the statement that follows it (e.g. also writing a history row); its row count
    is returned instead. With ``update`` columns, an existing row takes the new
    values of those columns where any differ (and ``touch``, a timestamp column, is
    set to now()); rows that are already up to date are not rewritten. A table with
    neither has ``insert_keys``, the INSERT returning the keys of the rows it inserted.
    """

    def __init__(
        self,
        table: str,
        columns: Sequence[tuple[str, str]],
        conflict: Sequence[str],
        *,
        returning: str | None = None,
        follow_up: str | None = None,
        update: Sequence[str] = (),
        touch: str | None = None,
    ) -> None:
        self.table = table
        self.columns = [name for name, _ in columns]
        self.types = [pg_type for _, pg_type in columns]
        self.conflict = list(conflict)
        # the column list is in the name: a connection that outlives a schema change
        # gets a fresh staging table instead of a stale one
        digest = hashlib.blake2s(repr(list(columns)).encode(), digest_size=4).hexdigest()
        self.staging = f"_ioc_stage_{table}_{digest}"
        ident = sql.Identifier
        cols = sql.SQL(", ").join(map(ident, self.columns))
        self.create = sql.SQL(
            "CREATE TEMP TABLE IF NOT EXISTS {} ON COMMIT DELETE ROWS AS SELECT {} FROM {} WITH NO DATA"
        ).format(ident(self.staging), cols, ident(table))
        self.truncate = sql.SQL("TRUNCATE {}").format(ident(self.staging))
        self.copy = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(ident(self.staging), cols)
        # straight into the table: only where a conflicting row is simply skipped
        self.direct_copy = (
            sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(ident(table), cols)
            if not update and follow_up is None else None
        )
        keys = sql.SQL(", ").join(map(ident, self.conflict))
        insert = sql.SQL("INSERT INTO {} AS t ({}) SELECT {} FROM {} ON CONFLICT ({}) {}").format(
            ident(table), cols, cols, ident(self.staging), keys, _conflict_action(update, touch))
        # the keys of the rows it inserted: what a replay would count again is what it skipped
        self.insert_keys = (sql.SQL("{} RETURNING {}").format(insert, keys)
                            if not update and follow_up is None else None)
        self.key_index = [self.columns.index(c) for c in self.conflict]
        if follow_up is None:
            self.insert: sql.Composable = insert
        else:
            self.insert = sql.SQL("WITH inserted AS ({} RETURNING {}) {}").format(
                insert, sql.SQL(returning or "*"), sql.SQL(follow_up))


def _conflict_action(update: Sequence[str], touch: str | None) -> sql.Composable:
    if not update:
        return sql.SQL("DO NOTHING")
    ident = sql.Identifier
    assignments = [sql.SQL("{} = excluded.{}").format(ident(c), ident(c)) for c in update]
    if touch:
        assignments.append(sql.SQL("{} = now()").format(ident(touch)))
    return sql.SQL("DO UPDATE SET {} WHERE ({}) IS DISTINCT FROM ({})").format(
        sql.SQL(", ").join(assignments),
        sql.SQL(", ").join(sql.SQL("t.{}").format(ident(c)) for c in update),
        sql.SQL(", ").join(sql.SQL("excluded.{}").format(ident(c)) for c in update),
    )


async def copy_and_insert(
    conn: AsyncConnection, target: StagedTable, rows: Iterable[Sequence[object]]
) -> int:
    """Store ``rows`` (in ``target.columns`` order), skipping the ones already there;
    returns how many were new.

    Runs in a transaction (a savepoint inside the caller's), so a failure leaves
    nothing behind and the caller's transaction usable.
    """
    rows = list(rows)
    if await _copied_straight(conn, target, rows):
        return len(rows)
    async with _staged(conn, target, rows) as cur:
        await cur.execute(target.insert)
        return max(cur.rowcount, 0)


async def copy_and_insert_keys(
    conn: AsyncConnection, target: StagedTable, rows: Iterable[Sequence[object]]
) -> list[tuple[object, ...]]:
    """As :func:`copy_and_insert`, for a table whose rows are only ever inserted; returns the
    keys (``target.conflict`` columns) of the rows that were new, once each: a caller counting
    what it stored counts a replayed row never twice."""
    if target.insert_keys is None:
        raise ValueError(f"{target.table}: only a table whose rows are only ever inserted has new keys")
    rows = list(rows)
    if await _copied_straight(conn, target, rows):
        return [tuple(row[i] for i in target.key_index) for row in rows]  # all new, and distinct
    async with _staged(conn, target, rows) as cur:
        await cur.execute(target.insert_keys)
        return [tuple(key) for key in await cur.fetchall()]


async def _copied_straight(
    conn: AsyncConnection, target: StagedTable, rows: Sequence[Sequence[object]]
) -> bool:
    """Whether ``rows`` went straight into the table (all of them new)."""
    if target.direct_copy is None:
        return False
    try:
        async with conn.transaction():
            await _copy(conn, target.direct_copy, target.types, rows)
        return True
    except UniqueViolation:
        return False  # some rows are stored already: the staged insert skips them


@asynccontextmanager
async def _staged(
    conn: AsyncConnection, target: StagedTable, rows: Sequence[Sequence[object]]
) -> AsyncIterator[AsyncCursor]:
    """A cursor, in a transaction, with ``rows`` in the staging table."""
    async with conn.transaction(), conn.cursor() as cur:
        await cur.execute(target.create)
        await cur.execute(target.truncate)
        await _copy(conn, target.copy, target.types, rows)
        yield cur


async def _copy(conn: AsyncConnection, statement: sql.Composable, types: Sequence[str],
                rows: Sequence[Sequence[object]]) -> None:
    async with conn.cursor() as cur:
        set_json_dumps(json_dumps, context=cur)
        async with cur.copy(statement) as copy:
            copy.set_types(types)
            for row in rows:
                await copy.write_row(row)
