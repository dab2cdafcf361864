"""What tests that run real worker processes share: running an ``ioc`` command, waiting on
database counts, reading a topic back, a worker's metrics, and a known mix of events counted
from end to end; and a producer that keeps what an in-process worker sends.

Importable as ``pipeline_helpers`` from any test (``tests/`` is on the path through its
root conftest), so the pipeline and reliability tests count the same way.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from detectors.jpeg import encode_jpeg
from detectors.synthetic import render_scene
from ioc.config import Settings
from ioc.demo import DemoProcesses, child_env, prepare
from ioc.schemas import (
    CameraFrame,
    Direction,
    EdgePlateRead,
    EdgePlateReadBatch,
    PlateRead,
    SensorKind,
    SensorReading,
    SensorReadingBatch,
    utcnow,
)
from ioc.storage.database import connect

__all__ = [
    "EventMix",
    "Tally",
    "Workers",
    "dead_letters",
    "open_producer",
    "prepared",
    "read_topic",
    "scalar",
    "stored_event_ids",
    "tally",
    "unstored",
    "wait_until_complete",
    "wait_for",
    "worker_metrics",
]


async def scalar(settings: Settings, query: str, params: list | None = None) -> Any:
    """The first column of the first row (None when there is none)."""
    conn = await connect(settings.database_conninfo())
    try:
        cur = await conn.execute(query, params or [])
        row = await cur.fetchone()
        return row[0] if row else None
    finally:
        await conn.close()


def run_ioc(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``ioc ARGS`` as an operator runs it: a process of its own with ``env``, output captured."""
    return subprocess.run([sys.executable, "-m", "ioc", *args], input=stdin, env=env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


async def wait_for(
    settings: Settings, query: str, params: list, want: Any, timeout: float = 120
) -> Any:
    """Poll ``query`` until its value equals ``want`` (or ``want(value)`` is true)."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = await scalar(settings, query, params)
        if (want(value) if callable(want) else value == want):
            return value
        await asyncio.sleep(0.5)
    raise AssertionError(f"timed out waiting for {query!r}: last value {value!r}")


async def read_topic(
    bootstrap: str, topic: str, *, expected: int | None = None, timeout: float = 10.0, idle_s: float = 1.5
) -> list[bytes]:
    """Every message value on ``topic`` from the beginning: until ``expected`` arrived, or
    (without it) until nothing new came for ``idle_s``, or ``timeout``."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)
    await consumer.start()
    values: list[bytes] = []
    try:
        deadline, last_new = time.monotonic() + timeout, time.monotonic()
        while time.monotonic() < deadline:
            if expected is not None and len(values) >= expected:
                break
            if expected is None and time.monotonic() - last_new > idle_s:
                break
            for records in (await consumer.getmany(timeout_ms=300)).values():
                values += [r.value for r in records]
                last_new = time.monotonic()
    finally:
        await consumer.stop()
    return values


async def dead_letters(settings: Settings, expected: int | None = None, timeout: float = 60) -> list[dict]:
    """The dead letters on the settings' dead-letter topic, decoded."""
    raw = await read_topic(settings.kafka_bootstrap or "", settings.topics.dead_letter,
                           expected=expected, timeout=timeout)
    return [json.loads(value) for value in raw]


@contextlib.asynccontextmanager
async def open_producer(bootstrap: str) -> AsyncIterator[AIOKafkaProducer]:
    """A started producer that takes the mix's largest messages (frames)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=8 * 2**20, linger_ms=5)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


async def prepared(settings: Settings) -> Settings:
    """Migrate, create topics, register the mix's camera and watchlist its wanted plate."""
    await prepare(settings, [(WANTED, "pipeline test: stolen")], [(CAMERA, CHECKPOINT)])
    return settings


def worker_metrics(metrics_port: int, prefix: str = "ioc_messages_") -> dict[str, float]:
    """A worker's Prometheus samples whose name starts with ``prefix``, by full series name."""
    text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(prefix):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


@dataclass
class Workers:
    """``ioc worker`` child processes of one test, each with its own web and metrics port.

    ``kill`` sends SIGKILL to one worker by its PID, as a crash would; ``stop`` ends
    the rest with SIGTERM and prints each log's tail (pytest shows it on failure).
    """

    settings: Settings
    log_dir: Path
    procs: DemoProcesses = field(default_factory=DemoProcesses)
    metrics_ports: dict[str, int] = field(default_factory=dict)

    def start(self, name: str) -> None:
        from ioc.embedded.ports import free_port

        web, metrics_port = free_port(), free_port()
        argv = [sys.executable, "-m", "ioc", "worker", "--web-port", str(web),
                "--metrics-port", str(metrics_port)]
        self.procs.start(name, argv, child_env(self.settings), self.log_dir)
        self.metrics_ports[name] = metrics_port

    def pid(self, name: str) -> int:
        return self._proc(name).pid

    def alive(self, name: str) -> bool:
        return self._proc(name).poll() is None

    def kill(self, name: str, how: signal.Signals = signal.SIGKILL) -> None:
        """Send ``name`` the signal ``how`` and wait for it to exit (SIGTERM: a graceful stop)."""
        proc = self._proc(name)
        proc.send_signal(how)
        proc.wait(timeout=60)
        self.procs.children = [(n, p) for n, p in self.procs.children if n != name]

    def log(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def metrics(self, name: str, prefix: str = "ioc_") -> dict[str, float]:
        return worker_metrics(self.metrics_ports[name], prefix)

    def stop(self) -> None:
        self.procs.stop()
        for log in sorted(self.log_dir.glob("*.log")):
            print(f"--- {log.name} (tail)\n" + "\n".join(log.read_text(errors="replace").splitlines()[-40:]))

    def _proc(self, name: str):  # noqa: ANN202 - subprocess.Popen
        for child_name, proc in self.procs.children:
            if child_name == name:
                return proc
        raise KeyError(name)


# --- a known mix of events, counted from the producer to the rows ---

CAMERA, CHECKPOINT = "RL-CP01-CAM1", "RL-CP01"
WANTED = "51F86988"
SENSOR_CHECKPOINT = "RL-CP01"
READS_PER_ENVELOPE = 100
READINGS_PER_ENVELOPE = 50


@cache
def _readable_frame(index: int) -> tuple[str, bytes]:
    """The ``index``-th rendered frame whose plate the recogniser reads exactly (checked
    here once, so a frame that reaches the database as a read can be counted as stored)."""
    from detectors.jpeg import decode_jpeg

    recognizer = _recognizer()
    found, n = -1, 0
    while True:
        plate = f"29K{n:05d}"
        image, _ = render_scene([(plate, "one_line", "white")], rng=np.random.default_rng(n),
                                occlusion=0.0, glare=0.0)
        jpeg = encode_jpeg(image, quality=90)
        if [p.text for p in recognizer.recognize(decode_jpeg(jpeg))] == [plate]:
            found += 1
            if found == index:
                return plate, jpeg
        n += 1


@cache
def _recognizer():  # noqa: ANN202 - detectors.recognizer.PlateRecognizer
    from detectors.recognizer import PlateRecognizer

    return PlateRecognizer.load(home_province="20")


@dataclass
class EventMix:
    """Events produced by a test, remembered so every one can be found again: edge plate
    reads in gateway envelopes (one read per round on the watchlist), sensor readings in
    envelopes, camera frames, and bad messages of every kind that must be dead-lettered.

    Each bad message is unique (a marker in its bytes), so the dead letters can be matched
    to them one to one: a valid event in the dead letter shows up as unexpected.
    """

    settings: Settings
    read_ids: set[uuid.UUID] = field(default_factory=set)
    wanted_read_ids: set[uuid.UUID] = field(default_factory=set)
    reading_ids: set[uuid.UUID] = field(default_factory=set)
    frame_ids: set[uuid.UUID] = field(default_factory=set)
    bad: dict[bytes, str] = field(default_factory=dict)  # payload -> expected reason
    messages: int = 0
    message_events: list[set[uuid.UUID]] = field(default_factory=list)  # per valid message: its ids
    partitions: set[tuple[str, int]] = field(default_factory=set)  # (topic, partition) its messages went to
    _plates: int = 0
    _frames: int = 0

    @property
    def produced(self) -> int:
        """Events: each read, reading and frame, and each bad message (one event each)."""
        return len(self.read_ids) + len(self.reading_ids) + len(self.frame_ids) + len(self.bad)

    async def produce(
        self, producer: AIOKafkaProducer, *, envelopes: int = 10, sensor_envelopes: int = 4, frames: int = 0,
        bad: bool = True,
    ) -> int:
        """Send one round (``envelopes`` x 100 edge reads, ``sensor_envelopes`` x 50 readings,
        ``frames`` frames, the bad messages) and wait for the broker's acks; returns events sent."""
        before = self.produced
        t = self.settings.topics
        sends = []
        for e in range(envelopes):
            reads = []
            for _ in range(READS_PER_ENVELOPE):
                text = WANTED if e == 0 and not reads else f"20A{self._plates:05d}"
                self._plates += text != WANTED
                read = EdgePlateRead(camera_id=CAMERA, checkpoint_id=CHECKPOINT, direction=Direction.IN,
                                     captured_at=utcnow(), text=text, confidence=0.9)
                reads.append(read)
                read_id = PlateRead.derive_id(read.event_id, 0)
                self.read_ids.add(read_id)
                if text == WANTED:
                    self.wanted_read_ids.add(read_id)
            envelope = EdgePlateReadBatch(reads=reads)
            self.message_events.append({PlateRead.derive_id(r.event_id, 0) for r in reads})
            sends.append((t.edge_plate_reads, f"gw{self.messages % 8}", envelope.to_json()))
            self.messages += 1
        for s in range(sensor_envelopes):
            readings = [SensorReading(sensor_id=f"RL-S{s % 4}", checkpoint_id=SENSOR_CHECKPOINT,
                                      sensor_kind=SensorKind.VEHICLE_COUNT, captured_at=utcnow(), value=1.0)
                        for _ in range(READINGS_PER_ENVELOPE)]
            self.reading_ids.update(r.event_id for r in readings)
            self.message_events.append({r.event_id for r in readings})
            sends.append((t.sensor_readings, f"RL-S{s % 4}", SensorReadingBatch(readings=readings).to_json()))
        for _ in range(frames):
            _, jpeg = _readable_frame(self._frames % 8)
            self._frames += 1
            frame = CameraFrame(camera_id=CAMERA, checkpoint_id=CHECKPOINT, direction=Direction.IN,
                                captured_at=utcnow(), jpeg=jpeg)
            self.frame_ids.add(frame.event_id)
            self.message_events.append({frame.event_id})
            sends.append((t.frames, CAMERA, frame.to_json()))
        if bad:
            sends += self._bad_messages()
        futures = [await producer.send(topic, value, key=key.encode()) for topic, key, value in sends]
        self.partitions.update((sent.topic, sent.partition) for sent in await asyncio.gather(*futures))
        return self.produced - before

    async def stream(
        self, producer: AIOKafkaProducer, *, rounds: int, every_s: float, envelopes: int = 2,
        sensor_envelopes: int = 1, bad_every: int = 10, frame_every: int = 10,
    ) -> None:
        """Keep events flowing: ``rounds`` small rounds, one every ``every_s``, bad messages
        and a frame in every ``bad_every``-th / ``frame_every``-th round."""
        for n in range(rounds):
            await self.produce(producer, envelopes=envelopes, sensor_envelopes=sensor_envelopes,
                               frames=int(n % frame_every == 0), bad=n % bad_every == 0)
            await asyncio.sleep(every_s)

    def snapshot(self) -> EventMix:
        """What was produced so far (to time the catch-up on the events before a moment)."""
        return EventMix(self.settings, set(self.read_ids), set(self.wanted_read_ids), set(self.reading_ids),
                        set(self.frame_ids), dict(self.bad), self.messages, list(self.message_events),
                        set(self.partitions))

    def _bad_messages(self) -> list[tuple[str, str, bytes]]:
        t, marker = self.settings.topics, uuid.uuid4().hex
        edge = EdgePlateRead(camera_id=CAMERA, checkpoint_id=CHECKPOINT, direction=Direction.OUT,
                             captured_at=utcnow(), text="HELLO", confidence=0.9)
        stranger = edge.model_copy(update={"camera_id": f"NOBODY-{marker[:8]}", "text": "20A99999"})
        future = json.loads(edge.to_json()) | {"schema_version": 2, "text": "20A12345"}
        reading = SensorReading(sensor_id="RL-S9", checkpoint_id=SENSOR_CHECKPOINT,
                                sensor_kind=SensorKind.VEHICLE_COUNT, captured_at=utcnow(), value=1.0)
        bad_kind = json.loads(reading.to_json()) | {"sensor_kind": f"nonsense-{marker[:8]}"}
        frame = CameraFrame(camera_id=CAMERA, checkpoint_id=CHECKPOINT, direction=Direction.IN,
                            captured_at=utcnow(), jpeg=f"not a jpeg {marker}".encode())
        messages = [
            (t.edge_plate_reads, f'{{"camera_id": "{marker}'.encode(), "bad_json"),
            (t.edge_plate_reads, edge.to_json(), "invalid_event"),
            (t.edge_plate_reads, stranger.to_json(), "unknown_camera"),
            (t.edge_plate_reads, json.dumps(future).encode(), "unknown_schema_version"),
            (t.sensor_readings, f"[{marker}".encode(), "bad_json"),
            (t.sensor_readings, json.dumps(bad_kind).encode(), "invalid_event"),
            (t.frames, frame.to_json(), "undecodable_image"),
        ]
        self.bad.update({payload: reason for _, payload, reason in messages})
        return [(topic, CAMERA, payload) for topic, payload, _ in messages]


@dataclass
class Tally:
    """What became of an :class:`EventMix`: events stored (distinct rows), dead-lettered
    (distinct source messages), lost (neither) and duplicated (rows or letters twice)."""

    produced: int
    stored: int
    dead_lettered: int
    duplicated_rows: int
    duplicated_letters: int
    missing: dict[str, int]
    unexpected_letters: list[tuple[str, str]]
    wrong_reasons: list[tuple[str, str, str]]
    alerts: int
    sightings: int | None

    @property
    def lost(self) -> int:
        return self.produced - self.stored - self.dead_lettered

    @property
    def complete(self) -> bool:
        return self.lost == 0

    def figures(self) -> dict[str, int]:
        """The counts ``reliability_record`` takes."""
        return {"produced": self.produced, "stored": self.stored, "dead_lettered": self.dead_lettered,
                "lost": self.lost, "duplicated": self.duplicated_rows,
                "dead_letters_repeated": self.duplicated_letters}

    def assert_exact(self) -> None:
        """Every event stored or dead-lettered once; only the bad ones dead-lettered."""
        assert not self.unexpected_letters, f"valid events dead-lettered: {self.unexpected_letters[:5]}"
        assert not self.wrong_reasons, f"dead-lettered for the wrong reason: {self.wrong_reasons}"
        assert self.duplicated_rows == 0, f"{self.duplicated_rows} rows stored twice"
        assert self.lost == 0 and not any(self.missing.values()), f"lost {self.lost}: {self.missing}"
        assert self.produced == self.stored + self.dead_lettered


async def _stored(settings: Settings) -> tuple[Counter, Counter, Counter]:
    """How often each edge read id, sensor reading id and frame id is in the database."""
    async def ids(query: str) -> Counter:
        async with await connect(settings.database_conninfo()) as conn:
            cur = await conn.execute(query)
            return Counter(row[0] for row in await cur.fetchall())

    return (await ids("SELECT read_id FROM plate_reads WHERE source = 'edge'"),
            await ids("SELECT event_id FROM sensor_readings"),
            await ids("SELECT source_event_id FROM plate_reads WHERE source = 'camera'"))


async def stored_event_ids(settings: Settings) -> set[uuid.UUID]:
    """The ids :class:`EventMix` knows its events by, of every event in the database."""
    reads, readings, frames = await _stored(settings)
    return set(reads) | set(readings) | set(frames)


async def unstored(settings: Settings, mix: EventMix) -> int:
    """Valid events of ``mix`` not (yet) in the database."""
    return len((mix.read_ids | mix.reading_ids | mix.frame_ids) - await stored_event_ids(settings))


async def tally(settings: Settings, mix: EventMix, *, letters_timeout: float = 5.0) -> Tally:
    """Count ``mix`` in the database and on the dead-letter topic."""
    reads, readings, frames = await _stored(settings)
    stored_reads = mix.read_ids & reads.keys()
    stored_readings = mix.reading_ids & readings.keys()
    stored_frames = mix.frame_ids & frames.keys()
    duplicated = sum(n - 1 for n in (reads + readings + frames).values() if n > 1)

    letters = await dead_letters(settings, timeout=letters_timeout)
    by_position: dict[tuple[str, int, int], dict] = {}
    for letter in letters:
        by_position.setdefault((letter["source_topic"], letter["partition"], letter["offset"]), letter)
    lettered: set[bytes] = set()
    valid_lettered: set[uuid.UUID] = set()
    unexpected, wrong = [], []
    for letter in by_position.values():
        payload = base64.b64decode(letter["payload"])
        if payload not in mix.bad:
            unexpected.append((letter["reason"], letter["error"][:200]))
            valid_lettered |= _event_ids(payload)
        elif mix.bad[payload] != letter["reason"]:
            wrong.append((mix.bad[payload], letter["reason"], letter["error"][:200]))
        else:
            lettered.add(payload)

    alerts, sightings = 0, None
    if mix.wanted_read_ids:
        async with await connect(settings.database_conninfo()) as conn:
            cur = await conn.execute(
                "SELECT count(*), max((evidence->>'sightings')::int) FROM alerts"
                " WHERE kind = 'watchlist_hit' AND subject = %s", [WANTED])
            row = await cur.fetchone()
            if row and row[0]:  # the opening sighting is not in evidence.sightings until a second one
                alerts, sightings = int(row[0]), row[1] or 1
    stored_ids = stored_reads | stored_readings | stored_frames
    wrongly_lettered = valid_lettered & ((mix.read_ids | mix.reading_ids | mix.frame_ids) - stored_ids)
    return Tally(
        produced=mix.produced,
        stored=len(stored_ids),
        dead_lettered=len(lettered) + len(wrongly_lettered),
        duplicated_rows=duplicated,
        duplicated_letters=len(letters) - len(by_position),
        missing={"edge reads": len(mix.read_ids - stored_reads),
                 "sensor readings": len(mix.reading_ids - stored_readings),
                 "frames": len(mix.frame_ids - stored_frames),
                 "bad messages": len(mix.bad.keys() - lettered)},
        unexpected_letters=unexpected,
        wrong_reasons=wrong,
        alerts=alerts,
        sightings=sightings,
    )


def _event_ids(payload: bytes) -> set[uuid.UUID]:
    """The ids :class:`EventMix` knows the events of a valid message by (a wrongly
    dead-lettered one still counts as dead-lettered, not as lost)."""
    for model, ids in (
        (EdgePlateReadBatch, lambda m: {PlateRead.derive_id(r.event_id, 0) for r in m.reads}),
        (SensorReadingBatch, lambda m: {r.event_id for r in m.readings}),
        (CameraFrame, lambda m: {m.event_id}),
    ):
        try:
            return ids(model.model_validate_json(payload))
        except ValueError:
            continue
    return set()


async def wait_until_complete(
    settings: Settings, mix: EventMix, *, timeout: float = 120, poll_s: float = 0.5,
    workers: Workers | None = None, since: float | None = None,
) -> tuple[Tally, float]:
    """Wait until nothing of ``mix`` is missing; returns the :func:`tally` and the seconds
    from ``since`` (``time.monotonic()``; default: now) until the database held every
    valid event (polled every ``poll_s``; the slower dead-letter count is taken only
    then). With ``workers``, a worker that exited on its own fails the wait at once."""
    started = time.monotonic() if since is None else since
    deadline = time.monotonic() + timeout
    valid = mix.read_ids | mix.reading_ids | mix.frame_ids
    while True:
        if workers is not None:
            workers.procs.check_alive()
        if valid <= await stored_event_ids(settings) or time.monotonic() > deadline:
            waited = time.monotonic() - started
            counted = await tally(settings, mix, letters_timeout=2.0)
            if counted.complete or time.monotonic() > deadline:
                return counted, waited
        await asyncio.sleep(poll_s)


class KeepingProducer:
    """Stands in for a worker's Kafka producer in a test: takes every message, keeping its value
    in ``sent``."""

    def __init__(self, sent: list[bytes]) -> None:
        self.sent = sent

    async def send(self, topic: str, key: bytes, value: bytes, *_: object) -> asyncio.Future:
        self.sent.append(value)
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done
