"""The minutes a counts refresh recomputes: queued by the writes the windows are made of, in their
transaction, and taken off by the transaction that recounts them."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

from psycopg import AsyncConnection

from ioc.schemas import PlateRead, SensorKind, SensorReading
from ioc.storage.passages import PassageRow, upsert_passages
from ioc.storage.plate_reads import insert_plate_reads
from ioc.storage.sensor_readings import insert_sensor_readings
from ioc.storage.uncounted_minutes import as_ranges, minutes_of, queue_minutes, take_minutes

T0 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
HANOI = timezone(timedelta(hours=7))


def test_minutes_become_runs_of_consecutive_minutes() -> None:
    captured = [T0 + timedelta(seconds=5), T0 + timedelta(seconds=59),
                (T0 + timedelta(minutes=1)).astimezone(HANOI), T0 + timedelta(minutes=2, seconds=30),
                T0 + timedelta(minutes=7), T0 - timedelta(days=2)]
    assert as_ranges(minutes_of(captured)) == [
        (T0 - timedelta(days=2), T0 - timedelta(days=2)),  # a late read: its own minute, not two days
        (T0, T0 + timedelta(minutes=2)),
        (T0 + timedelta(minutes=7), T0 + timedelta(minutes=7)),
    ]


def test_the_same_clock_time_in_two_zones_is_two_minutes() -> None:
    captured = [T0, T0.replace(tzinfo=HANOI), T0 + timedelta(seconds=30)]
    assert minutes_of(captured) == [T0 - timedelta(hours=7), T0]


async def test_stored_rows_queue_the_minutes_they_count_in(
    conn: AsyncConnection, make_read: Callable[..., PlateRead], make_reading: Callable[..., SensorReading],
) -> None:
    """Edge reads and counter readings queue their minutes; a frame camera's reads (its passages
    count) and environmental readings count in no window, and queue nothing."""
    edge = make_read("29A11111", captured_at=T0 + timedelta(seconds=10))
    camera = make_read("29A22222", captured_at=T0 + timedelta(minutes=5))
    camera = camera.model_copy(update={"source": "camera"})
    await insert_plate_reads(conn, [edge, camera])
    await insert_sensor_readings(conn, [
        make_reading(SensorKind.QR_CHECKIN, value=2, captured_at=T0 + timedelta(minutes=1)),
        make_reading(SensorKind.ENVIRONMENT, value=31.5, captured_at=T0 + timedelta(minutes=9)),
    ])
    await insert_plate_reads(conn, [edge])  # a replay queues its minute again: recounted once
    await conn.commit()
    assert await take_minutes(conn) == [T0, T0 + timedelta(minutes=1)]
    await conn.commit()
    assert await take_minutes(conn) == []


async def test_a_recount_that_does_not_commit_leaves_its_minutes_queued(
    conn: AsyncConnection, migrated_url: str,
) -> None:
    await queue_minutes(conn, [T0, T0 + timedelta(minutes=3)])
    await conn.commit()
    assert await take_minutes(conn, limit=1) == [T0]
    async with await AsyncConnection.connect(migrated_url) as other:  # another refresh meanwhile
        assert await take_minutes(other) == [T0 + timedelta(minutes=3)]  # skips the row held here
        await other.rollback()
    await conn.rollback()  # this refresh died
    assert await take_minutes(conn) == [T0, T0 + timedelta(minutes=3)]


async def test_a_passage_whose_start_moves_queues_the_minute_it_left(conn: AsyncConnection) -> None:
    """A read that arrives late and out of order moves its passage's start earlier, into another
    minute: only the new minute was queued, and the old one kept counting the vehicle too."""
    first = PassageRow(passage_id=uuid.uuid4(), camera_id="cam-1", checkpoint_id="cp-1", lane=0,
                       direction="in", started_at=T0 + timedelta(seconds=2),
                       ended_at=T0 + timedelta(seconds=4), text="29A11111", display="29A-111.11",
                       confidence=0.9, reads=2, support=2,
                       read_ids=[uuid.uuid4(), uuid.uuid4()], best_read_id=uuid.uuid4(), status="provisional")
    await upsert_passages(conn, [first])
    await conn.commit()
    assert await take_minutes(conn) == [T0]
    earlier = dataclasses.replace(first, started_at=T0 - timedelta(seconds=1), reads=3)
    await upsert_passages(conn, [earlier])
    await conn.commit()
    assert await take_minutes(conn) == [T0 - timedelta(minutes=1), T0]
