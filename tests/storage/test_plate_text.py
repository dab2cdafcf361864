"""Look-alike skeletons and wildcards, and that the SQL twin agrees with Python."""

from __future__ import annotations

from psycopg import AsyncConnection

from detectors.plate_format import canonical
from ioc.storage.plate_text import normalise_query, plate_skeleton, wildcard_to_like
from ioc.watchlist_matcher import normalise_pattern


def test_lookalikes_share_a_skeleton() -> None:
    assert plate_skeleton("30A12345") == plate_skeleton("3OA1Z345") == "30412345"
    assert plate_skeleton("3DAI23A5") == plate_skeleton("3QA12345") == "30412345"
    assert plate_skeleton("29MĐ101353") == plate_skeleton("29M0101353")
    assert plate_skeleton("30A12345") != plate_skeleton("30A12346")


def test_queries_are_normalised() -> None:
    assert normalise_query(" 30a-123.45 ") == "30A12345"
    assert wildcard_to_like("30a-12*") == "30A12%"
    assert wildcard_to_like("?0A%_12") == "_0A12"


async def test_sql_skeleton_matches_python(conn: AsyncConnection) -> None:
    samples = ["30A12345", "3OA1Z345", "29MĐ101353", "TM1234", "80011NG01", "51GBSZ6A"]
    cur = await conn.execute("SELECT s, ioc_plate_skeleton(s) FROM unnest(%s::text[]) AS s", [samples])
    assert {s: k for s, k in await cur.fetchall()} == {s: plate_skeleton(s) for s in samples}


def test_queries_fold_d_stroke_as_stored_plates_do() -> None:
    for typed in ("29-MĐ1 013.53", "29mđ101353", "29MD101353"):
        assert normalise_query(typed) == canonical(typed) == "29MD101353"
    assert normalise_query("29MĐ1*5?") == normalise_pattern("29MĐ1*5?") == "29MD1*5?"
    assert plate_skeleton(normalise_query("29MĐ101353")) == plate_skeleton("29MD101353")
