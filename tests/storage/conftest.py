"""Storage fixtures on top of ``database_url`` (tests/conftest.py: a fresh, empty
database per test, once in TimescaleDB and once in plain PostgreSQL)."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from psycopg import AsyncConnection

from ioc.embedded.ports import free_port
from ioc.schemas import Direction, PlateCandidate, PlateRead, SensorKind, SensorReading
from ioc.storage.database import Capabilities, connect, detect_capabilities
from ioc.storage.migrations import migrate

# noon today (UTC): test rows a few minutes or hours either side stay on the same day
NOW = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
# where scripts/test-services.sh installs the Timescale-License test server's packages
TSL_SERVER_DIR = Path(__file__).resolve().parents[2] / ".cache" / "tsl-server"


@pytest.fixture(scope="session")
def tsl_url() -> Iterator[str]:
    """A TimescaleDB with Timescale-License features (the clusters built here are Apache-only):
    ``IOC_TEST_TSL_URL`` if set, else the WebAssembly build that tests/storage/tsl_server.mjs
    serves, started here on a free port."""
    if url := os.environ.get("IOC_TEST_TSL_URL"):
        yield url
        return
    node = shutil.which("node")
    if node is None or not (TSL_SERVER_DIR / "node_modules" / "@unni-craftsman" / "pglite").is_dir():
        pytest.skip("no Timescale-License server: scripts/test-services.sh installs one (Node.js, npm)")
    shutil.copy(Path(__file__).with_name("tsl_server.mjs"), TSL_SERVER_DIR / "tsl_server.mjs")
    port = free_port()
    log = (TSL_SERVER_DIR / "server.log").open("w")
    server = subprocess.Popen([node, "tsl_server.mjs"], cwd=TSL_SERVER_DIR, stdout=log,
                              stderr=subprocess.STDOUT, env={**os.environ, "PORT": str(port)})  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not _listening(port):
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Timescale-License test server did not start: see {log.name}")
            time.sleep(0.2)
        yield f"host=127.0.0.1 port={port} user=postgres password=postgres dbname=postgres sslmode=disable"
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


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
