"""Storage fixtures on top of ``database_url`` (tests/conftest.py: a fresh, empty
database per test, once in TimescaleDB and once in plain PostgreSQL)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest
from psycopg import AsyncConnection

from ioc.schemas import Direction, PlateCandidate, PlateRead, SensorKind, SensorReading
from ioc.storage.database import Capabilities, connect, detect_capabilities
from ioc.storage.migrations import migrate

# noon today (UTC): test rows a few minutes or hours either side stay on the same day
NOW = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)


@pytest.fixture
async def migrated_url(database_url: str) -> str:
    await migrate(database_url)
    return database_url


@pytest.fixture
async def conn(migrated_url: str) -> AsyncIterator[AsyncConnection]:
    connection = await connect(migrated_url)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
async def caps(conn: AsyncConnection) -> Capabilities:
    capabilities = await detect_capabilities(conn)
    await conn.commit()
    return capabilities


_serial = itertools.count()


def _make_read(
    text: str = "30A12345",
    *,
    captured_at: datetime | None = None,
    camera_id: str = "cam-1",
    checkpoint_id: str = "cp-1",
    direction: Direction = Direction.IN,
    crop: bytes | None = None,
    out_of_province: bool | None = True,
    vehicle_class: str = "car",
) -> PlateRead:
    """A plate read with a deterministic id derived from a fresh source event."""
    source_event_id = uuid.uuid4()
    return PlateRead(
        read_id=PlateRead.derive_id(source_event_id, 0),
        source="edge",
        source_event_id=source_event_id,
        camera_id=camera_id,
        checkpoint_id=checkpoint_id,
        direction=direction,
        captured_at=captured_at or NOW - timedelta(seconds=next(_serial)),
        text=text,
        display=text,
        confidence=0.93,
        province=text[:2],
        out_of_province=out_of_province,
        bbox=(10, 20, 110, 60),
        candidates=[PlateCandidate(text=text, confidence=0.93),
                    PlateCandidate(text="30A12346", confidence=0.05)],
        vehicle_class=vehicle_class,
        crop_jpeg=crop,
    )


def _make_reading(
    kind: SensorKind = SensorKind.VEHICLE_COUNT,
    *,
    value: float = 1.0,
    captured_at: datetime | None = None,
    checkpoint_id: str = "cp-1",
    direction: Direction | None = Direction.IN,
) -> SensorReading:
    return SensorReading(
        sensor_id=f"{checkpoint_id}-{kind.value}",
        checkpoint_id=checkpoint_id,
        sensor_kind=kind,
        captured_at=captured_at or NOW,
        value=value,
        direction=direction,
        vehicle_class="car" if kind == SensorKind.VEHICLE_COUNT else None,
    )


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture
def make_read() -> Callable[..., PlateRead]:
    return _make_read


@pytest.fixture
def make_reading() -> Callable[..., SensorReading]:
    return _make_reading
