"""Traffic simulator: realistic checkpoint traffic for demos, tests and benchmarks.

A fixed population of vehicles (mostly home-province plates, some from
elsewhere, a few on the watchlist) passes camera checkpoints in both
directions. Camera checkpoints send JPEG frames of rendered plates (one to
three frames per passage); edge checkpoints send on-camera plate reads.
Counters, QR check-in points and environmental sensors send readings.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from aiokafka import AIOKafkaProducer

from detectors import plate_format
from detectors.jpeg import encode_jpeg
from detectors.synthetic import render_scene
from ioc.config import Settings
from ioc.schemas import (
    CameraFrame,
    Direction,
    EdgePlateRead,
    PlateCandidate,
    SensorKind,
    SensorReading,
    VehicleClass,
    utcnow,
)

logger = logging.getLogger(__name__)

__all__ = ["Camera", "TrafficSimulator", "Vehicle", "build_cameras", "build_population"]

_LAYOUT_WEIGHTS = {"one_line": 0.45, "two_line": 0.2, "motorbike": 0.35}
_OUT_OF_PROVINCE_SHARE = 0.35
_NEARBY_PROVINCES = ("29", "30", "98", "99", "97", "22", "19", "88", "51", "14")


@dataclass(frozen=True)
class Vehicle:
    plate: str
    layout: str
    colour: str
    vehicle_class: VehicleClass


@dataclass(frozen=True)
class Camera:
    camera_id: str
    checkpoint_id: str
    direction: Direction
    lane: int
    edge: bool  # recognises on the device and sends reads instead of frames


@dataclass
class SimulationStats:
    sent: Counter = field(default_factory=Counter)


def build_population(rng: random.Random, size: int, home_province: str) -> list[Vehicle]:
    np_rng = np.random.default_rng(rng.randrange(2**32))
    vehicles = []
    for _ in range(size):
        layout = rng.choices(list(_LAYOUT_WEIGHTS), weights=list(_LAYOUT_WEIGHTS.values()))[0]
        province = (
            rng.choice(_NEARBY_PROVINCES) if rng.random() < _OUT_OF_PROVINCE_SHARE else home_province
        )
        text = plate_format.random_plate_text(np_rng, layout=layout, province=province)
        colour = rng.choices(["white", "yellow", "blue"], weights=[0.8, 0.17, 0.03])[0]
        if layout == "motorbike":
            colour, vclass = "white", VehicleClass.MOTORBIKE
        else:
            vclass = rng.choices(
                [VehicleClass.CAR, VehicleClass.TRUCK, VehicleClass.BUS], weights=[0.8, 0.15, 0.05]
            )[0]
        vehicles.append(Vehicle(text, layout, colour, vclass))
    return vehicles


def build_cameras(checkpoints: int) -> list[Camera]:
    """Two cameras per checkpoint (one per direction); every third checkpoint is edge ANPR."""
    cameras = []
    for i in range(1, checkpoints + 1):
        checkpoint = f"TN-CP{i:02d}"
        for lane, direction in enumerate((Direction.IN, Direction.OUT)):
            cameras.append(
                Camera(f"{checkpoint}-CAM{lane + 1}", checkpoint, direction, lane, edge=i % 3 == 0)
            )
    return cameras


class TrafficSimulator:
    def __init__(
        self,
        settings: Settings,
        *,
        population: int = 400,
        watchlist_share: float = 0.05,
        seed: int | None = None,
    ) -> None:
        self.settings = settings
        self.rng = random.Random(seed if seed is not None else settings.simulator_seed)
        self._np_rng = np.random.default_rng(self.rng.randrange(2**32))
        home = plate_format.home_codes(settings.home_province)[0]
        self.vehicles = build_population(self.rng, population, home)
        self.cameras = build_cameras(settings.simulator_checkpoints)
        wanted = max(1, int(len(self.vehicles) * watchlist_share))
        self.watchlisted = self.rng.sample(self.vehicles, wanted)
        self.stats = SimulationStats()
        self._producer: AIOKafkaProducer | None = None

    # --- event builders (pure; also used by tests and benchmarks) ---

    def frame_event(self, vehicle: Vehicle, camera: Camera) -> CameraFrame:
        image, _ = render_scene(
            [(vehicle.plate, vehicle.layout, vehicle.colour)],
            size=(1280, 720),
            rng=self._np_rng,
            night=self.rng.random() < 0.2,
        )
        return CameraFrame(
            camera_id=camera.camera_id,
            checkpoint_id=camera.checkpoint_id,
            lane=camera.lane,
            direction=camera.direction,
            captured_at=utcnow(),
            jpeg=encode_jpeg(image, quality=80),
            width=image.shape[1],
            height=image.shape[0],
        )

    def edge_read_event(self, vehicle: Vehicle, camera: Camera) -> EdgePlateRead:
        confidence = round(self.rng.uniform(0.8, 0.99), 3)
        return EdgePlateRead(
            camera_id=camera.camera_id,
            checkpoint_id=camera.checkpoint_id,
            lane=camera.lane,
            direction=camera.direction,
            captured_at=utcnow(),
            text=plate_format.display(vehicle.plate),
            confidence=confidence,
            candidates=[PlateCandidate(text=vehicle.plate, confidence=confidence)],
            vehicle_class=vehicle.vehicle_class,
        )

    def sensor_events(self) -> list[SensorReading]:
        now = utcnow()
        checkpoint = self.rng.choice(self.cameras).checkpoint_id
        direction = self.rng.choice(list(Direction))
        return [
            SensorReading(
                sensor_id=f"{checkpoint}-LOOP-{direction.value}",
                checkpoint_id=checkpoint,
                sensor_kind=SensorKind.VEHICLE_COUNT,
                captured_at=now,
                value=self.rng.randint(0, 12),
                direction=direction,
                vehicle_class=self.rng.choice([VehicleClass.CAR, VehicleClass.MOTORBIKE]),
            ),
            SensorReading(
                sensor_id=f"{checkpoint}-QR-{self.rng.randint(1, 40):03d}",
                checkpoint_id=checkpoint,
                sensor_kind=SensorKind.QR_CHECKIN,
                captured_at=now,
                value=self.rng.randint(0, 5),
                direction=Direction.IN,
            ),
            SensorReading(
                sensor_id=f"{checkpoint}-ENV",
                checkpoint_id=checkpoint,
                sensor_kind=SensorKind.ENVIRONMENT,
                captured_at=now,
                value=round(self.rng.gauss(32.0, 3.0), 1),
                unit="pm2.5",
            ),
        ]

    def next_vehicle(self) -> Vehicle:
        if self.rng.random() < 0.1:
            return self.rng.choice(self.watchlisted)
        return self.rng.choice(self.vehicles)

    # --- sending ---

    async def _send(self, topic: str, key: str, payload: bytes, kind: str) -> None:
        assert self._producer is not None
        await self._producer.send(topic, key=key.encode(), value=payload)
        self.stats.sent[kind] += 1

    async def _frames_loop(self, deadline: float | None) -> None:
        t = self.settings.topics
        cameras = [c for c in self.cameras if not c.edge]
        rate = self.settings.simulator_frames_per_s
        while not _past(deadline) and rate > 0 and cameras:
            vehicle, camera = self.next_vehicle(), self.rng.choice(cameras)
            frames = self.rng.choice((1, 2, 3))  # several frames of one passage
            for _ in range(frames):
                event = await asyncio.to_thread(self.frame_event, vehicle, camera)
                await self._send(t.frames, camera.camera_id, event.to_json(), "frames")
                await asyncio.sleep(1.0 / rate)

    async def _edge_loop(self, deadline: float | None) -> None:
        t = self.settings.topics
        cameras = [c for c in self.cameras if c.edge] or self.cameras
        rate = self.settings.simulator_edge_reads_per_s
        while not _past(deadline) and rate > 0:
            camera = self.rng.choice(cameras)
            event = self.edge_read_event(self.next_vehicle(), camera)
            await self._send(t.edge_plate_reads, camera.camera_id, event.to_json(), "edge_reads")
            await asyncio.sleep(1.0 / rate)

    async def _sensor_loop(self, deadline: float | None) -> None:
        t = self.settings.topics
        rate = self.settings.simulator_sensor_per_s
        while not _past(deadline) and rate > 0:
            for event in self.sensor_events():
                await self._send(t.sensor_readings, event.sensor_id, event.to_json(), "sensor")
            await asyncio.sleep(3.0 / rate)

    async def run(self, *, duration: float | None = None) -> SimulationStats:
        """Send traffic until ``duration`` seconds have passed (forever if None)."""
        loop = asyncio.get_running_loop()
        deadline = None if duration is None else loop.time() + duration
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            linger_ms=5,
            max_request_size=4 * 1024 * 1024,
            acks="all",
        )
        await self._producer.start()
        try:
            await asyncio.gather(
                self._frames_loop(deadline), self._edge_loop(deadline), self._sensor_loop(deadline)
            )
            await self._producer.flush()
        finally:
            await self._producer.stop()
        logger.info("simulator sent %s", dict(self.stats.sent))
        return self.stats


def _past(deadline: float | None) -> bool:
    return deadline is not None and asyncio.get_running_loop().time() >= deadline


