"""Sensor readings (vehicle counters, QR check-ins, environment): idempotent bulk writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import class_row

from ioc.schemas import SensorKind, SensorReading
from ioc.storage.staged_insert import StagedTable, copy_and_insert
from ioc.storage.uncounted_minutes import queue_minutes

__all__ = ["StoredSensorReading", "insert_sensor_readings", "sensor_readings_between"]

_READINGS = StagedTable(
    "sensor_readings",
    [
        ("event_id", "uuid"), ("captured_at", "timestamptz"), ("sensor_id", "text"),
        ("checkpoint_id", "text"), ("sensor_kind", "text"), ("value", "float8"), ("unit", "text"),
        ("direction", "text"), ("vehicle_class", "text"),
    ],
    conflict=["event_id", "captured_at"],
)

_COUNTED = frozenset({SensorKind.VEHICLE_COUNT, SensorKind.QR_CHECKIN})  # what checkpoint counts sum


def _row(reading: SensorReading) -> tuple[object, ...]:
    # the enum fields are StrEnums: psycopg dumps them as the strings they are (their values)
    return (
        reading.event_id, reading.captured_at, reading.sensor_id, reading.checkpoint_id,
        reading.sensor_kind, reading.value, reading.unit, reading.direction, reading.vehicle_class,
    )


async def insert_sensor_readings(conn: AsyncConnection, readings: Sequence[SensorReading]) -> int:
    """Store readings keyed by their ``event_id``; returns how many were new (replays add none).
    The minutes of counts (vehicles, QR check-ins) are queued for recounting."""
    if not readings:
        return 0
    async with conn.transaction():
        new = await copy_and_insert(conn, _READINGS, map(_row, readings))
        await queue_minutes(conn, (r.captured_at for r in readings if r.sensor_kind in _COUNTED))
    return new


@dataclass(frozen=True, slots=True)
class StoredSensorReading:
    event_id: UUID
    captured_at: datetime
    sensor_id: str
    checkpoint_id: str
    sensor_kind: str
    value: float
    unit: str
    direction: str | None
    vehicle_class: str | None


async def sensor_readings_between(
    conn: AsyncConnection, *, checkpoint_id: str, since: datetime, until: datetime, limit: int = 1000
) -> list[StoredSensorReading]:
    """Readings at one checkpoint in ``[since, until)``, newest first."""
    async with conn.cursor(row_factory=class_row(StoredSensorReading)) as cur:
        await cur.execute(
            """SELECT event_id, captured_at, sensor_id, checkpoint_id, sensor_kind, value, unit,
                      direction, vehicle_class
                 FROM sensor_readings
                WHERE checkpoint_id = %s AND captured_at >= %s AND captured_at < %s
                ORDER BY captured_at DESC LIMIT %s""",
            [checkpoint_id, since, until, limit],
        )
        return await cur.fetchall()
