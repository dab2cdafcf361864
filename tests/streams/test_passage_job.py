"""Passages against a real database: the reads of one vehicle become one voted
passage, provisional until the vehicle left, and a restarted worker, or one its lane moved
to, completes it."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
from faust.types import TP
from psycopg.rows import dict_row

from detectors.passages import GAP_S
from ioc.config import Settings
from ioc.schemas import Direction, PlateCandidate, PlateRead, utcnow
from ioc.storage.database import connect
from ioc.storage.migrations import migrate
from ioc.storage.passages import lane_reads, upsert_passages
from ioc.storage.plate_reads import insert_plate_reads
from streams import live_passages
from streams.agents import passages
from streams.context import WorkerContext
from streams.live_passages import LivePassages


def _read(text: str, at: datetime, *, camera: str = "CP01-CAM1", lane: int = 0,
          confidence: float = 0.9) -> PlateRead:
    source = uuid.uuid4()
    return PlateRead(
        read_id=PlateRead.derive_id(source, 0), source="camera", source_event_id=source,
        camera_id=camera, checkpoint_id="CP01", direction=Direction.IN, lane=lane, captured_at=at,
        text=text, display=text, confidence=confidence,
        candidates=[PlateCandidate(text=text, confidence=confidence)],
    )


async def _passages(url: str) -> list[dict]:
    async with await connect(url) as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT camera_id, lane, text, reads, status FROM passages"
                          " ORDER BY camera_id, started_at")
        return await cur.fetchall()


async def test_stored_reads_become_voted_passages_written_for_owned_lanes(database_url: str) -> None:
    await migrate(database_url)
    start = utcnow() - timedelta(seconds=1)
    vehicle = [_read("29A12345", start), _read("29A12346", start + timedelta(seconds=0.4), confidence=0.5),
               _read("29A12345", start + timedelta(seconds=0.8))]
    elsewhere = _read("20B67890", start, camera="CP02-CAM1")  # in the database, fed to another worker
    async with await connect(database_url) as conn:
        await insert_plate_reads(conn, [*vehicle, elsewhere])
        await conn.commit()

    live = LivePassages()
    for read in vehicle:
        live.add(read)
    async with await connect(database_url) as conn:
        await upsert_passages(conn, live.flush())
        await conn.commit()
    assert await _passages(database_url) == [
        {"camera_id": "CP01-CAM1", "lane": 0, "text": "29A12345", "reads": 3, "status": "provisional"}
    ]

    # after a restart: the open passage is rebuilt from the stored reads, a replayed and a
    # new read join it, and the lane this worker is not fed stays unwritten
    restarted = LivePassages()
    async with await connect(database_url) as conn:
        for read in await lane_reads(conn, since=start - timedelta(minutes=1)):
            restarted.seed(read, whole_from=start - timedelta(minutes=1))
        late = _read("29A12345", start + timedelta(seconds=2))
        restarted.add(vehicle[0])
        restarted.add(late)
        await upsert_passages(conn, restarted.flush())
        await conn.commit()
    assert [(p["camera_id"], p["text"], p["reads"]) for p in await _passages(database_url)] == [
        ("CP01-CAM1", "29A12345", 4)
    ]


def test_a_passage_is_shown_as_its_best_read_was() -> None:
    """A passage was displayed from its text alone: an old motorbike plate with a four-digit
    serial (29-X5 1234) came out as a car's (29X-512.34). It takes the display of its best read
    (the surest read of the winning text), not of its first or last."""
    start = utcnow()
    looks = [("29X-512.34", 0.6), ("29-X5 1234", 0.95), ("29X-512.34", 0.7)]  # as each frame's layout read
    live = LivePassages()
    for i, (shown, confidence) in enumerate(looks):
        read = _read("29X51234", start + timedelta(seconds=0.3 * i), confidence=confidence)
        live.add(read.model_copy(update={"display": shown}))
    [row] = live.flush()
    assert (row.text, row.display) == ("29X51234", "29-X5 1234")


async def test_a_late_read_rewrites_its_final_passage_and_is_not_counted_again(database_url: str) -> None:
    """Stored twice under one id, counted once: the vehicles counter skips the rewrite."""
    await migrate(database_url)
    start = utcnow() - timedelta(seconds=30)
    live = LivePassages()
    live.add(_read("29A12345", start))
    live.add(_read("51F86988", start + timedelta(seconds=10)))  # the lane moved on: the first is final
    first = live.flush()
    assert [(r.text, r.status) for r in first] == [("29A12345", "final"), ("51F86988", "provisional")]
    assert live.rewritten == set()
    live.add(_read("29A12345", start + timedelta(seconds=1)))  # delivered late
    again = live.flush()
    assert [(r.text, r.status, r.reads) for r in again] == [("29A12345", "final", 2)]
    assert live.rewritten == {first[0].passage_id} == {again[0].passage_id}
    async with await connect(database_url) as conn:
        for flushed in (first, again):  # as the worker writes each flush
            await upsert_passages(conn, flushed)
    stored = [(p["text"], p["reads"]) for p in await _passages(database_url)]
    assert stored == [("29A12345", 2), ("51F86988", 1)]


def _worker(database_url: str) -> tuple[WorkerContext, Callable, list[Callable], list[Callable]]:
    """A worker's passages agent on a stand-in for its Faust app: its timer, and the handlers of
    partitions assigned and revoked, to call as Faust would."""
    timers: list = []
    on_assigned: list = []
    on_revoked: list = []
    app = SimpleNamespace(timer=lambda interval_s, name: timers.append,
                          on_partitions_assigned=SimpleNamespace(connect=on_assigned.append),
                          on_partitions_revoked=SimpleNamespace(connect=on_revoked.append))  # fmt: skip
    ctx = WorkerContext(settings=Settings(kafka_bootstrap="127.0.0.1:9", database_url=database_url),
                        app=app, topics=None, dead_letters=None, recognition=None)  # fmt: skip
    passages.register(ctx)
    [write_passages] = timers
    return ctx, write_passages, on_assigned, on_revoked


async def _stored_by_the_old_owner(database_url: str, reads: list[PlateRead]) -> None:
    """``reads`` stored, and their passages written, by the worker the lane belonged to."""
    old_owner = LivePassages()
    async with await connect(database_url) as conn:
        await insert_plate_reads(conn, reads)
        for read in reads:
            old_owner.add(read)
        await upsert_passages(conn, old_owner.flush())
        await conn.commit()


async def _signal(handlers: list[Callable], app: object, partitions: set[TP]) -> None:
    for handler in handlers:
        await handler(app, partitions)


async def test_a_vehicle_in_view_while_its_lane_moves_to_another_worker_keeps_its_passage(
    database_url: str,
) -> None:
    """A rebalance hands a lane to a worker that started long before: its reads of the vehicle so
    far were stored by the lane's old owner. The new owner opened a passage of its own (another
    first read, so another id), and the vehicle was counted twice."""
    await migrate(database_url)
    new_owner, write_passages, on_assigned, _ = _worker(database_url)
    app = new_owner.app
    try:
        for seed in on_assigned:  # its start: other partitions, nothing recent yet
            await seed(app, set())
        await write_passages()

        start = utcnow() - timedelta(seconds=2)
        seen_before = [_read("29A12345", start), _read("29A12345", start + timedelta(seconds=0.4))]
        await _stored_by_the_old_owner(database_url, seen_before)

        for seed in on_assigned:  # the rebalance, before the lane's partition is read
            await seed(app, {TP("camera-frames", 0)})
        later = _read("29A12345", start + timedelta(seconds=0.8))
        async with await connect(database_url) as conn:
            await insert_plate_reads(conn, [later])
            await conn.commit()
        new_owner.passages.add(later)
        await write_passages()
    finally:
        await (await new_owner.pool()).close()
    assert [(p["text"], p["reads"]) for p in await _passages(database_url)] == [("29A12345", 3)]


async def test_a_passage_across_the_seeding_window_is_not_written_again(database_url: str) -> None:
    """A rebalance loads the last minute of reads. A vehicle that was in view as that minute
    began had its first reads cut off: its passage opened on a later read, so under another id
    than the one its old owner wrote, and once the new owner fed the lane it was written too, a
    second passage of one vehicle (counted twice)."""
    await migrate(database_url)
    new_owner, write_passages, on_assigned, _ = _worker(database_url)
    start = utcnow() - passages.SEED_LOOKBACK - timedelta(seconds=1.5)
    vehicle = [_read("29A12345", start + timedelta(seconds=s)) for s in range(4)]  # across the window's start
    try:
        await _stored_by_the_old_owner(database_url, vehicle)
        await _signal(on_assigned, new_owner.app, {TP("camera-frames", 0)})
        next_vehicle = _read("51F86988", utcnow())  # the new owner feeds the lane from now on
        async with await connect(database_url) as conn:
            await insert_plate_reads(conn, [next_vehicle])
            await conn.commit()
        new_owner.passages.add(next_vehicle, TP("camera-frames", 0))
        await write_passages()
    finally:
        await (await new_owner.pool()).close()
    stored = [(p["text"], p["reads"]) for p in await _passages(database_url)]
    assert stored == [("29A12345", 4), ("51F86988", 1)]


async def test_a_lane_that_comes_back_is_seeded_again(database_url: str) -> None:
    """A worker kept every lane it had ever fed as its own: one whose partition went to another
    worker and came back was not loaded again, so the reads the other worker stored meanwhile
    were not in its passage, and a vehicle in view across the return got a second one."""
    await migrate(database_url)
    worker, write_passages, on_assigned, on_revoked = _worker(database_url)
    partition = TP("camera-frames", 0)
    start = utcnow() - timedelta(seconds=3)
    first, meanwhile, after = (_read("29A12345", start + timedelta(seconds=s)) for s in (0, 0.5, 1.0))
    try:
        await _signal(on_assigned, worker.app, {partition})
        async with await connect(database_url) as conn:
            await insert_plate_reads(conn, [first])
            await conn.commit()
        worker.passages.add(first, partition)
        await write_passages()
        await _signal(on_revoked, worker.app, {partition})
        other = LivePassages()  # the lane's owner meanwhile
        async with await connect(database_url) as conn:
            await insert_plate_reads(conn, [meanwhile])
            for read in await lane_reads(conn, since=start - timedelta(minutes=1)):
                other.seed(read, whole_from=start - timedelta(minutes=1))
            other.add(meanwhile, partition)
            await upsert_passages(conn, other.flush())
            await conn.commit()
        await _signal(on_assigned, worker.app, {partition})  # back to the first worker
        async with await connect(database_url) as conn:
            await insert_plate_reads(conn, [after])
            await conn.commit()
        worker.passages.add(after, partition)
        await write_passages()
    finally:
        await (await worker.pool()).close()
    assert [(p["text"], p["reads"]) for p in await _passages(database_url)] == [("29A12345", 3)]


async def test_a_batch_in_flight_as_its_partition_is_revoked_does_not_take_its_lane_back(
    database_url: str,
) -> None:
    """A batch still being stored when its partition was revoked made this worker the lane's owner
    again: two workers then wrote the lane's passages (the last write winning with part of the
    reads), and on the partition's return the lane was not seeded again."""
    await migrate(database_url)
    worker, _, on_assigned, on_revoked = _worker(database_url)
    partition = TP("camera-frames", 0)
    start = utcnow() - timedelta(seconds=3)
    in_flight, later = (_read("29A12345", start + timedelta(seconds=s)) for s in (0, 1))
    try:
        await _signal(on_assigned, worker.app, {partition})
        await _signal(on_revoked, worker.app, {partition})
        worker.passages.add(in_flight, partition)
        assert ("CP01-CAM1", 0) not in worker.passages.owned
        await _signal(on_assigned, worker.app, {partition})
        worker.passages.add(later, partition)
        assert ("CP01-CAM1", 0) in worker.passages.owned
    finally:
        await (await worker.pool()).close()


def _clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The passages' processing clock, to move on by hand: a passage is final once nothing joined
    it for ``2 * GAP_S`` (the event loop keeps the real clock)."""
    now = [time.monotonic()]
    monkeypatch.setattr(live_passages, "time", SimpleNamespace(monotonic=lambda: now[0]))
    return now


async def _stored(database_url: str, reads: list[PlateRead]) -> None:
    async with await connect(database_url) as conn:
        await insert_plate_reads(conn, reads)
        await conn.commit()


@pytest.mark.parametrize("stored", ["before the rebalance", "between its signals"])
async def test_a_lane_whose_partition_comes_straight_back_is_still_written(
    database_url: str, monkeypatch: pytest.MonkeyPatch, stored: str,
) -> None:
    """Every rebalance revokes every partition, most to give them straight back: a lane that came
    back stayed unowned until its next read, and a passage that became final meanwhile (the
    vehicle gone, the road quiet) was never written final nor counted. So too a read of a batch in
    flight between the revoked and the assigned signals: its lane was no longer this worker's."""
    await migrate(database_url)
    clock = _clock(monkeypatch)
    worker, write_passages, on_assigned, on_revoked = _worker(database_url)
    partition = TP("camera-frames", 0)
    read = _read("29A12345", utcnow() - timedelta(seconds=1))

    async def store() -> None:
        await _stored(database_url, [read])
        worker.passages.add(read, partition)

    try:
        await _signal(on_assigned, worker.app, {partition})
        if stored == "before the rebalance":
            await store()
            await write_passages()
        await _signal(on_revoked, worker.app, {partition})
        if stored == "between its signals":
            await store()
        await _signal(on_assigned, worker.app, {partition})
        clock[0] += 3 * GAP_S  # no further read: the vehicle is gone
        await write_passages()
    finally:
        await (await worker.pool()).close()
    assert [(p["text"], p["reads"], p["status"]) for p in await _passages(database_url)] == [
        ("29A12345", 1, "final")
    ]


async def test_a_passage_final_during_a_rebalance_is_written_if_its_partition_comes_back(
    database_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A passage that became final between the revoked and the assigned signals was handed out
    while its lane was nobody's, and lost. It waits for the assignment: written if its partition
    came back, left to the lane's new owner if not."""
    await migrate(database_url)
    clock = _clock(monkeypatch)
    worker, write_passages, on_assigned, on_revoked = _worker(database_url)
    kept, lost = TP("camera-frames", 0), TP("camera-frames", 1)
    start = utcnow() - timedelta(seconds=1)
    reads = [_read("29A12345", start), _read("51F86988", start, camera="CP02-CAM1")]
    try:
        await _signal(on_assigned, worker.app, {kept, lost})
        await _stored(database_url, reads)
        for read, partition in zip(reads, (kept, lost), strict=True):
            worker.passages.add(read, partition)
        await write_passages()
        await _signal(on_revoked, worker.app, {kept, lost})
        clock[0] += 3 * GAP_S  # the group still rebalancing, both vehicles gone
        await write_passages()
        await _signal(on_assigned, worker.app, {kept})
        await write_passages()
    finally:
        await (await worker.pool()).close()
    assert [(p["camera_id"], p["status"]) for p in await _passages(database_url)] == [
        ("CP01-CAM1", "final"), ("CP02-CAM1", "provisional")  # CP02's new owner completes it
    ]


def test_a_passage_held_through_a_rebalance_is_counted_once_written(monkeypatch: pytest.MonkeyPatch) -> None:
    """A held passage that became final unwritten, then took a late read, is no rewrite once
    written: its vehicle was never counted."""
    clock = _clock(monkeypatch)
    live, partition, start = LivePassages(), TP("camera-frames", 0), utcnow()
    live.add(_read("29A12345", start), partition)
    live.release({partition})
    clock[0] += 3 * GAP_S
    assert live.flush() == []  # final, held
    live.add(_read("29A12345", start + timedelta(seconds=1)), partition)  # late, in flight
    assert live.flush() == []
    live.assign({partition})
    live.reclaim()
    [row] = live.flush()
    assert (row.status, row.reads, live.rewritten) == ("final", 2, set())
