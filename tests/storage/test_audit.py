"""The audit log is append-only, enforced by the database itself."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import AsyncConnection

from ioc.storage.audit import append_audit, list_audit


async def _append(conn: AsyncConnection, actor: str, n: int) -> None:
    await append_audit(conn, actor=actor, role="officer", action="plate_lookup",
                       query={"text": f"30A1234{n}", "fuzzy": True}, purpose="case 2026/117", result_count=n)


async def test_append_and_list(conn: AsyncConnection) -> None:
    for n in range(5):
        await _append(conn, "officer1" if n % 2 == 0 else "officer2", n)
    await conn.commit()
    mine = await list_audit(conn, actor="officer1")
    assert [r.result_count for r in mine] == [4, 2, 0]
    assert mine[0].query == {"text": "30A12344", "fuzzy": True} and mine[0].purpose == "case 2026/117"
    page1 = await list_audit(conn, limit=3)
    page2 = await list_audit(conn, limit=3, before_id=page1[-1].audit_id)
    assert [r.result_count for r in page1 + page2] == [4, 3, 2, 1, 0]
    assert len(await list_audit(conn, action="watchlist_check")) == 0


@pytest.mark.parametrize("statement", [
    "UPDATE audit_log SET purpose = 'nothing to see'",
    "DELETE FROM audit_log",
    "TRUNCATE audit_log",
])
async def test_rows_cannot_be_changed_or_removed(conn: AsyncConnection, statement: str) -> None:
    await _append(conn, "officer1", 1)
    await conn.commit()
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        await conn.execute(statement)
    await conn.rollback()
    rows = await list_audit(conn)
    assert [(r.actor, r.purpose) for r in rows] == [("officer1", "case 2026/117")]


async def test_every_query_states_a_purpose(conn: AsyncConnection) -> None:
    with pytest.raises(psycopg.errors.CheckViolation):
        await append_audit(conn, actor="officer1", role="officer", action="plate_lookup", query={},
                           purpose="  ", result_count=0)


async def test_a_time_window_is_listed_newest_first_a_page_at_a_time(conn: AsyncConnection) -> None:
    """An auditor reviewing a past period: the window is read from its end (by time), in pages."""
    moments = []
    for n in range(6):  # each in a transaction of its own: its own time
        await _append(conn, "officer1", n)
        await conn.commit()
        moments.append((await list_audit(conn, limit=1))[0].at)
    since, until = moments[1], moments[5]
    first = await list_audit(conn, since=since, until=until, limit=2)
    rest = await list_audit(conn, since=since, until=until, limit=10, before_id=first[-1].audit_id)
    assert [r.result_count for r in first + rest] == [4, 3, 2, 1]
    assert [r.result_count for r in await list_audit(conn, until=until, limit=10)] == [4, 3, 2, 1, 0]
    assert [r.result_count for r in await list_audit(conn, actor="officer1", since=moments[4])] == [5, 4]
