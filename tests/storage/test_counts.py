"""Checkpoint counts derived from stored rows: correct, and idempotent under replays."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from psycopg import AsyncConnection

from ioc.schemas import Direction, PlateRead, SensorKind, SensorReading
from ioc.storage.checkpoint_counts import (
    CountRow,
    counts_per_local_day,
    counts_per_minute,
    counts_rollup,
    local_day_source,
    local_midnight,
    refresh_counts,
    upsert_counts,
)
from ioc.storage.late_rollups import refresh_late_rollups
from ioc.storage.passages import PassageRow, upsert_passages
from ioc.storage.plate_reads import insert_plate_reads
from ioc.storage.sensor_readings import insert_sensor_readings

ReadFactory = Callable[..., PlateRead]
ReadingFactory = Callable[..., SensorReading]


def _totals(rows: list[CountRow]) -> dict[tuple, tuple]:
    return {(r.bucket, r.checkpoint_id, r.direction, r.vehicle_class, r.origin):
            (r.vehicles, r.sensor_vehicles, r.qr_checkins) for r in rows}


async def _traffic(conn: AsyncConnection, make_read: ReadFactory, make_reading: ReadingFactory,
                   now: datetime) -> tuple[list[PlateRead], list[SensorReading]]:
    minute = now - timedelta(minutes=10)
    reads = [
        # minute 0: 3 in (2 from out of province), 1 out
        make_read("29A11111", captured_at=minute + timedelta(seconds=1)),
        make_read("29A22222", captured_at=minute + timedelta(seconds=20)),
        make_read("20A33333", captured_at=minute + timedelta(seconds=59), out_of_province=False),
        make_read("20A44444", captured_at=minute + timedelta(seconds=30), direction=Direction.OUT,
                  out_of_province=False),
        # minute 1: a motorbike of unknown origin, and another checkpoint
        make_read("29X504899", captured_at=minute + timedelta(minutes=1, seconds=5),
                  vehicle_class="motorbike", out_of_province=None),
        make_read("29A55555", captured_at=minute + timedelta(minutes=1, seconds=6), checkpoint_id="cp-2"),
    ]
    readings = [
        make_reading(SensorKind.VEHICLE_COUNT, value=7, captured_at=minute + timedelta(seconds=10)),
        make_reading(SensorKind.VEHICLE_COUNT, value=3, captured_at=minute + timedelta(seconds=40)),
        make_reading(SensorKind.QR_CHECKIN, value=2, captured_at=minute + timedelta(seconds=15),
                     direction=None),
        make_reading(SensorKind.ENVIRONMENT, value=31.5, captured_at=minute + timedelta(seconds=15)),
    ]
    await insert_plate_reads(conn, reads)
    await insert_sensor_readings(conn, readings)
    await conn.commit()
    return reads, readings


async def test_minute_counts_from_reads_and_sensors(
    conn: AsyncConnection, make_read: ReadFactory, make_reading: ReadingFactory, now: datetime
) -> None:
    await _traffic(conn, make_read, make_reading, now)
    minute = now - timedelta(minutes=10)
    assert await refresh_counts(conn, since=now - timedelta(minutes=15), until=now) > 0
    await conn.commit()
    rows = await counts_per_minute(conn, since=now - timedelta(hours=1), until=now)
    nxt = minute + timedelta(minutes=1)
    assert _totals(rows) == {
        (minute, "cp-1", "in", "car", "out_of_province"): (2, 0.0, 0.0),
        (minute, "cp-1", "in", "car", "home"): (1, 0.0, 0.0),
        (minute, "cp-1", "out", "car", "home"): (1, 0.0, 0.0),
        (minute, "cp-1", "in", "car", "unknown"): (0, 10.0, 0.0),
        (minute, "cp-1", "unknown", "unknown", "unknown"): (0, 0.0, 2.0),
        (nxt, "cp-1", "in", "motorbike", "unknown"): (1, 0.0, 0.0),
        (nxt, "cp-2", "in", "car", "out_of_province"): (1, 0.0, 0.0),
    }
    only_cp2 = await counts_per_minute(conn, checkpoint_id="cp-2", since=now - timedelta(hours=1), until=now)
    assert [r.vehicles for r in only_cp2] == [1]


async def test_replays_and_repeated_refreshes_never_double_count(
    conn: AsyncConnection, make_read: ReadFactory, make_reading: ReadingFactory, now: datetime
) -> None:
    reads, readings = await _traffic(conn, make_read, make_reading, now)
    window = {"since": now - timedelta(minutes=15), "until": now}
    await refresh_counts(conn, **window)
    await conn.commit()
    first = _totals(await counts_per_minute(conn, **window))
    # the same events again (at-least-once delivery), and refreshes from two workers
    assert await insert_plate_reads(conn, reads) == 0
    assert await insert_sensor_readings(conn, readings) == 0
    assert await refresh_counts(conn, **window) == 0
    assert await refresh_counts(conn, since=now - timedelta(minutes=11, seconds=30), until=now) == 0
    await conn.commit()
    assert _totals(await counts_per_minute(conn, **window)) == first
    # a late read for an already counted minute is picked up by the next refresh covering it
    late = make_read("29A99999", captured_at=now - timedelta(minutes=10) + timedelta(seconds=45))
    await insert_plate_reads(conn, [late])
    assert await refresh_counts(conn, **window) == 1
    key = (now - timedelta(minutes=10), "cp-1", "in", "car", "out_of_province")
    assert _totals(await counts_per_minute(conn, **window))[key] == (3, 0.0, 0.0)


async def test_hourly_and_daily_rollups(
    conn: AsyncConnection, make_read: ReadFactory, make_reading: ReadingFactory, now: datetime
) -> None:
    reads = [make_read(f"29A{i:05d}", captured_at=now - timedelta(hours=2, minutes=i)) for i in range(30)]
    reads += [make_read(f"29B{i:05d}", captured_at=now - timedelta(minutes=i + 1)) for i in range(5)]
    await insert_plate_reads(conn, reads)
    await refresh_counts(conn, since=now - timedelta(hours=3), until=now)
    await conn.commit()
    hourly = await counts_rollup(conn, granularity="hour", since=now - timedelta(days=1), until=now)
    by_hour = {r.bucket: r.vehicles for r in hourly}
    # 30 reads 2h00..2h29 before noon fall in the 09:00 and 10:00 hours; 5 in the 11:00 hour
    assert by_hour == {now - timedelta(hours=3): 29, now - timedelta(hours=2): 1, now - timedelta(hours=1): 5}
    day = now.replace(hour=0)
    daily = await counts_rollup(conn, granularity="day", since=day, until=day + timedelta(days=1))
    assert [(r.bucket, r.vehicles) for r in daily] == [(day, 35)]


async def test_upsert_counts_writes_absolute_values(conn: AsyncConnection, now: datetime) -> None:
    bucket = now - timedelta(minutes=3)
    rows = [
        CountRow(bucket, "cp-9", "in", "car", "home", 4),
        CountRow(bucket, "cp-9", "out", "car", "home", 2, qr_checkins=1),
    ]
    assert await upsert_counts(conn, rows) == 2
    assert await upsert_counts(conn, rows) == 0
    assert await upsert_counts(conn, [CountRow(bucket, "cp-9", "in", "car", "home", 5)]) == 1
    await conn.commit()
    got = await counts_per_minute(conn, checkpoint_id="cp-9", since=bucket, until=now)
    assert [(r.direction, r.vehicles, r.qr_checkins) for r in got] == [("in", 5, 0.0), ("out", 2, 1.0)]
    hourly = await counts_rollup(conn, granularity="hour", checkpoint_id="cp-9",
                                 since=now - timedelta(hours=1), until=now)
    assert sum(r.vehicles for r in hourly) == 7


def _passage(reads: list[PlateRead], best: PlateRead, status: str) -> PassageRow:
    first, last = reads[0], reads[-1]
    return PassageRow(
        passage_id=uuid.uuid5(first.read_id, "passage"),  # as the worker's: the same while it is rewritten
        camera_id=first.camera_id, checkpoint_id=first.checkpoint_id, lane=0,
        direction=first.direction.value, started_at=first.captured_at, ended_at=last.captured_at,
        text=best.text, display=best.display, confidence=0.99, reads=len(reads), support=len(reads),
        read_ids=[r.read_id for r in reads], best_read_id=best.read_id, status=status)


async def test_frame_cameras_count_passages_not_reads(
    conn: AsyncConnection, make_read: ReadFactory, now: datetime
) -> None:
    """A frame camera stores a read per frame, several per vehicle: its vehicles are its passages
    (counted in the minute each started, class and origin from the best read). An edge camera
    sends one read per vehicle: those count as they are."""
    minute = now - timedelta(minutes=10)

    def frames(text: str, start_s: float, n: int, **kwargs: object) -> list[PlateRead]:
        return [make_read(text, captured_at=minute + timedelta(seconds=start_s + 0.2 * i), **kwargs)
                .model_copy(update={"source": "camera"}) for i in range(n)]

    car = frames("29A11111", 59.5, 5)  # 59.5 s to 60.3 s: one vehicle across two minutes
    # a misread frame says "car"; the best read says truck
    truck = frames("20C22222", 10, 4, vehicle_class="truck", out_of_province=False)
    truck[0] = truck[0].model_copy(update={"vehicle_class": "car"})
    edge = make_read("29A33333", captured_at=minute + timedelta(seconds=20))
    await insert_plate_reads(conn, [*car, *truck, edge])
    await upsert_passages(conn, [_passage(car, car[2], "final"), _passage(truck, truck[1], "provisional")])
    await conn.commit()
    await refresh_counts(conn, since=now - timedelta(minutes=15), until=now)
    await conn.commit()
    rows = await counts_per_minute(conn, since=now - timedelta(hours=1), until=now)
    assert _totals(rows) == {
        (minute, "cp-1", "in", "car", "out_of_province"): (2, 0.0, 0.0),  # the car's passage, the edge read
        (minute, "cp-1", "in", "truck", "home"): (1, 0.0, 0.0),
    }
    # a passage rewritten (more frames joined, final now) is still one vehicle
    await upsert_passages(conn, [_passage(truck, truck[1], "final")])
    await refresh_counts(conn, since=now - timedelta(minutes=15), until=now)
    await conn.commit()
    assert _totals(await counts_per_minute(conn, since=now - timedelta(hours=1), until=now)) == _totals(rows)
    # its vote changing its best read to one of another class moves the vehicle: the old window
    # is emptied, not left at 1 beside the new one (the vehicle counted twice)
    await upsert_passages(conn, [_passage(truck, truck[0], "final")])
    await refresh_counts(conn, since=now - timedelta(minutes=15), until=now)
    await conn.commit()
    moved = {key: n for key, n in _totals(await counts_per_minute(
        conn, since=now - timedelta(hours=1), until=now)).items() if n != (0, 0.0, 0.0)}
    assert moved == {
        (minute, "cp-1", "in", "car", "out_of_province"): (2, 0.0, 0.0),
        (minute, "cp-1", "in", "car", "home"): (1, 0.0, 0.0),
    }


def _at(day: date, hour: int, minute: int, zone: ZoneInfo) -> datetime:
    """A local wall-clock time in ``zone``, as a UTC instant."""
    return datetime.combine(day, time(hour, minute), tzinfo=zone).astimezone(UTC)


@pytest.mark.parametrize("zone_name", ["Asia/Ho_Chi_Minh", "Asia/Tokyo", "Asia/Kolkata"])
async def test_local_days_start_at_local_midnight(
    conn: AsyncConnection, now: datetime, zone_name: str
) -> None:
    """Vehicles 15 minutes either side of a local midnight are counted on two local days, each
    starting at its local midnight (17:00 UTC the day before in Vietnam), though both are in one
    UTC day. Kolkata's days start at half past a UTC hour: an hourly bucket would straddle them."""
    zone = ZoneInfo(zone_name)
    day = now.astimezone(zone).date() - timedelta(days=3)
    late, early = _at(day, 23, 45, zone), _at(day + timedelta(days=1), 0, 15, zone)
    assert late.date() == early.date()  # one UTC day
    await upsert_counts(conn, [CountRow(late, "cp-1", "in", "car", "home", 3),
                               CountRow(early, "cp-1", "in", "car", "home", 5),
                               CountRow(early, "cp-2", "out", "car", "out_of_province", 1)])
    await conn.commit()
    since, until = local_midnight(day, zone), local_midnight(day + timedelta(days=2), zone)
    rows = await counts_per_local_day(conn, zone=zone, since=since, until=until)
    second = local_midnight(day + timedelta(days=1), zone)
    assert _totals(rows) == {
        (since, "cp-1", "in", "car", "home"): (3, 0.0, 0.0),
        (second, "cp-1", "in", "car", "home"): (5, 0.0, 0.0),
        (second, "cp-2", "out", "car", "out_of_province"): (1, 0.0, 0.0),
    }
    assert [r.bucket.astimezone(zone).time() for r in rows] == [time()] * 3
    only_cp1 = await counts_per_local_day(conn, zone=zone, since=since, until=until, checkpoint_id="cp-1")
    assert [(r.bucket, r.vehicles) for r in only_cp1] == [(since, 3), (second, 5)]
    # the daily roll-up keeps UTC days (Grafana reads it): both vehicles on one day
    utc_day = datetime.combine(late.date(), time(), tzinfo=UTC)
    daily = await counts_rollup(conn, granularity="day", checkpoint_id="cp-1",
                                since=utc_day, until=utc_day + timedelta(days=1))
    assert [(r.bucket, r.vehicles) for r in daily] == [(utc_day, 8)]


async def test_local_days_across_a_clock_change(conn: AsyncConnection) -> None:
    """Berlin's 30 March 2025 is 23 hours long: its days still start at local midnight."""
    zone = ZoneInfo("Europe/Berlin")
    first = date(2025, 3, 29)
    days = [first + timedelta(days=i) for i in range(3)]
    await upsert_counts(conn, [CountRow(_at(d, h, 45 if h else 15, zone), "cp-1", "in", "car", "home", n)
                               for n, (d, h) in enumerate(((days[0], 23), (days[1], 0), (days[1], 23),
                                                           (days[2], 0)), start=1)])
    await conn.commit()
    rows = await counts_per_local_day(conn, zone=zone, since=local_midnight(days[0], zone),
                                      until=local_midnight(days[2] + timedelta(days=1), zone))
    assert [(r.bucket, r.vehicles) for r in rows] == [
        (datetime(2025, 3, 28, 23, tzinfo=UTC), 1),   # +01:00
        (datetime(2025, 3, 29, 23, tzinfo=UTC), 5),   # +01:00, then +02:00 from 02:00
        (datetime(2025, 3, 30, 22, tzinfo=UTC), 4),   # +02:00
    ]


@pytest.mark.parametrize(("zone_name", "source"), [
    ("Asia/Ho_Chi_Minh", "hour"), ("UTC", "hour"),
    ("Europe/Berlin", "hour"),                                      # summer time, still whole hours
    ("Asia/Kolkata", "minute"), ("Australia/Lord_Howe", "minute"),  # +05:30; +10:30 and +11:00
])
def test_local_days_are_summed_from_hours_where_hours_tile_them(zone_name: str, source: str) -> None:
    zone = ZoneInfo(zone_name)
    since = local_midnight(date(2025, 1, 1), zone)
    assert local_day_source(zone, since, since + timedelta(days=365)) == source


async def test_late_counts_need_no_aggregate_refresh_with_roll_up_tables(conn: AsyncConnection) -> None:
    """Here ``refresh_counts`` recomputes the roll-up tables with the minutes, however late."""
    await conn.set_autocommit(True)
    old = datetime.now(UTC) - timedelta(days=12)
    assert await refresh_late_rollups(conn, [(old, old + timedelta(minutes=1))], now=datetime.now(UTC)) == []
