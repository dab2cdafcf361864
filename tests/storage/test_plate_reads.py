"""Plate reads: idempotent writes, crops, and exact / look-alike / wildcard look-ups with paging."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from psycopg import AsyncConnection, AsyncCursor, sql

from ioc.schemas import Direction, PlateRead
from ioc.storage.database import Capabilities
from ioc.storage.partitions import ensure_partitions
from ioc.storage.plate_reads import (
    Sighting,
    SightingCursor,
    find_sightings,
    get_crop,
    get_read,
    insert_new_plate_reads,
    insert_plate_reads,
    recent_reads_matching,
)

ReadFactory = Callable[..., PlateRead]


def _window(now: datetime) -> dict[str, datetime]:
    return {"since": now - timedelta(days=1), "until": now + timedelta(hours=1)}


async def _count(conn: AsyncConnection, table: str) -> int:
    row = await (await conn.execute(f"SELECT count(*) FROM {table}")).fetchone()
    return row[0]


async def _all_pages(conn: AsyncConnection, now: datetime, page: int, **query) -> list[Sighting]:
    rows: list[Sighting] = []
    cursor: SightingCursor | None = None
    while True:
        batch = await find_sightings(conn, limit=page, before=cursor, **query, **_window(now))
        rows.extend(batch)
        if len(batch) < page:
            return rows
        cursor = SightingCursor.from_token(batch[-1].cursor.token())


async def test_same_batch_twice_stores_each_read_once(
    conn: AsyncConnection, make_read: ReadFactory, now: datetime
) -> None:
    reads = [make_read(f"30A1{i:04d}", crop=b"\xff\xd8crop" if i % 2 else None) for i in range(50)]
    assert await insert_plate_reads(conn, reads) == 50
    await conn.commit()
    assert await insert_plate_reads(conn, reads) == 0
    # a batch overlapping the stored rows counts only the new ones, and duplicates inside it once
    more = [make_read("51F86988") for _ in range(5)]
    assert await insert_plate_reads(conn, reads[:10] + more + more) == 5
    twin = make_read("29A12345")  # a new batch repeating a read of its own
    assert await insert_plate_reads(conn, [twin, twin]) == 1
    await conn.commit()
    assert await _count(conn, "plate_reads") == 56
    assert await _count(conn, "plate_crops") == 25


async def test_the_reads_a_batch_stored_are_told_apart_from_those_stored_before(
    conn: AsyncConnection, make_read: ReadFactory
) -> None:
    """What the sink counts (vehicles, reads, latency): a replay's reads stored before are not new."""
    reads = [make_read(f"30A2{i:04d}") for i in range(5)]
    assert await insert_new_plate_reads(conn, reads[:2]) == reads[:2]  # straight in: all new
    await conn.commit()
    more = make_read("51F86988")
    new = await insert_new_plate_reads(conn, [*reads, more, more])  # staged: skips the stored
    assert sorted(r.read_id for r in new) == sorted(r.read_id for r in [*reads[2:], more])
    assert all(any(r is given for given in [*reads, more]) for r in new), "the reads given, not copies"
    assert await insert_new_plate_reads(conn, reads) == []
    await conn.commit()
    assert await _count(conn, "plate_reads") == 6


async def test_read_round_trips_and_crop_is_stored_apart(
    conn: AsyncConnection, make_read: ReadFactory, now: datetime
) -> None:
    read = make_read(crop=b"\xff\xd8\xff\xe0small-jpeg")
    await insert_plate_reads(conn, [read])
    stored = await get_read(conn, read.read_id)
    assert stored is not None
    volatile = {"event_id", "crop_jpeg"}
    assert stored.model_dump(exclude=volatile) == read.model_dump(exclude=volatile)
    assert await get_crop(conn, read.read_id) == read.crop_jpeg
    assert await get_crop(conn, read.read_id, read.captured_at) == read.crop_jpeg
    assert await get_crop(conn, make_read().read_id) is None


async def test_exact_lookup_is_newest_first_and_pages_without_gaps(
    conn: AsyncConnection, make_read: ReadFactory, now: datetime
) -> None:
    wanted = [make_read("29X504899", captured_at=now - timedelta(minutes=i)) for i in range(23)]
    # two reads at the same instant: the read_id breaks the tie, so paging neither skips nor repeats
    twin = make_read("29X504899", captured_at=wanted[5].captured_at)
    noise = [make_read("29X504898"), make_read("29X5O4899"), make_read("30A12345")]
    await insert_plate_reads(conn, [*wanted, twin, *noise])
    await conn.commit()

    rows = await _all_pages(conn, now, 5, text="29-X5 048.99")
    assert len(rows) == 24
    assert {r.read_id for r in rows} == {r.read_id for r in [*wanted, twin]}
    keys = [(r.captured_at, r.read_id) for r in rows]
    assert keys == sorted(keys, reverse=True)
    assert all(r.match == "exact" and r.text == "29X504899" for r in rows)


async def test_fuzzy_lookup_matches_lookalikes_only(
    conn: AsyncConnection, make_read: ReadFactory, now: datetime
) -> None:
    lookalikes = ["30A12345", "3OA12345", "30A1Z345", "3DAI23A5", "30412345"]
    others = ["30A12346", "30A1234", "31A12345"]
    await insert_plate_reads(conn, [make_read(t) for t in lookalikes + others])
    rows = await _all_pages(conn, now, 2, text="30A12345", fuzzy=True)
    assert sorted(r.text for r in rows) == sorted(lookalikes)
    assert {r.text: r.match for r in rows}["30A12345"] == "exact"
    assert {r.match for r in rows if r.text != "30A12345"} == {"lookalike"}


async def test_wildcard_lookup(
    conn: AsyncConnection, make_read: ReadFactory, now: datetime
) -> None:
    texts = ["30A12345", "30A12399", "30A19999", "51F12345", "30B12345", "29A123456"]
    await insert_plate_reads(conn, [make_read(t) for t in texts])
    found = {r.text for r in await _all_pages(conn, now, 2, pattern="30A12*")}
    assert found == {"30A12345", "30A12399"}
    found = {r.text for r in await _all_pages(conn, now, 2, pattern="*12345")}
    assert found == {"30A12345", "51F12345", "30B12345"}
    found = {r.text for r in await _all_pages(conn, now, 2, pattern="30?12345")}
    assert found == {"30A12345", "30B12345"}
    found = {r.text for r in await _all_pages(conn, now, 2, pattern="?0A12345")}
    assert found == {"30A12345"}
    # fuzzy wildcard: B reads like 8
    found = {r.text for r in await _all_pages(conn, now, 10, pattern="308*", fuzzy=True)}
    assert found == {"30B12345"}
    rows = await _all_pages(conn, now, 10, pattern="30?1Z345", fuzzy=True)  # Z reads like 2
    assert {r.text: r.match for r in rows} == {"30A12345": "lookalike", "30B12345": "lookalike"}
    rows = await _all_pages(conn, now, 10, pattern="30A1?345", fuzzy=True)
    assert {r.text: r.match for r in rows} == {"30A12345": "pattern"}


async def test_filters_by_time_checkpoint_and_direction(
    conn: AsyncConnection, make_read: ReadFactory, now: datetime
) -> None:
    reads = [
        make_read("88A00001", checkpoint_id="cp-1", direction=Direction.IN),
        make_read("88A00001", checkpoint_id="cp-2", direction=Direction.IN),
        make_read("88A00001", checkpoint_id="cp-2", direction=Direction.OUT),
        make_read("88A00001", captured_at=now - timedelta(days=3)),
    ]
    await insert_plate_reads(conn, reads)
    assert len(await find_sightings(conn, text="88A00001", limit=10, **_window(now))) == 3
    at_cp2 = await find_sightings(conn, text="88A00001", checkpoint_id="cp-2", limit=10, **_window(now))
    assert {r.read_id for r in at_cp2} == {reads[1].read_id, reads[2].read_id}
    out = await find_sightings(conn, text="88A00001", checkpoint_id="cp-2", direction="out", limit=10,
                               **_window(now))
    assert [r.read_id for r in out] == [reads[2].read_id]
    old = await find_sightings(conn, text="88A00001", since=now - timedelta(days=4),
                               until=now - timedelta(days=2), limit=10)
    assert [r.read_id for r in old] == [reads[3].read_id]


async def test_bad_queries_are_refused(
    conn: AsyncConnection, make_read: ReadFactory, now: datetime
) -> None:
    with pytest.raises(ValueError):
        await find_sightings(conn, text="3*", limit=10, **_window(now))
    with pytest.raises(ValueError):
        await find_sightings(conn, pattern="*", limit=10, **_window(now))
    with pytest.raises(ValueError):
        await find_sightings(conn, text="30A12345", pattern="30A*", limit=10, **_window(now))
    with pytest.raises(ValueError):
        await find_sightings(conn, text="30A12345", limit=0, **_window(now))
    with pytest.raises(ValueError):
        SightingCursor.from_token("not-a-cursor")


async def test_recent_reads_matching_for_past_read_matching(
    conn: AsyncConnection, make_read: ReadFactory, now: datetime
) -> None:
    reads = [
        make_read("30A12345", captured_at=now - timedelta(hours=1)),
        make_read("3OA12345", captured_at=now - timedelta(hours=2)),   # look-alike
        make_read("30A12399", captured_at=now - timedelta(hours=3)),
        make_read("30A1234", captured_at=now - timedelta(hours=4)),    # one character dropped
        make_read("30A1Z3456", captured_at=now - timedelta(hours=5)),  # one inserted, one look-alike
        make_read("30A12346", captured_at=now - timedelta(hours=6)),   # a different plate
        make_read("30A12345", captured_at=now - timedelta(hours=30)),  # too old
    ]
    await insert_plate_reads(conn, reads)
    since = now - timedelta(hours=24)
    fuzzy = await recent_reads_matching(conn, "30A-123.45", since)
    assert [r.read_id for r in fuzzy] == [reads[i].read_id for i in (4, 3, 1, 0)]
    assert fuzzy[-1].candidates == reads[0].candidates
    exact = await recent_reads_matching(conn, "30A12345", since, fuzzy=False)
    assert [r.read_id for r in exact] == [reads[0].read_id]
    pattern = await recent_reads_matching(conn, "30A123*", since, fuzzy=False)
    assert [r.read_id for r in pattern] == [reads[i].read_id for i in (5, 3, 2, 0)]
    # over the limit, the newest are kept (still oldest first): a wanted vehicle's latest sightings
    newest = await recent_reads_matching(conn, "30A123*", since, fuzzy=False, limit=2)
    assert [r.read_id for r in newest] == [reads[i].read_id for i in (2, 0)]


async def test_a_plate_written_with_d_stroke_finds_its_stored_reads(
    conn: AsyncConnection, make_read: ReadFactory, now: datetime
) -> None:
    """Stored text is canonical (Đ folded to D): a query typed with Đ or đ must find it."""
    stored = make_read("29MD101353")  # detectors.plate_format.canonical("29-MĐ1 013.53")
    await insert_plate_reads(conn, [stored, make_read("29MD101354")])
    await conn.commit()
    for typed in ("29MĐ101353", "29-mđ1 013.53"):
        exact = await find_sightings(conn, text=typed, **_window(now))
        assert [(s.read_id, s.match) for s in exact] == [(stored.read_id, "exact")]
        fuzzy = await find_sightings(conn, text=typed, fuzzy=True, **_window(now))
        assert [(s.read_id, s.match) for s in fuzzy] == [(stored.read_id, "exact")]
    pattern = await find_sightings(conn, pattern="29MĐ1*53", **_window(now))
    assert [s.read_id for s in pattern] == [stored.read_id]
    single = await find_sightings(conn, pattern="29MĐ10135?", **_window(now))
    assert len(single) == 2
    past = await recent_reads_matching(conn, "29MĐ101353", now - timedelta(days=1), fuzzy=False)
    assert [r.read_id for r in past] == [stored.read_id]


async def test_a_fuzzy_pattern_with_a_leading_wildcard_has_an_index(
    conn: AsyncConnection, caps: Capabilities, make_read: ReadFactory, now: datetime
) -> None:
    """``*12345`` fuzzy is ``skeleton LIKE '%12345'``: no btree serves it, a trigram index does
    (without one it read every row of its window)."""
    if not caps.pg_trgm:
        pytest.skip("pg_trgm is not installed on this server")
    traffic = [make_read(f"{29 + i % 60}{'ABCDEFGH'[i % 8]}{i * 7919 % 100000:05d}",
                         captured_at=now - timedelta(seconds=10 * i)) for i in range(4000)]
    wanted = [make_read("30A12345"), make_read("51G1Z345")]
    await insert_plate_reads(conn, [*traffic, *wanted])
    await conn.commit()
    await conn.execute("ANALYZE plate_reads")
    found = await find_sightings(conn, pattern="*12345", fuzzy=True, **_window(now))
    assert {(s.text, s.match) for s in found} == {("30A12345", "pattern"), ("51G1Z345", "lookalike")}

    cur = await conn.execute(
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE pg_get_indexdef(i.indexrelid) LIKE '%%USING gin (skeleton gin_trgm_ops)%%'")
    trigram_indexes = {name for (name,) in await cur.fetchall()}
    assert "plate_reads_skeleton_trgm_idx" in trigram_indexes
    # a test table is small: a whole scan of it is cheap, so ask for the index that narrows
    # the pattern itself rather than one that walks all of it
    await conn.execute("SET enable_seqscan = off; SET enable_indexscan = off")
    cur = await conn.execute("EXPLAIN (FORMAT JSON) SELECT read_id FROM plate_reads WHERE skeleton LIKE %s",
                             ["%12345"])
    plan = json.dumps((await cur.fetchone())[0])
    assert any(f'"Index Name": "{name}"' in plan for name in trigram_indexes), plan
    await conn.rollback()


@pytest.mark.parametrize("fuzzy", [False, True])
async def test_one_unknown_character_looks_up_its_plates_not_the_whole_window(
    conn: AsyncConnection, make_read: Callable[..., PlateRead], now: datetime, fuzzy: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``50K?32202`` is 36 plates (or their skeletons): newest first, the planner walked the time
    index through every day of the window and tested each read against them (150-200 ms for
    300,000 reads over 30 days, growing with the window; 2-8 ms collecting their reads first)."""
    days, reads = 30, 20_000
    await ensure_partitions(conn, now + timedelta(days=1), since=now - timedelta(days=days + 1))
    # commuters: 500 plates read 40 times each, so the planner expects the 36 plates to match often
    traffic = [make_read(f"{29 + i % 50}{'ABCDEFGH'[i % 2]}{i % 500 * 7919 % 100000:05d}",
                         captured_at=now - timedelta(seconds=days * 86400 / reads * i)) for i in range(reads)]
    wanted = make_read("50K332202", captured_at=now - timedelta(days=days - 0.5))  # at the far end
    await insert_plate_reads(conn, [*traffic, wanted])
    await conn.commit()
    await conn.execute("ANALYZE plate_reads")
    statements: list[tuple[object, object]] = []
    execute = AsyncCursor.execute

    async def kept(self: AsyncCursor, query: object, params: object = None, **kwargs: object) -> object:
        statements.append((query, params))
        return await execute(self, query, params, **kwargs)

    monkeypatch.setattr(AsyncCursor, "execute", kept)
    window = {"since": now - timedelta(days=days), "until": now + timedelta(hours=1)}
    found = await find_sightings(conn, pattern="50K?32202", fuzzy=fuzzy, **window)
    monkeypatch.undo()
    assert [s.text for s in found] == ["50K332202"]
    query, params = statements[-1]
    cur = await conn.execute(sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) ") + query, params)
    plan = json.dumps((await cur.fetchone())[0])
    removed = sum(int(n) for n in re.findall(r'"Rows Removed by Filter": (\d+)', plan))
    assert removed < reads / 4, plan[:3000]  # every read of the window before
    await conn.rollback()
