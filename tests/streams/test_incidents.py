"""Watchlist hits merge into incidents, against a real database: one alert per
(entry, plate) with its route, replays change nothing, the route stays bounded; an
incident keeps its own copy of its opening read's crop."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import timedelta
from types import SimpleNamespace

import psycopg
import pytest
from pipeline_helpers import KeepingProducer

from ioc import metrics
from ioc.config import Settings
from ioc.schemas import Alert, Direction, PlateRead, WatchlistEntry, utcnow
from ioc.storage.alerts import alert_crop, sighting_crop
from ioc.storage.database import connect, open_pool
from ioc.storage.incidents import append_sightings
from ioc.storage.migrations import migrate
from ioc.storage.plate_reads import insert_plate_reads
from ioc.watchlist_matcher import WatchlistMatcher
from streams import plate_read_sink
from streams.agents import past_reads
from streams.context import WorkerContext
from streams.watchlist_alerts import ROUTE_KEEP, record_hits, sighting

ENTRY = WatchlistEntry(pattern="29A12345", reason="stolen", priority=1)
START = utcnow() - timedelta(minutes=5)


def _read(seconds: float, camera: str = "CP01-CAM1", text: str = "29A12345") -> PlateRead:
    source = uuid.uuid4()
    return PlateRead(
        read_id=PlateRead.derive_id(source, 0), source="edge", source_event_id=source,
        camera_id=camera, checkpoint_id=camera.split("-")[0], direction=Direction.IN,
        captured_at=START + timedelta(seconds=seconds), text=text, display=text, confidence=0.9,
    )


def _hits(reads: list[PlateRead]) -> list:
    matcher = WatchlistMatcher([ENTRY])
    return [(read, hit) for read in reads for hit in matcher.match(read.text, at=read.captured_at)]


async def test_hits_of_one_plate_become_one_incident_with_a_bounded_route(database_url: str) -> None:
    await migrate(database_url)
    first = [_read(0, "CP01-CAM1"), _read(60, "CP02-CAM1"), _read(1, "CP01-CAM1", text="30B99999")]
    async with await connect(database_url) as conn:
        alerts = await record_hits(conn, _hits(first))
        await conn.commit()
        assert len(alerts) == 1
        route = alerts[0].evidence["route"]
        assert [s["checkpoint_id"] for s in route] == ["CP01", "CP02"]
        assert alerts[0].read_id == first[0].read_id

        # the same hits again (a replay, unfiltered): the incident is neither changed nor published
        again = await record_hits(conn, _hits(first))
        await conn.commit()
        assert again == []

        # a plate read at a camera again and again keeps only the newest sightings in the route
        many = [_read(120 + i, "CP03-CAM1") for i in range(ROUTE_KEEP + 10)]
        later = await record_hits(conn, _hits(many))
        await conn.commit()
        assert len(later) == 1 and later[0].alert_id == alerts[0].alert_id
        evidence = later[0].evidence
        assert len(evidence["route"]) == ROUTE_KEEP
        assert evidence["route"][-1]["read_id"] == str(many[-1].read_id)
        assert evidence["sightings"] == 2 + len(many)
        cur = await conn.execute("SELECT count(*) FROM alerts WHERE kind = 'watchlist_hit'")
        assert (await cur.fetchone())[0] == 1


async def test_a_batch_of_many_plates_opens_and_extends_one_incident_each(database_url: str) -> None:
    await migrate(database_url)
    entries = [WatchlistEntry(pattern=p, reason="wanted", priority=3) for p in ("51F11111", "51F22222")]
    matcher = WatchlistMatcher(entries)

    def hits(reads: list[PlateRead]) -> list:
        return [(r, h) for r in reads for h in matcher.match(r.text, at=r.captured_at)]

    async with await connect(database_url) as conn:
        first = await record_hits(conn, hits([_read(0, text="51F11111")]))
        await conn.commit()
        # one batch: a sighting of the open incident and a first sighting of another plate
        both = [_read(5, "CP02-CAM1", text="51F11111"), _read(6, "CP02-CAM1", text="51F22222"),
                _read(7, "CP03-CAM1", text="51F22222")]
        alerts = await record_hits(conn, hits(both))
        await conn.commit()
    by_plate = {a.subject: a for a in alerts}
    assert sorted(by_plate) == ["51F11111", "51F22222"]
    assert by_plate["51F11111"].alert_id == first[0].alert_id
    assert [s["checkpoint_id"] for s in by_plate["51F11111"].evidence["route"]] == ["CP01", "CP02"]
    assert [s["checkpoint_id"] for s in by_plate["51F22222"].evidence["route"]] == ["CP02", "CP03"]
    assert by_plate["51F22222"].evidence["sightings"] == 2


async def test_two_workers_recording_the_same_hits_at_once_open_one_incident_per_plate(
    database_url: str,
) -> None:
    """As during a rebalance, when two workers briefly hold the same reads."""
    await migrate(database_url)
    entries = [WatchlistEntry(pattern=p, reason="wanted", priority=3) for p in ("88A10001", "88A10002")]
    matcher = WatchlistMatcher(entries)
    reads = [_read(i, f"CP0{i % 3 + 1}-CAM1", text=("88A10001", "88A10002")[i % 2]) for i in range(6)]
    hits = [(r, h) for r in reads for h in matcher.match(r.text, at=r.captured_at)]

    async def worker(ordered: list) -> None:
        async with await connect(database_url) as conn:
            await record_hits(conn, ordered)
            await conn.commit()

    await asyncio.gather(worker(hits), worker(list(reversed(hits))))
    async with await connect(database_url) as conn:
        cur = await conn.execute(
            "SELECT subject, count(*), sum(jsonb_array_length(evidence->'route')) FROM alerts"
            " WHERE subject = ANY(%s) GROUP BY subject ORDER BY subject", [["88A10001", "88A10002"]])
        assert await cur.fetchall() == [("88A10001", 1, 3), ("88A10002", 1, 3)]


async def test_a_replay_after_the_incident_was_resolved_adds_nothing_to_it(database_url: str) -> None:
    """The resolved alert is not an open incident any more, but its opening read's alert
    id is taken: the replay must not grow its route, and a new sighting opens a new one."""
    await migrate(database_url)
    entry = WatchlistEntry(pattern="43C55555", reason="wanted", priority=2)
    matcher = WatchlistMatcher([entry])

    def hits(reads: list[PlateRead]) -> list:
        return [(r, h) for r in reads for h in matcher.match(r.text, at=r.captured_at)]

    reads = [_read(200, "CP01-CAM1", text="43C55555"), _read(230, "CP02-CAM1", text="43C55555")]
    async with await connect(database_url) as conn:
        [first] = await record_hits(conn, hits(reads))
        await conn.execute("UPDATE alerts SET status = 'resolved' WHERE alert_id = %s", [first.alert_id])
        await conn.commit()
        await record_hits(conn, hits(reads))  # the same reads again
        await conn.commit()
        cur = await conn.execute("SELECT evidence FROM alerts WHERE alert_id = %s", [first.alert_id])
        evidence = (await cur.fetchone())[0]
        assert len(evidence["route"]) == 2 and evidence.get("sightings", 1) == 2

        [fresh] = await record_hits(conn, hits([_read(260, "CP03-CAM1", text="43C55555")]))
        await conn.commit()
    assert fresh.alert_id != first.alert_id
    assert [s["checkpoint_id"] for s in fresh.evidence["route"]] == ["CP03"]


async def _evidence(conn, alert_id: uuid.UUID) -> dict:  # noqa: ANN001
    cur = await conn.execute("SELECT evidence FROM alerts WHERE alert_id = %s", [alert_id])
    return (await cur.fetchone())[0]


async def test_past_reads_matched_again_change_neither_route_nor_count(database_url: str) -> None:
    """Every worker matches a fresh entry against past reads (and dead letters are replayed):
    the same hits again, more than the route keeps, must leave the incident as after once."""
    await migrate(database_url)
    live = [_read(600, "CP09-CAM1")]  # seen just now, after all of the past reads below
    past = [_read(i, f"CP0{i % 3 + 1}-CAM1") for i in range(ROUTE_KEEP + 30)]
    async with await connect(database_url) as conn:
        [opened] = await record_hits(conn, _hits(live))
        await conn.commit()
        await record_hits(conn, _hits(past), past_read=True)
        await conn.commit()
        once = await _evidence(conn, opened.alert_id)
        await record_hits(conn, _hits(past), past_read=True)  # a second worker
        await record_hits(conn, _hits(list(reversed(past))), past_read=True)
        assert await append_sightings(conn, [(opened.alert_id, [sighting(r, h) for r, h in _hits(past)])],
                                      keep=ROUTE_KEEP) == set()
        await conn.commit()
        twice = await _evidence(conn, opened.alert_id)
        cur = await conn.execute("SELECT count(*) FROM alerts WHERE kind = 'watchlist_hit'")
        assert (await cur.fetchone())[0] == 1
    assert twice == once
    assert once["sightings"] == 1 + len(past)
    route = once["route"]
    assert len(route) == ROUTE_KEEP
    # the newest stops by capture time: the live sighting stays the last, the oldest past reads go
    assert route[-1]["read_id"] == str(live[0].read_id)
    assert [s["read_id"] for s in route[:-1]] == [str(r.read_id) for r in past[-(ROUTE_KEEP - 1):]]


async def test_a_camera_clock_running_fast_still_extends_its_incident(database_url: str) -> None:
    """Incidents are found by capture time against capture time: a camera 40 minutes fast
    (its reads 40 minutes in the server's future) must extend its incident, not open one
    alert per batch."""
    await migrate(database_url)
    ahead = (utcnow() + timedelta(minutes=40) - START).total_seconds()  # _read counts from START
    reads = [_read(ahead, "CP01-CAM1"), _read(ahead + 60, "CP02-CAM1"), _read(ahead + 120, "CP03-CAM1")]
    async with await connect(database_url) as conn:
        opened = [alert.alert_id for read in reads for alert in await record_hits(conn, _hits([read]))]
        await conn.commit()
        cur = await conn.execute("SELECT count(*) FROM alerts WHERE kind = 'watchlist_hit'")
        assert (await cur.fetchone())[0] == 1
        evidence = await _evidence(conn, opened[0])
    assert set(opened) == {opened[0]}
    assert [s["checkpoint_id"] for s in evidence["route"]] == ["CP01", "CP02", "CP03"]
    assert evidence["sightings"] == 3


def _worker(database_url: str, app: SimpleNamespace, **overrides: object) -> WorkerContext:
    """A worker's context on the test database, its producer and timers those of ``app``."""
    settings = Settings(kafka_bootstrap="127.0.0.1:9", database_url=database_url, **overrides)
    return WorkerContext(settings=settings, app=app,
                         topics=SimpleNamespace(alerts=SimpleNamespace(get_topic_name=lambda: "alerts")),
                         dead_letters=None, recognition=None)


def _past_read_matching(
    database_url: str, sent: list[bytes], feed: list[WatchlistEntry] | None = None, *,
    late: list[WatchlistEntry] | None = None, **settings: object,
) -> tuple[WorkerContext, Callable]:
    """A worker's past-read matching over the watchlist ``feed`` (by default :data:`ENTRY`, added
    now; the list as it is at each check), and its check (the timer's function); what it publishes
    goes to ``sent``. ``late``: the entries its feed brought late, taken at the next check."""
    timers: list = []
    app = SimpleNamespace(timer=lambda interval_s, name: timers.append, producer=KeepingProducer(sent))
    ctx = _worker(database_url, app, **settings)
    entries = [ENTRY.model_copy(update={"added_at": utcnow()})] if feed is None else feed
    arrived_late = [] if late is None else late

    def take_late() -> list[WatchlistEntry]:
        taken = list(arrived_late)
        arrived_late.clear()
        return taken

    past_reads.register(ctx, SimpleNamespace(entries=lambda: list(entries), take_late=take_late))
    [check] = timers
    return ctx, check


async def test_an_incident_keeps_its_opening_reads_crop(database_url: str) -> None:
    """The sink stores reads before it records their hits: the alert copies the opening read's crop
    in the transaction that opens the incident (a later sighting's crop is not the alert's)."""
    await migrate(database_url)
    opening, later = (_read(s).model_copy(update={"crop_jpeg": b"\xff\xd8" + bytes([s])}) for s in (0, 60))
    async with await connect(database_url) as conn:
        await insert_plate_reads(conn, [opening, later])
        [alert] = await record_hits(conn, _hits([opening, later]))
        await conn.commit()
        assert await alert_crop(conn, alert.alert_id) == opening.crop_jpeg
        cur = await conn.execute("SELECT count(*) FROM alert_evidence")
        assert (await cur.fetchone())[0] == 1


async def _count(conn, table: str) -> int:  # noqa: ANN001
    cur = await conn.execute(f"SELECT count(*) FROM {table}")  # noqa: S608 (fixed names)
    return (await cur.fetchone())[0]


async def test_each_route_sighting_keeps_its_crop_while_the_route_holds_it(database_url: str) -> None:
    """Reads and their crops go after 30 days, the incident after a year: each sighting keeps a copy
    of its read's crop, made as it is appended (a replay copies nothing twice), kept after the read
    is gone, and dropped with the sighting when newer ones push it out of the route."""
    await migrate(database_url)

    def pictured(seconds: int, camera: str) -> PlateRead:
        return _read(seconds, camera).model_copy(update={"crop_jpeg": b"\xff\xd8" + str(seconds).encode()})

    opening, later = pictured(0, "CP01-CAM1"), pictured(60, "CP02-CAM1")
    async with await connect(database_url) as conn:
        await insert_plate_reads(conn, [opening, later])
        [alert] = await record_hits(conn, _hits([opening, later]))
        await conn.commit()
        await record_hits(conn, _hits([opening, later]))  # a replay
        await conn.commit()
        await conn.execute("DELETE FROM plate_crops")  # the reads' days dropped by retention
        await conn.execute("DELETE FROM plate_reads")
        await conn.commit()
        assert await sighting_crop(conn, alert.alert_id, later.read_id) == later.crop_jpeg
        assert await sighting_crop(conn, alert.alert_id, opening.read_id) == opening.crop_jpeg
        assert await sighting_crop(conn, alert.alert_id, uuid.uuid4()) is None
        assert await _count(conn, "sighting_evidence") == 2

        # a vehicle parked in front of a camera: the route keeps the newest, the copies follow it
        parked = [pictured(120 + i, "CP03-CAM1") for i in range(ROUTE_KEEP)]
        await insert_plate_reads(conn, parked)
        await record_hits(conn, _hits(parked))
        await conn.commit()
        assert await sighting_crop(conn, alert.alert_id, later.read_id) is None
        assert await sighting_crop(conn, alert.alert_id, parked[-1].read_id) == parked[-1].crop_jpeg
        assert await _count(conn, "sighting_evidence") == ROUTE_KEEP
        assert await alert_crop(conn, alert.alert_id) == opening.crop_jpeg  # the alert's own copy stays


async def test_an_alert_for_a_past_read_copies_its_stored_crop(database_url: str) -> None:
    """Past-read matching finds reads without their crops: the alert's copy comes from the stored one."""
    await migrate(database_url)
    read = _read(0).model_copy(update={"crop_jpeg": b"\xff\xd8past"})
    async with await connect(database_url) as conn:
        await insert_plate_reads(conn, [read])
        await conn.commit()
    sent: list[bytes] = []
    ctx, check = _past_read_matching(database_url, sent)
    try:
        await check()
        assert len(sent) == 1
    finally:
        await (await ctx.pool()).close()
    async with await connect(database_url) as conn:
        cur = await conn.execute("SELECT alert_id FROM alerts WHERE read_id = %s", [read.read_id])
        [(alert_id,)] = await cur.fetchall()
        assert await alert_crop(conn, alert_id) == b"\xff\xd8past"


async def test_a_hit_the_database_refuses_fails_its_batch(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refused hit was only logged: its batch counted as stored, and the alert was lost with no
    dead letter. The batch now fails (and is dead-lettered, to be replayed), after the other hits
    were recorded and published."""
    await migrate(database_url)
    refused_plate = "30B99999"

    async def refusing(conn, rows):  # noqa: ANN001, ANN202 - as record_hits
        if any(read.text == refused_plate for read, _ in rows):
            raise psycopg.DataError("a value the database cannot take")
        return await record_hits(conn, rows)

    monkeypatch.setattr(plate_read_sink, "record_hits", refusing)
    sent: list[bytes] = []
    ctx = _worker(database_url, SimpleNamespace(producer=KeepingProducer(sent)))
    other = WatchlistEntry(pattern=refused_plate, reason="stolen", priority=1)
    matcher = WatchlistMatcher([ENTRY, other])
    reads = [_read(0), _read(1, text=refused_plate)]
    hits = [(read, hit) for read in reads for hit in matcher.match(read.text, at=read.captured_at)]
    pool = await open_pool(database_url, min_size=1, max_size=2)
    try:
        with pytest.raises(plate_read_sink.HitsNotRecordedError, match="1 watchlist hits refused"):
            await plate_read_sink._raise_alerts(ctx, pool, hits)  # noqa: SLF001
    finally:
        await pool.close()
    assert len(sent) == 1 and b"29A12345" in sent[0]  # the other hit: recorded and published


async def test_a_replayed_read_that_a_closed_incident_counted_raises_nothing(database_url: str) -> None:
    """A read appended to an incident that an officer then rejected, replayed (a crash before the
    offset commit, a dead-letter replay), had opened a new alert for the same hit: live hits were
    not checked against the reads incidents had counted, as past-read matching checks them."""
    await migrate(database_url)
    sent: list[bytes] = []
    ctx = _worker(database_url, SimpleNamespace(producer=KeepingProducer(sent)))
    opening, appended = _read(0, "CP01-CAM1"), _read(30, "CP02-CAM1")
    pool = await open_pool(database_url, min_size=1, max_size=2)
    hits_before = _hits_counted()
    try:
        await plate_read_sink._raise_alerts(ctx, pool, _hits([opening]))  # noqa: SLF001
        await plate_read_sink._raise_alerts(ctx, pool, _hits([appended]))  # noqa: SLF001
        async with pool.connection() as conn:
            await conn.execute("UPDATE alerts SET status = 'rejected'")
        published = len(sent)
        await plate_read_sink._raise_alerts(ctx, pool, _hits([appended]))  # the same read again  # noqa: SLF001
        await plate_read_sink._raise_alerts(ctx, pool, _hits([opening, appended]))  # noqa: SLF001
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT status, evidence->'sightings' FROM alerts")
            alerts = await cur.fetchall()
    finally:
        await pool.close()
    assert alerts == [("rejected", 2)]
    assert len(sent) == published  # nothing published again: the outbox republishes what was lost
    assert _hits_counted() - hits_before == 2  # ioc_watchlist_hits_total: the replays not again


def _hits_counted() -> float:
    return sum(sample.value for metric in metrics.WATCHLIST_HITS.collect() for sample in metric.samples
               if sample.name.endswith("_total"))


async def test_past_read_matching_refused_by_the_database_is_tried_again(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh entry whose search the database refused was marked searched all the same: the
    past reads of the wanted plate never raised their alert."""
    await migrate(database_url)
    async with await connect(database_url) as conn:
        await insert_plate_reads(conn, [_read(0)])
        await conn.commit()
    attempts = 0

    async def refused_at_first(conn, rows, **kwargs):  # noqa: ANN001, ANN003, ANN202 - as record_hits
        nonlocal attempts
        attempts += 1
        if attempts <= 2:  # the batch, then the entry on its own (write_batch's second try)
            raise psycopg.DataError("a value the database cannot take")
        return await record_hits(conn, rows, **kwargs)

    monkeypatch.setattr(past_reads, "record_hits", refused_at_first)
    sent: list[bytes] = []
    ctx, check = _past_read_matching(database_url, sent)
    try:
        await check()
        assert sent == []
        await check()
        assert len(sent) == 1 and b"29A12345" in sent[0]
    finally:
        await (await ctx.pool()).close()


async def test_a_read_committed_just_after_the_first_search_is_found_by_the_second(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Live matching's index holds a new entry up to half a second late, and a read is matched
    before its transaction commits: a read matched without the entry and committed after the
    entry's past-read search escaped both, and the wanted vehicle never raised an alert."""
    await migrate(database_url)
    monkeypatch.setattr(past_reads, "SEARCH_AGAIN_AFTER", timedelta(seconds=0.5))
    sent: list[bytes] = []
    ctx, check = _past_read_matching(database_url, sent)
    try:
        await check()  # the first search: nothing yet
        async with await connect(database_url) as conn:  # matched against the index without the entry
            await insert_plate_reads(conn, [_read(0)])
            await conn.commit()
        await check()
        assert sent == []  # not searched again yet
        await asyncio.sleep(0.6)
        await check()
        assert len(sent) == 1 and b"29A12345" in sent[0]
        await asyncio.sleep(0.6)
        await check()  # two searches an entry: no third
        assert len(sent) == 1
    finally:
        await (await ctx.pool()).close()


async def test_an_entry_corrected_long_after_it_was_added_is_searched_and_a_restart_raises_nothing_again(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An officer corrects a typo in a wanted plate 15 minutes after adding it; the vehicle passed an
    hour before. An entry was searched only within 10 minutes of being added, once per (entry,
    added_at), which an edit keeps: the correction was never searched, and no alert. Each version of
    an entry is searched when a worker first sees it. A worker restarting sees every entry anew and
    searches it again: what was raised is raised again neither on the alerts topic nor as an incident
    of its own, even once an operator has closed the incident and the opening read has left the
    hours searched."""
    await migrate(database_url)
    monkeypatch.setattr(past_reads, "SEARCH_AGAIN_AFTER", timedelta(seconds=0.2))
    passed, again = _read(-3600), _read(-1200, "CP02-CAM1")  # 65 and 25 minutes ago
    async with await connect(database_url) as conn:
        await insert_plate_reads(conn, [passed, again])
        await conn.commit()

    async def searched_twice(check: Callable) -> None:
        await check()
        await asyncio.sleep(0.3)
        await check()

    typo = ENTRY.model_copy(update={"pattern": "29A12354", "added_at": utcnow() - timedelta(minutes=15)})
    feed = [typo]
    sent: list[bytes] = []
    ctx, check = _past_read_matching(database_url, sent, feed)
    try:
        await searched_twice(check)
        assert sent == []  # the typo matches nothing
        feed[0] = typo.model_copy(update={"pattern": ENTRY.pattern})  # corrected: PATCH keeps added_at
        await check()
        assert len(sent) == 1 and ENTRY.pattern.encode() in sent[0]
        await asyncio.sleep(0.3)
        await check()  # the second search finds what the first recorded: nothing to publish again
        assert len(sent) == 1
    finally:
        await (await ctx.pool()).close()
    [opened] = [Alert.model_validate_json(message) for message in sent]
    assert opened.read_id == passed.read_id and opened.evidence["sightings"] == 2
    async with await connect(database_url) as conn:
        await conn.execute("UPDATE alerts SET status = 'resolved' WHERE alert_id = %s", [opened.alert_id])
        await conn.commit()

    # a restart, a day on: the feed read again, the first read no longer among the hours searched
    ctx, check = _past_read_matching(database_url, sent, feed, past_read_hours=0.5)
    try:
        await searched_twice(check)
    finally:
        await (await ctx.pool()).close()
    assert len(sent) == 1
    async with await connect(database_url) as conn:
        cur = await conn.execute("SELECT alert_id, status FROM alerts WHERE kind = 'watchlist_hit'")
        assert await cur.fetchall() == [(opened.alert_id, "resolved")]


async def _read_stored_without_its_alert(database_url: str, read: PlateRead) -> None:
    """A read only a search of past reads can raise an alert for: what a worker publishes after
    storing it shows that it searched."""
    async with await connect(database_url) as conn:
        await insert_plate_reads(conn, [read])
        await conn.commit()


async def test_a_version_searched_twice_is_searched_by_no_other_worker_and_not_after_a_restart(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every worker searched every entry twice whenever it started: with 10,000 entries and 4 workers,
    80,000 searches of a day of reads at a rolling restart, that raised nothing new. A version any
    worker has searched twice is searched by no other, nor by a worker starting; a new version of the
    entry (its expiry changed) is searched as before, by one worker."""
    await migrate(database_url)
    monkeypatch.setattr(past_reads, "SEARCH_AGAIN_AFTER", timedelta(seconds=0.2))
    feed = [ENTRY.model_copy(update={"added_at": utcnow()})]
    sent: list[bytes] = []
    first, check_first = _past_read_matching(database_url, sent, feed)
    second, check_second = _past_read_matching(database_url, sent, feed)  # or the first, restarted
    try:
        await check_first()
        await asyncio.sleep(0.3)
        await check_first()
        await _read_stored_without_its_alert(database_url, _read(0))
        await check_second()
        await asyncio.sleep(0.3)
        await check_second()
        assert sent == []  # not searched again
        feed[0] = feed[0].model_copy(update={"expires_at": utcnow() + timedelta(days=1)})
        await check_second()
        assert len(sent) == 1 and b"29A12345" in sent[0]
        await check_first()  # the new version's first search is made: not made again
        await asyncio.sleep(0.3)
        await check_first()  # the second, which records nothing new
        await asyncio.sleep(0.3)
        await check_second()
        assert len(sent) == 1
    finally:
        await (await first.pool()).close()
        await (await second.pool()).close()
    async with await connect(database_url) as conn:  # the replaced version is forgotten
        cur = await conn.execute("SELECT entry_id, expires_at, searches FROM past_read_searches")
        assert await cur.fetchall() == [(ENTRY.entry_id, feed[0].expires_at, 2)]


async def test_a_worker_whose_feed_brought_a_version_late_searches_it_itself(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A version searched twice anywhere is settled for every worker; but a worker whose watchlist feed
    fell behind (a leader change, a reconnect) went on matching reads without the entry, and one it
    stored after the other workers' second search was never searched: a wanted vehicle, no alert."""
    await migrate(database_url)
    monkeypatch.setattr(past_reads, "SEARCH_AGAIN_AFTER", timedelta(seconds=0.2))
    feed = [ENTRY.model_copy(update={"added_at": utcnow()})]
    sent: list[bytes] = []
    first, check_first = _past_read_matching(database_url, sent, feed)
    late: list[WatchlistEntry] = []
    behind, check_behind = _past_read_matching(database_url, sent, feed, late=late)
    try:
        await check_first()
        await asyncio.sleep(0.3)
        await check_first()  # settled
        await _read_stored_without_its_alert(database_url, _read(0))  # matched by the worker behind
        await check_behind()
        assert sent == []  # on time, it leaves the version to the searches made
        late.append(feed[0])  # its feed brings the version, late
        await check_behind()
        assert len(sent) == 1 and b"29A12345" in sent[0]
        await check_behind()
        assert len(sent) == 1  # once
    finally:
        await (await first.pool()).close()
        await (await behind.pool()).close()


async def test_a_worker_finding_the_first_search_made_makes_only_the_second(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that stopped after the first search of a version leaves the second to any other
    worker: made once, :data:`~streams.agents.past_reads.SEARCH_AGAIN_AFTER` after the first."""
    await migrate(database_url)
    monkeypatch.setattr(past_reads, "SEARCH_AGAIN_AFTER", timedelta(seconds=2))
    feed = [ENTRY.model_copy(update={"added_at": utcnow()})]
    sent: list[bytes] = []
    stopped, check = _past_read_matching(database_url, sent, feed)
    try:
        await check()  # the first search, then the worker stops
    finally:
        await (await stopped.pool()).close()
    await _read_stored_without_its_alert(database_url, _read(0))
    ctx, check = _past_read_matching(database_url, sent, feed)
    try:
        await check()
        assert sent == []  # the first is not made again, the second is not due yet
        await asyncio.sleep(2.1)
        await check()
        assert len(sent) == 1 and b"29A12345" in sent[0]
        await _read_stored_without_its_alert(database_url, _read(30, "CP02-CAM1"))
        await asyncio.sleep(2.1)
        await check()  # no third search
        assert len(sent) == 1
    finally:
        await (await ctx.pool()).close()


async def test_an_entry_switched_off_and_on_again_is_searched_again(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Switched back on, an entry is the version it was before, searched twice already: the reads
    of while it was off must be searched all the same."""
    await migrate(database_url)
    monkeypatch.setattr(past_reads, "SEARCH_AGAIN_AFTER", timedelta(seconds=0.2))
    on = ENTRY.model_copy(update={"added_at": utcnow()})
    feed = [on]
    sent: list[bytes] = []
    ctx, check = _past_read_matching(database_url, sent, feed)
    try:
        await check()
        await asyncio.sleep(0.3)
        await check()
        feed[0] = on.model_copy(update={"active": False})
        await check()
        await _read_stored_without_its_alert(database_url, _read(0))  # passed while it was off
        feed[0] = on
        await check()
        assert len(sent) == 1 and b"29A12345" in sent[0]
    finally:
        await (await ctx.pool()).close()
