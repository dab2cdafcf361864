"""Retention drops old reads by whole days (chunks or partitions), keeps alerts longer (with
their own copies of their reads' crops), never touches the audit log, and logs every run."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import psycopg
import pytest
from psycopg import AsyncConnection

from ioc.schemas import Alert, AlertKind, PlateRead, SensorReading, Severity
from ioc.storage.alerts import alert_crop, insert_alerts
from ioc.storage.audit import append_audit
from ioc.storage.database import Capabilities
from ioc.storage.partitions import ensure_partitions, partition_name
from ioc.storage.plate_reads import get_crop, insert_plate_reads
from ioc.storage.retention import run_retention
from ioc.storage.sensor_readings import insert_sensor_readings


async def _count(conn: AsyncConnection, table: str) -> int:
    row = await (await conn.execute(f"SELECT count(*) FROM {table}")).fetchone()
    return row[0]


def _alert(raised_at: datetime, read: PlateRead | None = None) -> Alert:
    return Alert(alert_id=uuid.uuid4(), alert_kind=AlertKind.WATCHLIST_HIT, severity=Severity.WARNING,
                 subject="30A12345", raised_at=raised_at, captured_at=read.captured_at if read else None,
                 read_id=read.read_id if read else None)


async def test_old_data_goes_recent_stays_and_the_run_is_logged(
    conn: AsyncConnection,
    caps: Capabilities,
    make_read: Callable[..., PlateRead],
    make_reading: Callable[..., SensorReading],
    now: datetime,
) -> None:
    days_ago = [45, 40, 31, 29, 2, 0]
    reads = [make_read(f"30A{d:05d}", captured_at=now - timedelta(days=d), crop=b"\xff\xd8jpg")
             for d in days_ago]
    await insert_plate_reads(conn, reads)
    await insert_sensor_readings(conn, [make_reading(captured_at=now - timedelta(days=d)) for d in days_ago])
    await insert_alerts(conn, [_alert(now - timedelta(days=d)) for d in (400, 300, 1)])
    await append_audit(conn, actor="officer1", role="officer", action="plate_lookup", query={},
                       purpose="case 1", result_count=0)
    for d in (31, 29):
        at, read_id = now - timedelta(days=d), reads[0].read_id
        await conn.execute(
            "INSERT INTO passages (passage_id, camera_id, checkpoint_id, lane, direction, started_at,"
            " ended_at, text, display, confidence, reads, support, read_ids, best_read_id, status)"
            " VALUES (%s, 'cam-1', 'cp-1', 0, 'in', %s, %s, '30A12345', '30A-123.45', 0.9, 1, 1, %s, %s,"
            " 'final')",
            [uuid.uuid4(), at, at, [read_id], read_id])
    if not caps.timescaledb:
        # give part of the history day partitions, leave the rest in DEFAULT: both paths must work
        await ensure_partitions(conn, now, since=now - timedelta(days=41))
    await conn.commit()

    result = await run_retention(conn, caps, read_days=30, alert_days=365, now=now)
    await conn.commit()

    kept = await (await conn.execute("SELECT text FROM plate_reads ORDER BY captured_at")).fetchall()
    assert [t for (t,) in kept] == ["30A00029", "30A00002", "30A00000"]
    assert await _count(conn, "plate_crops") == 3
    assert await _count(conn, "sensor_readings") == 3
    assert await _count(conn, "alerts") == 2
    assert await _count(conn, "audit_log") == 1
    assert result.read_cutoff == now - timedelta(days=30)
    assert result.layout == caps.layout
    if caps.timescaledb:
        assert len(result.dropped["plate_reads"]) == 3  # one chunk per day
    else:
        day = partition_name("plate_reads", (now - timedelta(days=40)).date())
        assert day in result.dropped["plate_reads"]
        assert result.deleted["plate_reads"] == 1  # the 45-day-old read, from DEFAULT
    assert result.deleted["alerts"] == 1
    assert result.deleted["passages"] == 1 and await _count(conn, "passages") == 1

    logged = await (await conn.execute(
        "SELECT run_id, layout, dropped, deleted FROM retention_runs")).fetchall()
    assert logged == [(result.run_id, caps.layout, result.dropped, result.deleted)]

    again = await run_retention(conn, caps, read_days=30, alert_days=365, now=now)
    assert not any(again.dropped.values()) and not any(again.deleted.values())
    assert await _count(conn, "retention_runs") == 2


async def test_an_alert_shows_its_crop_after_its_read_is_gone_until_it_goes_itself(
    conn: AsyncConnection,
    caps: Capabilities,
    make_read: Callable[..., PlateRead],
    now: datetime,
) -> None:
    """Reads and their crops go after the read period, alerts after the alert period: an alert
    keeps its evidence, its own copy of the read's crop, exactly as long as it is kept."""
    old = make_read(captured_at=now - timedelta(days=40), crop=b"\xff\xd8forty")
    older = make_read(captured_at=now - timedelta(days=400), crop=b"\xff\xd8four hundred")
    await insert_plate_reads(conn, [old, older])
    kept, expired = _alert(old.captured_at, old), _alert(older.captured_at, older)
    await insert_alerts(conn, [kept, expired])
    await conn.commit()

    await run_retention(conn, caps, read_days=30, alert_days=365, now=now)
    await conn.commit()
    assert await _count(conn, "plate_reads") == 0 and await get_crop(conn, old.read_id) is None
    assert await alert_crop(conn, kept.alert_id) == b"\xff\xd8forty"
    assert await alert_crop(conn, expired.alert_id) is None
    assert await _count(conn, "alert_evidence") == 1

    await run_retention(conn, caps, read_days=30, alert_days=30, now=now)
    await conn.commit()
    assert await _count(conn, "alerts") == 0
    assert await alert_crop(conn, kept.alert_id) is None and await _count(conn, "alert_evidence") == 0


async def test_retention_creates_partitions_ahead(
    conn: AsyncConnection, caps: Capabilities, now: datetime
) -> None:
    later = now + timedelta(days=20)
    await run_retention(conn, caps, read_days=30, alert_days=365, now=later)
    await conn.commit()
    if caps.timescaledb:
        return  # chunks are created on demand
    ahead = partition_name("plate_reads", (later + timedelta(days=7)).date())
    row = await (await conn.execute("SELECT to_regclass(%s) IS NOT NULL", [ahead])).fetchone()
    assert row[0]


async def test_partitions_ahead_stay_when_a_later_step_fails(
    conn: AsyncConnection, caps: Capabilities, now: datetime
) -> None:
    """Partition creation is committed on its own: a drop or delete that fails afterwards (a
    lock timeout, here a refusing trigger) must not take the future partitions back."""
    await conn.execute(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE 'refused'; END $$")
    await conn.execute("CREATE TRIGGER refuse BEFORE DELETE ON alerts FOR EACH ROW EXECUTE FUNCTION refuse()")
    await insert_alerts(conn, [_alert(now - timedelta(days=400))])
    await conn.commit()
    later = now + timedelta(days=20)
    with pytest.raises(psycopg.errors.RaiseException):
        await run_retention(conn, caps, read_days=30, alert_days=365, now=later)
    await conn.rollback()
    assert await _count(conn, "retention_runs") == 0
    assert await _count(conn, "alerts") == 1
    if caps.timescaledb:
        return  # chunks are created on demand
    ahead = partition_name("plate_reads", (later + timedelta(days=7)).date())
    row = await (await conn.execute("SELECT to_regclass(%s) IS NOT NULL", [ahead])).fetchone()
    assert row[0]
