"""Faults on the real pipeline: a Tansu broker, ``ioc worker`` processes and PostgreSQL
with TimescaleDB, fed a known mix of events (edge read envelopes with one watchlist hit
each round, sensor reading envelopes, camera frames, bad messages of every kind).

Each test counts every event produced against rows stored plus messages dead-lettered:
the difference must be zero, no row may be stored twice, and only the bad messages may
be dead-lettered. Why these faults: delivery is at-least-once from Kafka to PostgreSQL
(offsets committed after the database commit, idempotent writes), and each fault below
attacks one half of that promise.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import psycopg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import KafkaError
from pipeline_helpers import (
    WANTED,
    EventMix,
    Tally,
    Workers,
    open_producer,
    prepared,
    read_topic,
    scalar,
    stored_event_ids,
    tally,
    unstored,
    wait_for,
    wait_until_complete,
)

from ioc.config import Settings
from ioc.embedded.broker import EmbeddedBroker
from ioc.embedded.postgres import EmbeddedPostgres
from ioc.schemas import Direction, EdgePlateRead, utcnow
from ioc.storage.cameras import upsert_camera
from ioc.storage.database import connect
from streams.topics import topic_specs

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("database_url", ["timescaledb"], indirect=True),
]

STREAM = {"rounds": 24, "every_s": 0.25}  # 24 x (200 reads + 50 readings), 6 s; bad and frames every 10th
HELD = "24 rounds over 6 s of 2 edge envelopes (100 reads) + 1 sensor envelope (50 readings), " \
       "a frame and 7 bad messages every 10th round, on 4 partitions"
SETTLE_S = 3.0  # after the last new row: time for a late replay to show up as a duplicate


async def _warm_up(settings: Settings, mix: EventMix, producer: AIOKafkaProducer, group: Workers) -> float:
    """One round through freshly started workers; returns the seconds until all of it is in."""
    await mix.produce(producer, envelopes=2, sensor_envelopes=1, frames=1, bad=True)
    counted, waited = await wait_until_complete(settings, mix, timeout=90, workers=group)
    counted.assert_exact()
    return waited


async def _final(settings: Settings, mix: EventMix, *, timeout: float = 120) -> Tally:
    """Wait until every event is accounted for, give replays time to show, count again."""
    counted, _ = await wait_until_complete(settings, mix, timeout=timeout)
    if counted.complete:
        await asyncio.sleep(SETTLE_S)
        counted = await tally(settings, mix)
    return counted


def _record_fault(record: Callable[..., None], fault: str, counted: Tally, in_flight: int, recovery_s: float,
                  *, held: str = HELD) -> None:
    record(area="fault", held=held, fault=fault, **counted.figures(), unstored_at_fault=in_flight,
           recovery_s=round(recovery_s, 1))


def _assert_nothing_lost(counted: Tally, mix: EventMix) -> None:
    """Every event stored or dead-lettered exactly once, the wanted plate one incident."""
    counted.assert_exact()
    _assert_incident(counted, mix)


def _assert_incident(counted: Tally, mix: EventMix) -> None:
    """All watchlist hits of the plate are one incident that counts each sighting once."""
    assert counted.alerts == 1, f"{counted.alerts} incidents for one wanted plate"
    assert counted.sightings == len(mix.wanted_read_ids), (counted.sightings, len(mix.wanted_read_ids))


async def _rows(settings: Settings) -> int:
    return int(await scalar(settings, "SELECT (SELECT count(*) FROM plate_reads)"
                                      " + (SELECT count(*) FROM sensor_readings)"))


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
async def test_stopped_worker_restarted(
    settings: Settings, workers: Callable[[Settings], Workers], producer: AIOKafkaProducer,
    reliability_record: Callable[..., None], how: signal.Signals,
) -> None:
    """A worker SIGKILLed (a crash) or SIGTERMed (a rolling restart) while events flow, then a
    new worker process: the events it had taken but not committed are replayed, and idempotent
    writes absorb the replay. A graceful stop dead-letters nothing it was still working on."""
    group = workers(settings)
    group.start("worker-1")
    mix = EventMix(settings)
    await _warm_up(settings, mix, producer, group)

    stream = asyncio.create_task(mix.stream(producer, **STREAM))
    await asyncio.sleep(2.0)
    in_flight = await unstored(settings, mix)
    group.kill("worker-1", how)
    await asyncio.sleep(1.0)
    restarted, backlog = time.monotonic(), mix.snapshot()
    group.start("worker-2")
    await stream
    caught_up, recovery_s = await wait_until_complete(settings, backlog, since=restarted, workers=group)

    counted = await _final(settings, mix)
    _record_fault(reliability_record, f"worker {how.name}ed mid-stream, restarted 1 s later",
                  counted, in_flight, recovery_s)
    assert caught_up.complete
    _assert_nothing_lost(counted, mix)


async def test_survivor_takes_over_sigkilled_workers_partitions(
    settings: Settings, workers: Callable[[Settings], Workers], producer: AIOKafkaProducer,
    reliability_record: Callable[..., None],
) -> None:
    """Two workers in one group; one is SIGKILLed mid-stream and not restarted: the
    survivor is given its partitions and replays what the dead one had not committed."""
    group = workers(settings)
    group.start("worker-1")
    group.start("worker-2")
    mix = EventMix(settings)
    await _warm_up(settings, mix, producer, group)
    await mix.produce(producer, envelopes=8, sensor_envelopes=4, bad=False)  # 8 gateway keys: all partitions
    (await wait_until_complete(settings, mix, timeout=60, workers=group))[0].assert_exact()
    for name in ("worker-1", "worker-2"):
        consumed = sum(v for k, v in group.metrics(name, "ioc_messages_consumed_total").items())
        assert consumed > 0, f"{name} was given no partition: the takeover would prove nothing"

    stream = asyncio.create_task(mix.stream(producer, **STREAM))
    await asyncio.sleep(2.0)
    in_flight = await unstored(settings, mix)
    killed, backlog = time.monotonic(), mix.snapshot()
    group.kill("worker-1")
    await stream
    caught_up, recovery_s = await wait_until_complete(settings, backlog, since=killed, workers=group)

    counted = await _final(settings, mix)
    _record_fault(reliability_record,
                  "1 of 2 workers SIGKILLed mid-stream, not restarted (survivor takes over)", counted,
                  in_flight, recovery_s, held=HELD + ", 2 workers")
    assert caught_up.complete
    _assert_nothing_lost(counted, mix)
    assert group.alive("worker-2")


async def test_database_stopped_for_30_s(
    fault_settings: Callable[..., Settings], own_cluster: EmbeddedPostgres,
    workers: Callable[[Settings], Workers], reliability_record: Callable[..., None],
) -> None:
    """PostgreSQL stopped for 30 s while events flow: the worker backs off and retries
    (nothing acknowledged, so nothing committed), then stores everything once."""
    settings = await prepared(fault_settings(database_url=own_cluster.create_database("faults")))
    group = workers(settings)
    group.start("worker-1")
    mix = EventMix(settings)
    async with open_producer(settings.kafka_bootstrap or "") as producer:
        await _warm_up(settings, mix, producer, group)
        stream = asyncio.create_task(mix.stream(producer, **STREAM))
        await asyncio.sleep(1.5)
        in_flight = await unstored(settings, mix)
        own_cluster.stop_server()
        stopped = time.monotonic()
        await stream
        await asyncio.sleep(30.0 - (time.monotonic() - stopped))
        assert group.alive("worker-1"), "the worker exited while the database was down"
        own_cluster.start_server()
        started, outage_s = time.monotonic(), time.monotonic() - stopped
        _, recovery_s = await wait_until_complete(settings, mix, since=started, workers=group)
        counted = await _final(settings, mix)

    _record_fault(reliability_record, f"database stopped {outage_s:.0f} s mid-stream",
                  counted, in_flight, recovery_s)
    assert "database unavailable" in group.log("worker-1"), "the outage never reached the worker"
    _assert_nothing_lost(counted, mix)
    assert group.alive("worker-1")


HEALTH_CHECKPOINT = "RL-HEALTH"
HEALTH_INTERVAL_S = 4.0  # each camera sends every 0.5 s; the outage lasts well over this


async def test_cameras_heard_through_a_database_outage_are_not_judged_offline(
    fault_settings: Callable[..., Settings], own_cluster: EmbeddedPostgres,
    workers: Callable[[Settings], Workers],
) -> None:
    """Cameras go on sending while PostgreSQL is stopped for 12 s, three times the interval they
    are expected to be heard within: their events wait in Kafka, and none is judged offline once
    it is back. Before, every camera went offline at the first check after the outage and back
    online as the backlog drained. A camera that stopped sending when the outage began is still
    judged offline, once the backlog shows it silent."""
    settings = await prepared(fault_settings(database_url=own_cluster.create_database("health")))
    sending = [f"RL-HEALTH-CAM{i}" for i in range(6)]
    silenced = "RL-HEALTH-SILENCED"
    async with await connect(settings.database_conninfo()) as conn:
        for camera_id in [*sending, silenced]:
            await upsert_camera(conn, camera_id, HEALTH_CHECKPOINT, expected_interval_s=HEALTH_INTERVAL_S)
        await conn.commit()
    group = workers(settings)
    group.start("worker-1")
    outage = asyncio.Event()

    async def send(producer: AIOKafkaProducer, stop: asyncio.Event) -> None:
        plate = 0
        while not stop.is_set():
            for camera_id in sending if outage.is_set() else [*sending, silenced]:
                plate += 1
                read = EdgePlateRead(camera_id=camera_id, checkpoint_id=HEALTH_CHECKPOINT,
                                     direction=Direction.IN, captured_at=utcnow(), text=f"20B{plate:05d}",
                                     confidence=0.9)  # fmt: skip
                await producer.send_and_wait(settings.topics.edge_plate_reads, read.to_json(),
                                             key=camera_id.encode())  # fmt: skip
            await asyncio.sleep(0.5)

    kinds = "SELECT count(*) FROM alerts WHERE kind = %s AND subject = ANY(%s)"
    async with open_producer(settings.kafka_bootstrap or "") as producer:
        stop = asyncio.Event()
        sender = asyncio.create_task(send(producer, stop))
        try:
            seen = "SELECT count(*) FROM cameras WHERE last_seen IS NOT NULL AND camera_id = ANY(%s)"
            await wait_for(settings, seen, [[*sending, silenced]], len(sending) + 1, timeout=90)
            outage.set()
            own_cluster.stop_server()
            await asyncio.sleep(3 * HEALTH_INTERVAL_S)
            own_cluster.start_server()
            await wait_for(settings, kinds, ["camera_offline", [silenced]], 1, timeout=90)
            await asyncio.sleep(2 * HEALTH_INTERVAL_S)  # checks after the backlog: still none offline
        finally:
            stop.set()
            await sender
    assert "database unavailable" in group.log("worker-1"), "the outage never reached the worker"
    assert await scalar(settings, kinds, ["camera_offline", sending]) == 0
    assert await scalar(settings, kinds, ["camera_online", sending]) == 0


async def test_database_read_only(
    settings: Settings, workers: Callable[[Settings], Workers], producer: AIOKafkaProducer,
    reliability_record: Callable[..., None],
) -> None:
    """The database turns read-only (as a primary demoted to a standby does) for 10 s:
    a refused write is an outage to wait out, not a bad event to dead-letter, and the
    worker must not keep read-only sessions once the database is writable again."""
    group = workers(settings)
    group.start("worker-1")
    mix = EventMix(settings)
    await _warm_up(settings, mix, producer, group)
    dbname = await scalar(settings, "SELECT current_database()")

    stream = asyncio.create_task(mix.stream(producer, **STREAM))
    await asyncio.sleep(1.0)
    in_flight = await unstored(settings, mix)
    async with await psycopg.AsyncConnection.connect(settings.database_conninfo(), autocommit=True) as admin:
        await admin.execute(f'ALTER DATABASE "{dbname}" SET default_transaction_read_only = on')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                            " WHERE datname = current_database() AND pid <> pg_backend_pid()")
        await asyncio.sleep(1.0)
        rows_at_start = await _rows(settings)
        await stream
        await asyncio.sleep(4.0)
        rows_at_end = await _rows(settings)
        # writable again; the worker's sessions are still read-only ones until it replaces them
        await admin.execute(f'ALTER DATABASE "{dbname}" RESET default_transaction_read_only')
    writable = time.monotonic()
    _, recovery_s = await wait_until_complete(settings, mix, since=writable, workers=group)
    counted = await _final(settings, mix)

    _record_fault(reliability_record, "database read-only ~10 s mid-stream",
                  counted, in_flight, recovery_s)
    assert rows_at_end == rows_at_start, "rows were written while the database was read-only"
    assert "read-only transaction" in group.log("worker-1"), "the refusal never reached the worker"
    _assert_nothing_lost(counted, mix)
    assert group.alive("worker-1")


_DISK_FULL_TRIGGER = """
CREATE FUNCTION rl_disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'could not extend file: No space left on device (emulated)' USING ERRCODE = 'disk_full';
END $$;
CREATE TRIGGER rl_disk_full BEFORE INSERT ON plate_reads FOR EACH ROW EXECUTE FUNCTION rl_disk_full();
CREATE TRIGGER rl_disk_full BEFORE INSERT ON sensor_readings FOR EACH ROW EXECUTE FUNCTION rl_disk_full();
"""


def _fill(path: Path) -> Path:
    """Write zeros to ``path`` until its file system has no byte left."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for chunk in (b"\0" * 2**20, b"\0" * 4096, b"\0"):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, chunk)
    finally:
        os.close(fd)
    return path


@pytest.mark.parametrize("disk", ["tmpfs", "emulated"])
async def test_database_disk_full(
    disk: str, request: pytest.FixtureRequest, fault_settings: Callable[..., Settings],
    workers: Callable[[Settings], Workers], reliability_record: Callable[..., None],
) -> None:
    """The database's disk is full for ~10 s mid-stream: the write fails with SQLSTATE
    53100 (disk_full), the worker waits it out, and no valid event is dead-lettered.

    ``tmpfs``: the test database lives in a tablespace on a 64 MB tmpfs that a filler
    file then fills up, so the server really gets ENOSPC (needs root to mount; skipped
    otherwise). ``emulated``: a trigger raises the error code the server gives on a full
    disk, for machines where nothing can be mounted.
    """
    if disk == "tmpfs":
        cluster: EmbeddedPostgres = request.getfixturevalue("own_cluster")
        mount = request.getfixturevalue("small_tmpfs")
        async with await psycopg.AsyncConnection.connect(cluster.url, autocommit=True) as admin:
            await admin.execute(f"CREATE TABLESPACE rl_small LOCATION '{mount}'")
            await admin.execute("CREATE DATABASE faults TEMPLATE template0 TABLESPACE rl_small")
        settings = fault_settings(database_url=cluster.url_for("faults"))
    else:
        settings = fault_settings()
    settings = await prepared(settings)
    group = workers(settings)
    group.start("worker-1")
    mix = EventMix(settings)
    async with open_producer(settings.kafka_bootstrap or "") as producer:
        await _warm_up(settings, mix, producer, group)
        stream = asyncio.create_task(mix.stream(producer, **STREAM))
        await asyncio.sleep(1.0)
        in_flight = await unstored(settings, mix)
        if disk == "tmpfs":
            filler = _fill(mount / "filler")
        else:
            async with await psycopg.AsyncConnection.connect(settings.database_conninfo(),
                                                             autocommit=True) as admin:
                await admin.execute(_DISK_FULL_TRIGGER)
        await stream
        await asyncio.sleep(4.0)
        if disk == "tmpfs":
            filler.unlink()
        else:
            async with await psycopg.AsyncConnection.connect(settings.database_conninfo(),
                                                             autocommit=True) as admin:
                await admin.execute("DROP TRIGGER rl_disk_full ON plate_reads;"
                                    " DROP TRIGGER rl_disk_full ON sensor_readings")
        freed = time.monotonic()
        _, recovery_s = await wait_until_complete(settings, mix, since=freed, workers=group)
        counted = await _final(settings, mix)

    _record_fault(reliability_record, f"database disk full ~10 s mid-stream ({disk})",
                  counted, in_flight, recovery_s)
    assert "No space left on device" in group.log("worker-1"), "the full disk never reached the worker"
    _assert_nothing_lost(counted, mix)
    assert group.alive("worker-1")


async def _topic_partitions(bootstrap: str) -> dict[str, int]:
    """Topics on the broker and their partition counts (asking for all, so none is auto-created)."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap, client_id="rl-test")
    try:
        await client.bootstrap()
        cluster = await client.fetch_all_metadata()
        return {t: len(cluster.partitions_for_topic(t) or ()) for t in cluster.topics()}
    except KafkaError:
        return {}
    finally:
        await client.close()


async def _ask_for_topic(bootstrap: str, topic: str) -> int:
    """Subscribe to ``topic`` as any consumer would (its metadata request makes the broker
    auto-create a missing topic with the broker's defaults); returns its partition count."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        present = await _topic_partitions(bootstrap)
        assert topic in present, f"the broker did not auto-create {topic}"
        return present[topic]
    finally:
        await consumer.stop()


async def _until(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float = 60, *, seen: Callable[[], object] = str
) -> float:
    """Seconds until ``check()`` is true; fails with ``what`` (and what ``seen()`` says
    was last seen) after ``timeout``."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < timeout, f"timed out waiting until {what}; last seen: {seen()}"
        await asyncio.sleep(0.5)
    return time.monotonic() - started


def _lost_messages(counted_ids: set[uuid.UUID], mix: EventMix) -> int:
    """Messages of ``mix`` none of whose events is stored."""
    return sum(1 for ids in mix.message_events if not ids & counted_ids)


@pytest.mark.parametrize("watchlist_asked_first", [False, True], ids=["worker-first", "auto-created"])
async def test_broker_restarted_without_its_data(
    fault_settings: Callable[..., Settings], own_broker: EmbeddedBroker,
    workers: Callable[[Settings], Workers], reliability_record: Callable[..., None],
    watchlist_asked_first: bool,
) -> None:
    """The memory-only dev broker restarts and loses everything. The worker must come
    back by itself (reconnect, rejoin, recreate the topics with their partitions,
    republish the watchlist), store what is sent afterwards, and say how many messages
    were lost: those it had fetched or not yet fetched but never processed.

    To have unprocessed messages when the broker goes, the test holds the worker's
    writes with a table lock (and batches of one message): the first envelope of each
    topic is in its agent, blocked on the lock, and is stored once the lock goes; the
    later ones were fetched but not taken in: those still in the agents' queues when
    the rebalance that follows the restart clears them, and those never queued, are
    lost with the broker. The worker's count must say exactly how many messages that was.
    New messages are sent only once it has reported every partition's loss: a new log that
    outgrows the old one before the worker looks hides that it went back.

    ``auto-created``: a client asks for the watchlist topic before the worker
    notices, so the broker creates it with its defaults (Tansu: 4 partitions); the
    worker must still end up with the specified topic, refilled from the database.
    """
    settings = await prepared(fault_settings(kafka_bootstrap=own_broker.bootstrap, sink_batch_size=1))
    group = workers(settings)
    group.start("worker-1")
    before = EventMix(settings)
    async with open_producer(own_broker.bootstrap) as producer:
        # no bad messages before the restart: their dead letters would be lost with the broker
        await before.produce(producer, envelopes=8, sensor_envelopes=4, frames=1, bad=False)
        (await wait_until_complete(settings, before, timeout=90, workers=group))[0].assert_exact()
        async with await psycopg.AsyncConnection.connect(settings.database_conninfo()) as lock:
            await lock.execute("LOCK TABLE plate_reads, sensor_readings IN SHARE MODE")
            await before.produce(producer, envelopes=1, sensor_envelopes=1, bad=False)
            await asyncio.sleep(1.0)
            await before.produce(producer, envelopes=10, sensor_envelopes=4, bad=False)
            await asyncio.sleep(3.0)  # the worker fetches them (its highwaters move on)

            if watchlist_asked_first:  # the worker looks only once the client has asked
                os.kill(group.pid("worker-1"), signal.SIGSTOP)
            own_broker.stop()
            own_broker.start()
            restarted = time.monotonic()
            if watchlist_asked_first:
                auto_partitions = await _ask_for_topic(own_broker.bootstrap, settings.topics.watchlist)
                assert auto_partitions != 1, "the broker made the topic as specified: nothing to replace"
                os.kill(group.pid("worker-1"), signal.SIGCONT)
            expected = {name: partitions for name, partitions in
                        ((s.name, s.partitions) for s in topic_specs(settings))}

            present: dict[str, int] = {}

            async def topics_back() -> bool:
                present.clear()
                present.update(await _topic_partitions(own_broker.bootstrap))
                return all(present.get(name) == n for name, n in expected.items())

            def unreported() -> list[str]:  # partitions of the messages before whose loss is not yet logged
                log = group.log("worker-1")
                return [f"{topic}[{p}]" for topic, p in sorted(before.partitions)
                        if f"broker lost data of {topic}[{p}]" not in log]

            async def losses_reported() -> bool:  # before new messages can hide a log's going back
                return not unreported()

            topics_s = await _until(topics_back, "the worker recreated the topics",
                                    seen=lambda: {"expected": expected, "on the broker": present})
            await _until(losses_reported, "the worker reported the loss of every partition", seen=unreported)
            await lock.rollback()  # the agents' blocked writes go through

        after = EventMix(settings)
        await after.produce(producer, envelopes=10, sensor_envelopes=4, frames=1, bad=True)
        _, recovery_s = await wait_until_complete(settings, after, timeout=90, workers=group, since=restarted)
    await asyncio.sleep(SETTLE_S)
    counted_after = await tally(settings, after)
    counted_before = await tally(settings, before, letters_timeout=1.0)
    stored_ids = await stored_event_ids(settings)
    lost_messages = _lost_messages(stored_ids, before)
    reported = sum(group.metrics("worker-1", "ioc_broker_data_lost_messages_total").values())
    watchlist = await read_topic(own_broker.bootstrap, settings.topics.watchlist, expected=1, timeout=10)

    reliability_record(
        area="fault", held="8+1+10 edge envelopes (100 reads) and 4+1+4 sensor envelopes (50 readings) "
        "before, 10 + 4 + a frame + 7 bad messages after; writes held by a table lock",
        fault="memory-only broker restarted (all its data lost) with messages unprocessed"
        + ("; a client asked for the watchlist topic first (auto-created)" if watchlist_asked_first else ""),
        produced=before.produced + after.produced, stored=counted_before.stored + counted_after.stored,
        dead_lettered=counted_after.dead_lettered, lost=counted_before.lost + counted_after.lost,
        duplicated=counted_before.duplicated_rows + counted_after.duplicated_rows,
        lost_messages=lost_messages, lost_messages_reported=reported,
        topics_recreated_s=round(topics_s, 1), recovery_s=round(recovery_s, 1),
    )
    counted_after.assert_exact()
    assert counted_before.duplicated_rows == 0
    assert lost_messages > 0, "nothing was lost: the test did not hold messages back"
    assert reported == lost_messages, f"the worker reported {reported} lost messages, {lost_messages} were"
    assert counted_before.lost == sum(len(ids) for ids in before.message_events if not ids & stored_ids)
    assert "broker lost data of" in group.log("worker-1")
    assert any(WANTED.encode() in value for value in watchlist), \
        "the recreated watchlist topic was not republished from the database"
    assert group.alive("worker-1")


async def _commit_past_the_end(settings: Settings, offset: int) -> int:
    """Commit ``offset`` for the worker's group on every source partition; returns how many."""
    sources = settings.topics.sources
    partitions = [TopicPartition(spec.name, p) for spec in topic_specs(settings) if spec.name in sources
                  for p in range(spec.partitions)]
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=settings.consumer_group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.commit({tp: offset for tp in partitions})
    finally:
        await consumer.stop()
    return len(partitions)


async def test_committed_offsets_past_the_logs_end(
    settings: Settings, workers: Callable[[Settings], Workers], producer: AIOKafkaProducer,
    reliability_record: Callable[..., None],
) -> None:
    """The group's committed offsets lie past the end of its logs: what a worker that had not
    yet noticed a broker's data loss commits of the old logs into the new ones, or what a
    rebuilt broker keeps of its group offsets and not its logs. Kafka would answer the
    fetches out-of-range, Tansu answers nothing: the worker must read the logs from their
    start, not wait for them to grow past the old offsets and skip what comes before."""
    committed = await _commit_past_the_end(settings, 1_000)
    group = workers(settings)
    group.start("worker-1")
    mix = EventMix(settings)
    await mix.produce(producer, envelopes=4, sensor_envelopes=2, frames=1, bad=True)
    counted, recovery_s = await wait_until_complete(settings, mix, timeout=90, workers=group)
    _record_fault(reliability_record, "the group's offsets committed at 1,000 on every source partition, "
                  "past the end of its logs", counted, 0, recovery_s,
                  held="4 edge envelopes (400 reads), 2 sensor envelopes (100 readings), a frame and 7 bad "
                  "messages, on 4 partitions")
    counted.assert_exact()

    async def all_rewound() -> bool:  # the empty partitions too, so that nothing sent later waits
        return group.log("worker-1").count("past the log's end") == committed

    await _until(all_rewound, f"all {committed} partitions were read from their start", timeout=30,
                 seen=lambda: group.log("worker-1").count("past the log's end"))
