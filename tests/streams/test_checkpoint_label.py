"""The ``checkpoint`` label of ``ioc_checkpoint_vehicles_total`` comes from the camera registry, not
from the producer's payload: a gateway that writes junk into ``checkpoint_id`` must not make a
series per junk value. Reads stored through the real sink on a real database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP
from prometheus_client import REGISTRY
from psycopg_pool import AsyncConnectionPool

from ioc.schemas import Direction, EdgePlateRead, PlateRead, utcnow
from ioc.storage.cameras import Camera, list_cameras, upsert_camera
from ioc.storage.database import connect, open_pool
from ioc.storage.migrations import migrate
from ioc.storage.passages import PassageRow
from streams.checkpoint_vehicles import count_final_passages
from streams.live_passages import LivePassages
from streams.plate_read_sink import store_reads
from streams.reads import read_from_edge

on_postgres = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)

CAMERA, CHECKPOINT = "LBL-CP01-CAM1", "LBL-CP01"


@dataclass
class _Context:
    """A worker's context as far as storing reads goes; the reads' topic and incidents aside."""

    _pool: AsyncConnectionPool
    passages: LivePassages = field(default_factory=LivePassages)
    published: list[Any] = field(default_factory=list)

    async def pool(self) -> AsyncConnectionPool:
        return self._pool

    async def cameras(self) -> dict[str, Camera]:
        async with self._pool.connection() as conn:
            return {camera.camera_id: camera for camera in await list_cameras(conn)}

    async def dead_letter_refused(self, batch: Any, rejected: list[Any]) -> set[int]:
        assert not rejected
        return set()

    @staticmethod
    async def earlier_batches_done() -> None:
        return None

    async def send_plate_reads(self, batch: list[Any]) -> None:
        self.published.extend(batch)


class _NoWatchlist:
    async def ready(self) -> None:
        return None

    def matches(self, read: PlateRead) -> list[Any]:
        return []


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[AsyncConnectionPool]:
    await migrate(database_url)
    async with await connect(database_url) as conn:
        await upsert_camera(conn, CAMERA, CHECKPOINT)
        await conn.commit()
    opened = await open_pool(database_url, min_size=1, max_size=2)
    try:
        yield opened
    finally:
        await opened.close()


def _read(camera_id: str, checkpoint_id: str, text: str) -> PlateRead:
    edge = EdgePlateRead(camera_id=camera_id, checkpoint_id=checkpoint_id, direction=Direction.IN,
                         captured_at=utcnow(), text=text, confidence=0.95)
    return read_from_edge(edge, home_province="20")


def _vehicles(checkpoint: str) -> float:
    labels = [{"checkpoint": checkpoint, "direction": "in", "origin": o} for o in ("home", "out_of_province")]
    return sum(REGISTRY.get_sample_value("ioc_checkpoint_vehicles_total", each) or 0.0 for each in labels)


@on_postgres
async def test_a_checkpoint_the_registry_does_not_give_the_camera_is_counted_as_unknown(
    pool: AsyncConnectionPool,
) -> None:
    junk = f"junk-{uuid.uuid4().hex}"  # a gateway bug: a fresh value in every message
    reads = [
        _read(CAMERA, CHECKPOINT, "20A11111"),  # as registered
        _read(CAMERA, junk, "20A22222"),  # the camera is registered at another checkpoint
        _read("LBL-NOWHERE-CAM9", junk, "20A33333"),  # accepted unregistered (require_known_cameras off)
    ]
    before = {label: _vehicles(label) for label in (CHECKPOINT, "unknown", junk)}
    message = SimpleNamespace(tp=TP("camera-frames", 0))  # what the sink reads of a Faust message
    refused = await store_reads(_Context(pool), _NoWatchlist(), [(message, reads)])  # type: ignore[arg-type]
    assert refused == set()
    after = {label: _vehicles(label) for label in before}
    assert after[CHECKPOINT] - before[CHECKPOINT] == 1
    assert after["unknown"] - before["unknown"] == 2
    assert after[junk] == 0, "a checkpoint from the payload made a series of its own"
    async with pool.connection() as conn:
        stored = await (await conn.execute("SELECT count(*) FROM plate_reads")).fetchone()
    assert stored == (3,), "the reads themselves are stored as sent"


def _passage(checkpoint_id: str, text: str, status: str) -> PassageRow:
    now = utcnow()
    read_id = uuid.uuid4()
    return PassageRow(passage_id=uuid.uuid4(), camera_id=CAMERA, checkpoint_id=checkpoint_id, lane=0,
                      direction="in", started_at=now, ended_at=now, text=text, display=text, confidence=0.9,
                      reads=5, support=5, read_ids=[read_id], best_read_id=read_id, status=status)


def test_a_frame_cameras_vehicle_is_its_final_passage_not_its_reads() -> None:
    """The counter counted every frame's read: five frames of one car were five vehicles."""
    camera = Camera(camera_id=CAMERA, checkpoint_id=CHECKPOINT, expected_interval_s=60.0, look_closer=None,
                    last_seen=None, online=None, updated_at=utcnow())
    junk = f"junk-{uuid.uuid4().hex}"
    origin = {"home": _origin_count("home"), "out": _origin_count("out_of_province")}
    before = {label: _vehicles(label) for label in (CHECKPOINT, "unknown")}
    rows = [_passage(CHECKPOINT, "20A11111", "provisional"), _passage(CHECKPOINT, "20A11111", "final"),
            _passage(CHECKPOINT, "29A22222", "final"), _passage(junk, "20A33333", "final")]
    count_final_passages(rows, {CAMERA: camera}, home_province="20")
    assert _vehicles(CHECKPOINT) - before[CHECKPOINT] == 2
    assert _vehicles("unknown") - before["unknown"] == 1 and _vehicles(junk) == 0
    assert _origin_count("home") - origin["home"] == 2
    assert _origin_count("out_of_province") - origin["out"] == 1


def _origin_count(origin: str) -> float:
    return sum(REGISTRY.get_sample_value("ioc_checkpoint_vehicles_total",
                                         {"checkpoint": c, "direction": "in", "origin": origin}) or 0.0
               for c in (CHECKPOINT, "unknown"))
