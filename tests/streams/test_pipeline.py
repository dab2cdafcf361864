"""The whole pipeline on real parts: Tansu broker, a real Faust worker process,
PostgreSQL with TimescaleDB, the real recogniser."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from aiokafka import AIOKafkaProducer
from pipeline_helpers import dead_letters, read_topic, run_ioc, scalar, wait_for, worker_metrics

from detectors.jpeg import encode_jpeg
from detectors.synthetic import render_scene
from ioc.config import Settings
from ioc.demo import DemoProcesses, child_env, prepare
from ioc.schemas import CameraFrame, DeadLetter, Direction, EdgePlateRead, EdgePlateReadBatch, utcnow
from ioc.storage.cameras import upsert_camera
from ioc.storage.database import connect
from streams.agents import counts
from streams.app import create_app
from streams.context import UNKNOWN_CAMERA_RECHECK_S

pytestmark = pytest.mark.integration

WANTED = "51F86988"
CAMERA, CHECKPOINT = "IT-CP01-CAM1", "IT-CP01"
STREET_CAMERA, STREET = "IT-ST01-CAM1", "IT-ST01"


@pytest.fixture
def settings_overrides(request: pytest.FixtureRequest) -> dict:
    """Further settings for one test (``indirect`` parametrisation); none by default."""
    return getattr(request, "param", {})


@pytest.fixture
async def settings(settings_factory, settings_overrides: dict) -> Settings:
    # envelopes of 100 reads: the messages an agent takes are stored in several batches
    s = settings_factory(recognition_threads=1, sink_batch_seconds=0.05, sink_batch_events=250,
                         topic_partitions=4, **settings_overrides)
    await prepare(s, [(WANTED, "integration test: stolen")], [(CAMERA, CHECKPOINT)])
    return s


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[DemoProcesses]:
    procs = DemoProcesses()
    procs.start("worker", [sys.executable, "-m", "ioc", "worker"], child_env(settings), tmp_path)
    yield procs
    procs.stop()
    for log in tmp_path.glob("*.log"):
        print(f"--- {log.name} (tail)\n" + "\n".join(log.read_text().splitlines()[-40:]))


@pytest.fixture
async def producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, max_request_size=8 * 2**20)
    await p.start()
    yield p
    await p.stop()


def _frame(plate: str, layout: str = "one_line") -> CameraFrame:
    image, _ = render_scene([(plate, layout, "white")], rng=np.random.default_rng(5),
                            occlusion=0.0, glare=0.0)
    return CameraFrame(camera_id=CAMERA, checkpoint_id=CHECKPOINT, direction=Direction.IN,
                       captured_at=utcnow(), jpeg=encode_jpeg(image, quality=90))


async def _send_edge_envelopes(
    producer: AIOKafkaProducer, topic: str, plates: list[str], *, key: Callable[[int], bytes],
    at: datetime | None = None,
) -> None:
    """``plates`` as gateway envelopes of 100 edge reads, captured ``at`` (default: now); ``key``
    gets each envelope's first index."""
    for start in range(0, len(plates), 100):
        batch = EdgePlateReadBatch(reads=[
            EdgePlateRead(camera_id=CAMERA, checkpoint_id=CHECKPOINT, direction=Direction.IN,
                          captured_at=at or utcnow(), text=p, confidence=0.9)
            for p in plates[start:start + 100]
        ])
        await producer.send(topic, batch.to_json(), key=key(start))
    await producer.flush()


async def _alerts_through_api(settings: Settings, workdir: Path) -> list[dict]:
    """The watchlist alerts as an operator sees them, from a real ``ioc api`` process."""
    import httpx

    from ioc.api.security import Principal, issue_token
    from ioc.storage.users import create_user

    async with await connect(settings.database_conninfo()) as conn:
        await create_user(conn, "it-operator", "operator", "a long enough passphrase")
        await conn.commit()
    token = issue_token(Principal("it-operator", "operator"), secret=settings.auth_secret.get_secret_value(),
                        ttl_s=300)
    api = DemoProcesses()
    api.start("api", [sys.executable, "-m", "ioc", "api"], child_env(settings), workdir)
    try:
        url = f"http://{settings.api_host}:{settings.api_port}"
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}) as client:
            for _ in range(100):
                try:
                    response = await client.get("/api/alerts", params={"kind": "watchlist_hit"})
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.2)
            assert response.status_code == 200, response.text
            return response.json()["data"]
    finally:
        api.stop()


async def test_frame_becomes_read_and_alert_and_bad_input_is_dead_lettered(
    settings: Settings, worker: DemoProcesses, producer: AIOKafkaProducer, tmp_path: Path
) -> None:
    t = settings.topics
    frame = _frame(WANTED)
    await producer.send_and_wait(t.frames, frame.to_json(), key=CAMERA.encode())
    # bad input of every kind: not JSON, an image that is not one, an unknown camera,
    # an impossible plate from an edge camera, a future schema version
    await producer.send_and_wait(t.frames, b'{"camera_id": "IT', key=CAMERA.encode())
    broken = frame.model_copy(update={"event_id": uuid.uuid4(), "jpeg": b"definitely not a jpeg"})
    await producer.send_and_wait(t.frames, broken.to_json(), key=CAMERA.encode())
    stranger = frame.model_copy(update={"event_id": uuid.uuid4(), "camera_id": "NOBODY-CAM9"})
    await producer.send_and_wait(t.frames, stranger.to_json(), key=b"NOBODY-CAM9")
    edge = EdgePlateRead(camera_id=CAMERA, checkpoint_id=CHECKPOINT, direction=Direction.OUT,
                         captured_at=utcnow(), text="HELLO", confidence=0.9)
    await producer.send_and_wait(t.edge_plate_reads, edge.to_json(), key=CAMERA.encode())
    future = json.loads(edge.to_json()) | {"schema_version": 2, "text": "20A12345"}
    await producer.send_and_wait(t.edge_plate_reads, json.dumps(future).encode(), key=CAMERA.encode())

    source = await wait_for(settings, "SELECT source FROM plate_reads WHERE text = %s", [WANTED], "camera")
    assert source == "camera"
    alert_subject = await wait_for(
        settings, "SELECT subject FROM alerts WHERE kind = 'watchlist_hit' AND subject = %s",
        [WANTED], WANTED,
    )
    assert alert_subject == WANTED
    alert = (await _alerts_through_api(settings, tmp_path))[0]
    assert alert["subject"] == WANTED and alert["evidence"]["match_kind"] == "exact"

    letters = await dead_letters(settings, expected=5)
    reasons = sorted(letter["reason"] for letter in letters)
    assert reasons == sorted(
        ["bad_json", "undecodable_image", "unknown_camera", "invalid_event", "unknown_schema_version"]
    )
    bad = next(letter for letter in letters if letter["reason"] == "bad_json")
    import base64

    assert base64.b64decode(bad["payload"]) == b'{"camera_id": "IT'
    assert bad["source_topic"] == t.frames

    # every message taken in was either stored or dead-lettered, per topic
    metrics = worker_metrics(settings.worker_metrics_port)
    for topic in (t.frames, t.edge_plate_reads):
        consumed = metrics.get(f'ioc_messages_consumed_total{{topic="{topic}"}}', 0)
        stored = metrics.get(f'ioc_messages_stored_total{{topic="{topic}"}}', 0)
        dead = sum(v for k, v in metrics.items()
                   if k.startswith("ioc_messages_dead_lettered_total") and f'topic="{topic}"' in k)
        assert consumed == stored + dead, (topic, consumed, stored, dead)
    assert worker.children[0][1].poll() is None, "bad input must not stop the worker"


async def test_a_message_stamped_in_nanoseconds_is_stored_and_stops_nothing(
    settings: Settings, worker: DemoProcesses, producer: AIOKafkaProducer
) -> None:
    """Kafka before 4.0 takes any message timestamp: a gateway writing nanoseconds where Kafka wants
    milliseconds stamps its envelopes tens of millions of years ahead, past what a datetime holds.
    Such an envelope was dead-lettered whole (``processing_error``: camera health read the time),
    and the agent's loop ended as it noted the take processed. Its reads are stored, and what
    follows on the partition too."""
    t = settings.topics
    plates = [f"20D{n:05d}" for n in range(5)]
    stamped = EdgePlateReadBatch(reads=[
        EdgePlateRead(camera_id=CAMERA, checkpoint_id=CHECKPOINT, direction=Direction.IN,
                      captured_at=utcnow(), text=plate, confidence=0.9)
        for plate in plates[:4]])
    sent = await producer.send_and_wait(t.edge_plate_reads, stamped.to_json(), key=b"gw-ns",
                                        timestamp_ms=time.time_ns())
    assert sent.timestamp > 10**18, "the broker keeps the producer's timestamp"
    query = "SELECT array_agg(text ORDER BY text) FROM plate_reads"
    await wait_for(settings, query, [], plates[:4], timeout=60)
    # the agent goes on: the next message of the partition, sent once the first was taken, is stored
    after = EdgePlateRead(camera_id=CAMERA, checkpoint_id=CHECKPOINT, direction=Direction.IN,
                          captured_at=utcnow(), text=plates[4], confidence=0.9)
    await producer.send_and_wait(t.edge_plate_reads, after.to_json(), key=b"gw-ns")
    await wait_for(settings, query, [], plates, timeout=60)

    topic, deadline = t.edge_plate_reads, time.monotonic() + 10
    while True:  # the counters move just after the rows are committed
        metrics = worker_metrics(settings.worker_metrics_port)
        consumed = metrics.get(f'ioc_messages_consumed_total{{topic="{topic}"}}', 0)
        stored = metrics.get(f'ioc_messages_stored_total{{topic="{topic}"}}', 0)
        dead = sum(v for k, v in metrics.items()
                   if k.startswith("ioc_messages_dead_lettered_total") and f'topic="{topic}"' in k)
        if (consumed, stored, dead) == (2, 2, 0) or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert (consumed, stored, dead) == (2, 2, 0), "taken in = stored + dead-lettered, none dead-lettered"
    assert worker.children[0][1].poll() is None


@pytest.fixture
async def street_camera(settings: Settings) -> str:
    """A street camera registered to look closer at every frame (before the worker starts)."""
    async with await connect(settings.database_conninfo()) as conn:
        await upsert_camera(conn, STREET_CAMERA, STREET, look_closer="always")
        await conn.commit()
    return STREET_CAMERA


async def test_each_camera_is_looked_at_as_closely_as_it_is_registered_to_be(
    settings: Settings, street_camera: str, worker: DemoProcesses, producer: AIOKafkaProducer
) -> None:
    """The same frame, a near car read sure beside a far motorbike, from two cameras: the street
    camera registered with ``look_closer=always`` reads both plates; the checkpoint camera,
    registered without a setting, follows the worker's (``unsure``: a sure read stops the closer
    look) and reads the near one only."""
    rng = np.random.default_rng(2)
    near, _ = render_scene([("51F86988", "one_line", "white")], size=(640, 720), rng=rng, style="test",
                           occlusion=0.0, glare=0.0, plate_scale=2.0)  # fmt: skip
    far, _ = render_scene([("29X504899", "motorbike", "white")], size=(640, 720), rng=rng, style="test",
                          occlusion=0.0, glare=0.0, plate_scale=0.9)  # fmt: skip
    jpeg = encode_jpeg(np.ascontiguousarray(np.hstack([near, far])), quality=90)
    for camera, checkpoint in ((CAMERA, CHECKPOINT), (street_camera, STREET)):
        frame = CameraFrame(camera_id=camera, checkpoint_id=checkpoint, direction=Direction.IN,
                            captured_at=utcnow(), jpeg=jpeg)
        await producer.send_and_wait(settings.topics.frames, frame.to_json(), key=camera.encode())
    query = "SELECT string_agg(text, ' ' ORDER BY text) FROM plate_reads WHERE camera_id = %s"
    assert await wait_for(settings, query, [street_camera], "29X504899 51F86988")
    assert await wait_for(settings, query, [CAMERA], "51F86988")


async def test_a_camera_registered_while_the_worker_runs_is_taken_at_once(
    settings: Settings, worker: DemoProcesses, producer: AIOKafkaProducer
) -> None:
    """Workers keep the camera registry in memory and re-read it every few seconds; a frame
    from a camera registered since the last read must not be dead-lettered as unknown."""
    query = "SELECT count(*) FROM plate_reads WHERE camera_id = %s"
    frame = _frame(WANTED)
    await producer.send_and_wait(settings.topics.frames, frame.to_json(), key=CAMERA.encode())
    assert await wait_for(settings, query, [CAMERA], 1)  # the worker has read the registry
    await asyncio.sleep(UNKNOWN_CAMERA_RECHECK_S)  # frames come on: not a flood of them
    async with await connect(settings.database_conninfo()) as conn:
        await upsert_camera(conn, STREET_CAMERA, STREET)
        await conn.commit()
    newcomer = frame.model_copy(update={"event_id": uuid.uuid4(), "camera_id": STREET_CAMERA,
                                        "checkpoint_id": STREET})
    await producer.send_and_wait(settings.topics.frames, newcomer.to_json(), key=STREET_CAMERA.encode())
    assert await wait_for(settings, query, [STREET_CAMERA], 1, timeout=60)
    metrics = worker_metrics(settings.worker_metrics_port)
    assert not any(k.startswith("ioc_messages_dead_lettered_total") and v for k, v in metrics.items())


async def test_an_envelope_naming_an_unregistered_camera_keeps_the_reads_of_the_registered_ones(
    settings: Settings, worker: DemoProcesses, producer: AIOKafkaProducer
) -> None:
    """A gateway's envelope holds reads of a registered camera and of one not registered yet: the
    registered camera's reads are stored (and matched) at once, the envelope is dead-lettered for
    the other, and replayed once it is registered, which stores only what was left out."""
    t = settings.topics
    sightings = ((CAMERA, CHECKPOINT, WANTED), (STREET_CAMERA, STREET, "29A12345"))
    envelope = EdgePlateReadBatch(reads=[
        EdgePlateRead(camera_id=camera, checkpoint_id=checkpoint, direction=Direction.IN,
                      captured_at=utcnow(), text=text, confidence=0.9)
        for camera, checkpoint, text in sightings])
    await producer.send_and_wait(t.edge_plate_reads, envelope.to_json(), key=b"gw-mixed")
    query = "SELECT string_agg(text, ' ' ORDER BY text) FROM plate_reads"
    assert await wait_for(settings, query, [], WANTED)
    (letter,) = await dead_letters(settings, expected=1)
    assert (letter["reason"], letter["error"]) == ("unknown_camera", STREET_CAMERA)
    async with await connect(settings.database_conninfo()) as conn:
        await upsert_camera(conn, STREET_CAMERA, STREET)
        await conn.commit()
    replayed = run_ioc(child_env(settings), "dead-letters", "replay", "--reason", "unknown_camera",
                       "--key", "gw-mixed")
    assert replayed.returncode == 0, replayed.stderr
    assert await wait_for(settings, query, [], f"29A12345 {WANTED}")


async def test_dead_letters_are_replayed_once_their_cause_is_fixed(
    settings: Settings, worker: DemoProcesses, producer: AIOKafkaProducer
) -> None:
    """A frame from a camera not yet registered is dead-lettered; once the camera is registered,
    ``ioc dead-letters replay`` sends it back and it is read. Letters it cannot replay (a payload
    cut to the size limit, another deployment's topic) are counted, not sent."""
    t = settings.topics
    frame = _frame(WANTED).model_copy(update={"camera_id": STREET_CAMERA, "checkpoint_id": STREET})
    await producer.send_and_wait(t.frames, frame.to_json(), key=STREET_CAMERA.encode())
    (letter,) = await dead_letters(settings, expected=1)
    assert (letter["reason"], letter["payload_truncated"]) == ("unknown_camera", False)
    unfit = [DeadLetter(source_topic=t.frames, key=STREET_CAMERA.encode(), reason="unknown_camera",
                        error=STREET_CAMERA, payload=frame.to_json()[:100], payload_truncated=True),
             DeadLetter(source_topic="elsewhere.camera-frames", key=STREET_CAMERA.encode(),
                        reason="unknown_camera", error=STREET_CAMERA, payload=frame.to_json())]  # fmt: skip
    for unfit_letter in unfit:
        await producer.send_and_wait(t.dead_letter, unfit_letter.model_dump_json().encode(),
                                     key=unfit_letter.key)
    async with await connect(settings.database_conninfo()) as conn:
        await upsert_camera(conn, STREET_CAMERA, STREET)
        await conn.commit()

    env = child_env(settings)
    listed = run_ioc(env, "dead-letters", "list", "--reason", "unknown_camera")
    assert [line.split("\t")[3] for line in listed.stdout.splitlines()[1:]] == [STREET_CAMERA] * 3
    replayed = run_ioc(env, "dead-letters", "replay", "--reason", "unknown_camera", "--key", STREET_CAMERA)
    assert replayed.returncode == 1 and "sent 1 of 3 chosen" in replayed.stdout, replayed.stderr
    assert "1 letters whose payload was cut" in replayed.stderr and "1 letters from topics" in replayed.stderr
    query = "SELECT string_agg(text, ' ') FROM plate_reads WHERE camera_id = %s"
    assert await wait_for(settings, query, [STREET_CAMERA], WANTED)

    # a letter whose cause is not fixed fails again: sent once, dead-lettered anew past the end the
    # replay read to, and not sent again (a replay that read to the topic's end would never stop)
    stranger = frame.model_copy(update={"camera_id": "ST09-CAM9", "event_id": uuid.uuid4()})
    await producer.send_and_wait(t.frames, stranger.to_json(), key=b"ST09-CAM9")
    await dead_letters(settings, expected=4)
    again = run_ioc(env, "dead-letters", "replay", "--reason", "unknown_camera", "--key", "ST09-CAM9")
    assert again.returncode == 0 and "sent 1 of 1 chosen" in again.stdout, again.stderr
    await dead_letters(settings, expected=5)
    listed = run_ioc(env, "dead-letters", "list", "--key", "ST09-CAM9").stdout.splitlines()[1:]
    assert [line.split("\t")[3] for line in listed] == ["ST09-CAM9"] * 2


async def test_a_gateways_reads_reach_the_plate_reads_topic_in_the_order_sent(
    settings: Settings, worker: DemoProcesses, producer: AIOKafkaProducer
) -> None:
    """Envelopes taken together are stored in overlapping batches of 250 reads; what the
    topic carries for one key still comes in the order it was sent."""
    t = settings.topics
    plates = [f"20A{n:05d}" for n in range(2000)]
    await _send_edge_envelopes(producer, t.edge_plate_reads, plates, key=lambda _: b"gw-ordered")

    values = await read_topic(settings.kafka_bootstrap, t.plate_reads, expected=len(plates) // 100,
                              timeout=120)
    published = [read["text"] for value in values for read in json.loads(value)["reads"]]
    assert published == plates


async def test_events_without_ids_are_stored_once_however_often_they_are_sent(
    settings: Settings, worker: DemoProcesses, producer: AIOKafkaProducer
) -> None:
    """Clients that send no ``event_id`` (it is optional) still get idempotent storage: a
    gateway's retry of an envelope, or a replay, must not store its reads twice."""
    t = settings.topics
    reads = [{"camera_id": CAMERA, "checkpoint_id": CHECKPOINT, "direction": "in", "text": f"20B{n:05d}",
              "captured_at": utcnow().isoformat(), "confidence": 0.9} for n in range(50)]
    envelope = json.dumps({"reads": reads}).encode()
    for _ in range(3):
        await producer.send_and_wait(t.edge_plate_reads, envelope, key=b"gw-without-ids")
    await producer.send_and_wait(t.edge_plate_reads, envelope, key=b"gw-without-ids-elsewhere")
    # a marker sent last, on the first key: once it is stored, everything before it was handled
    marker = EdgePlateRead(camera_id=CAMERA, checkpoint_id=CHECKPOINT, direction=Direction.IN,
                           captured_at=utcnow(), text="20C99999", confidence=0.9)
    await producer.send_and_wait(t.edge_plate_reads, marker.to_json(), key=b"gw-without-ids")
    await wait_for(settings, "SELECT count(*) FROM plate_reads WHERE text = %s", ["20C99999"], 1)
    await wait_for(settings, "SELECT count(*) FROM plate_reads", [], len(reads) + 1, timeout=60)
    metrics = worker_metrics(settings.worker_metrics_port)
    consumed = metrics.get(f'ioc_messages_consumed_total{{topic="{t.edge_plate_reads}"}}', 0)
    assert consumed == 5
    assert await scalar(settings, "SELECT count(*) FROM plate_reads") == len(reads) + 1


CODECS = ("gzip", "snappy", "lz4", "zstd")


@pytest.mark.parametrize("database_url", ["timescaledb"], indirect=True)
@pytest.mark.parametrize("settings_overrides", [{"producer_compression": "zstd"}], indirect=True)
async def test_compressed_batches_are_read_and_published(settings: Settings, worker: DemoProcesses) -> None:
    """Gateways built on other Kafka clients compress their batches (librdkafka and the Java
    client offer all four codecs); the worker reads each, and publishes compressed if told to."""
    t = settings.topics
    plates = {codec: [f"20A{i}{n:04d}" for n in range(100)] for i, codec in enumerate(CODECS, start=1)}
    for codec in CODECS:
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, compression_type=codec)
        await producer.start()
        try:
            await _send_edge_envelopes(producer, t.edge_plate_reads, plates[codec],
                                       key=lambda _, codec=codec: codec.encode())
        finally:
            await producer.stop()

    assert create_app(settings).conf.producer_compression_type == "zstd"  # publishes compressed
    everything = sorted(p for batch in plates.values() for p in batch)
    await wait_for(settings, "SELECT count(*) FROM plate_reads", [], len(everything), timeout=120)
    stored = await scalar(settings, "SELECT array_agg(text ORDER BY text) FROM plate_reads")
    assert stored == everything
    values = await read_topic(settings.kafka_bootstrap, t.plate_reads, timeout=60)
    published = sorted(read["text"] for value in values for read in json.loads(value)["reads"])
    assert published == everything
    assert worker.children[0][1].poll() is None


@pytest.mark.parametrize("database_url", ["timescaledb"], indirect=True)
async def test_sigkilled_worker_loses_and_duplicates_nothing(
    settings: Settings, worker: DemoProcesses, producer: AIOKafkaProducer, tmp_path: Path
) -> None:
    t = settings.topics
    plates = [f"20A{n:05d}" for n in range(3000)]
    await _send_edge_envelopes(producer, t.edge_plate_reads, plates,
                               key=lambda start: f"gw{start % 4}".encode())
    # kill the worker mid-stream: once it has stored something, its next writes are held on a
    # lock, so it dies with batches taken and not committed (what the restart must replay)
    async with await connect(settings.database_conninfo()) as holder:
        while not await scalar(settings, "SELECT count(*) > 0 FROM plate_reads"):
            await asyncio.sleep(0.05)
        await holder.execute("LOCK TABLE plate_reads IN EXCLUSIVE MODE")
        at_kill = (await (await holder.execute("SELECT count(*) FROM plate_reads")).fetchone())[0]
        assert 0 < at_kill < len(plates), f"{at_kill} stored before the kill: nothing left to replay"
        await asyncio.sleep(1.0)  # the worker's next batch waits on the lock
        _sigkill(worker)
        await holder.rollback()
    worker.start("worker-restarted", [sys.executable, "-m", "ioc", "worker"], child_env(settings), tmp_path)

    await wait_for(settings, "SELECT count(DISTINCT text) FROM plate_reads", [], len(plates), timeout=180)
    await asyncio.sleep(3)  # anything replayed after the last new row would show up as a duplicate
    assert await scalar(settings, "SELECT count(*) FROM plate_reads") == len(plates)
    # the count windows hold every read exactly once, whichever worker stored it and refreshed
    # its minutes (the restarted worker's first refresh sweeps what the killed one left)
    await wait_for(settings, "SELECT coalesce(sum(vehicles), 0)::int FROM checkpoint_counts"
                   " WHERE checkpoint_id = %s", [CHECKPOINT], len(plates), timeout=60)


@pytest.mark.parametrize("database_url", ["timescaledb"], indirect=True)
async def test_late_reads_stored_just_before_a_crash_are_counted_after_the_restart(
    settings: Settings, worker: DemoProcesses, producer: AIOKafkaProducer, tmp_path: Path
) -> None:
    """The minutes a worker stored were kept in its memory until its next refresh (every 10 s): a
    worker killed in between lost them, and the restarted worker's sweep reaches back 15 minutes,
    so late reads (a camera's backlog, uploaded after an outage) stayed uncounted for good. The
    minutes are now queued in the database with the reads, and taken off by the refresh."""
    plates = [f"20B{n:05d}" for n in range(300)]
    async with await connect(settings.database_conninfo()) as holder:
        await holder.execute("LOCK TABLE checkpoint_counts IN EXCLUSIVE MODE")  # every refresh waits
        await _send_edge_envelopes(producer, settings.topics.edge_plate_reads, plates, key=lambda _: b"gw",
                                   at=utcnow() - timedelta(hours=2))
        await wait_for(settings, "SELECT count(*)::int FROM plate_reads", [], len(plates), timeout=60)
        await asyncio.sleep(counts.REFRESH_EVERY_S + 1)  # the refresh of those minutes waits too
        _sigkill(worker)
        await holder.rollback()
    worker.start("worker-restarted", [sys.executable, "-m", "ioc", "worker"], child_env(settings), tmp_path)
    await wait_for(settings, "SELECT coalesce(sum(vehicles), 0)::int FROM checkpoint_counts"
                   " WHERE checkpoint_id = %s", [CHECKPOINT], len(plates), timeout=60)


def _sigkill(worker: DemoProcesses) -> None:
    """Kill the worker process as the kernel's OOM killer would: nothing of it runs after."""
    _, proc = worker.children[0]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    worker.children.clear()
