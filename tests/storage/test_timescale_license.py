"""Timescale-License features: continuous aggregates, compression, retention policies.

Neither test cluster has them (the TimescaleDB built here is Apache-only), so
this runs against the ``tsl_url`` fixture: a TimescaleDB Community server named by
``IOC_TEST_TSL_URL``, or the WASM build served by ``tests/storage/tsl_server.mjs``
(scripts/test-services.sh installs it; the production compose image has these
features). The WASM build takes one session at a time and wedges on COPY, so
rows go in with plain INSERTs and connections are opened one after another.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import psycopg

from ioc.storage.checkpoint_counts import (
    CountRow,
    counts_per_local_day,
    counts_per_minute,
    counts_rollup,
    local_midnight,
    refresh_counts,
    upsert_counts,
)
from ioc.storage.database import connect, detect_capabilities
from ioc.storage.late_rollups import refresh_late_rollups
from ioc.storage.migrations import migrate
from ioc.storage.retention import run_retention


async def _connect(url: str) -> psycopg.AsyncConnection:
    """The WASM server needs a moment after a session closes before it takes the next."""
    for _ in range(20):
        try:
            conn = await connect(url)
            conn.prepare_threshold = None
            return conn
        except psycopg.OperationalError:
            await asyncio.sleep(0.5)
    return await connect(url)


async def _migrated(url: str) -> None:
    """The extension and the migrations, with the pauses the WASM server needs between sessions."""
    setup = await _connect(url)
    async with setup:
        await setup.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        await setup.commit()
    await asyncio.sleep(1)
    await migrate(url)
    await asyncio.sleep(1)


async def test_tsl_features(tsl_url: str) -> None:
    await _migrated(tsl_url)
    checkpoint = f"tsl-{uuid.uuid4().hex[:8]}"
    base = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
    conn = await _connect(tsl_url)
    async with conn:
        caps = await detect_capabilities(conn)
        assert caps.tsl
        for i in range(40):
            await conn.execute(
                "INSERT INTO plate_reads (read_id, captured_at, camera_id, checkpoint_id, direction, text,"
                " display, confidence, source, source_event_id, processed_at, out_of_province)"
                " VALUES (%s, %s, 'cam', %s, 'in', '30A12345', '30A-123.45', 0.9, 'edge', %s, now(), true)",
                [uuid.uuid4(), base - timedelta(minutes=3 * i), checkpoint, uuid.uuid4()])
        await conn.commit()
        window = {"since": base - timedelta(hours=3), "until": base + timedelta(minutes=1)}
        assert await refresh_counts(conn, **window) >= 40  # the server may hold other rows
        assert await refresh_counts(conn, **window) == 0
        await conn.commit()
        minutes = await counts_per_minute(conn, checkpoint_id=checkpoint, **window)
        assert sum(r.vehicles for r in minutes) == 40
        # continuous aggregates with real-time aggregation see the minutes at once
        hours = await counts_rollup(conn, granularity="hour", checkpoint_id=checkpoint,
                                    since=base - timedelta(hours=4), until=base + timedelta(hours=1))
        assert sum(r.vehicles for r in hours) == 40 and len(hours) == 3
        days = await counts_rollup(conn, granularity="day", checkpoint_id=checkpoint,
                                   since=base - timedelta(days=2), until=base + timedelta(days=1))
        assert sum(r.vehicles for r in days) == 40

        await run_retention(conn, caps, read_days=20, alert_days=365)
        await conn.commit()
        cur = await conn.execute(
            "SELECT hypertable_name::text, config->>'drop_after' FROM timescaledb_information.jobs"
            " WHERE proc_name = 'policy_retention' ORDER BY 1")
        policies = dict(await cur.fetchall())
        assert {t: policies.get(t) for t in ("plate_reads", "plate_crops", "sensor_readings")} == {
            "plate_reads": "20 days", "plate_crops": "20 days", "sensor_readings": "20 days"}
        cur = await conn.execute("SELECT view_name::text FROM timescaledb_information.continuous_aggregates")
        caggs = {name for (name,) in await cur.fetchall()}
        assert caggs == {"checkpoint_counts_hourly", "checkpoint_counts_daily"}
        cur = await conn.execute(
            "SELECT hypertable_name::text FROM timescaledb_information.hypertables WHERE compression_enabled")
        assert {name for (name,) in await cur.fetchall()} == {"sensor_readings", "checkpoint_counts"}


async def test_aggregates_keep_what_is_older_than_their_policies_look_back(tsl_url: str) -> None:
    """0005 made the roll-ups continuous aggregates WITH NO DATA; once their policies had
    refreshed the last 3 (10) days, older hours (days) were gone though their minute windows
    were kept. Emulated here: old minutes, the migration that fills the aggregates undone,
    and the policies' refreshes; the next ``migrate`` must bring the old hours and days back."""
    await _migrated(tsl_url)
    checkpoint = f"tsl-{uuid.uuid4().hex[:8]}"
    old = (datetime.now(UTC) - timedelta(days=20)).replace(minute=0, second=0, microsecond=0)
    minutes = [CountRow(old + timedelta(minutes=m), checkpoint, "in", "car", "home", 2) for m in (5, 65, 70)]
    window = {"checkpoint_id": checkpoint, "since": old - timedelta(days=1), "until": old + timedelta(days=1)}
    conn = await _connect(tsl_url)
    async with conn:
        await upsert_counts(conn, minutes)
        await conn.execute("DELETE FROM schema_migrations WHERE name = '0011_fill_aggregates'")
        await conn.commit()
        await conn.set_autocommit(True)
        for view, back, end in (("checkpoint_counts_hourly", "3 days", "1 hour"),
                                ("checkpoint_counts_daily", "10 days", "1 day")):
            await conn.execute(f"CALL refresh_continuous_aggregate('{view}', now() - interval '{back}',"
                               f" now() - interval '{end}')")
        assert await counts_rollup(conn, granularity="hour", **window) == []  # as after an upgrade
    await asyncio.sleep(1)
    assert await migrate(tsl_url) == ["0011_fill_aggregates"]
    await asyncio.sleep(1)
    conn = await _connect(tsl_url)
    async with conn:
        hours = await counts_rollup(conn, granularity="hour", **window)
        assert [(r.bucket, r.vehicles) for r in hours] == [(old, 2), (old + timedelta(hours=1), 4)]
        days = await counts_rollup(conn, granularity="day", **window)
        assert sum(r.vehicles for r in days) == 6


async def test_local_days_from_the_hourly_aggregate(tsl_url: str) -> None:
    """The API's day buckets are days of the display zone summed from the hourly continuous
    aggregate (Vietnam: days start at 17:00 UTC), or from the minute windows where days start
    at half past a UTC hour (Kolkata); the daily aggregate keeps UTC days."""
    await _migrated(tsl_url)
    conn = await _connect(tsl_url)
    async with conn:
        await conn.set_autocommit(True)
        for zone_name in ("Asia/Ho_Chi_Minh", "Asia/Kolkata"):
            zone = ZoneInfo(zone_name)
            checkpoint = f"tsl-{uuid.uuid4().hex[:8]}"
            day = datetime.now(zone).date() - timedelta(days=2)
            next_day = day + timedelta(days=1)
            late = datetime.combine(day, time(23, 45), tzinfo=zone).astimezone(UTC)
            early = datetime.combine(next_day, time(0, 15), tzinfo=zone).astimezone(UTC)
            await upsert_counts(conn, [CountRow(late, checkpoint, "in", "car", "home", 3),
                                       CountRow(early, checkpoint, "in", "car", "home", 5)])
            since, until = local_midnight(day, zone), local_midnight(next_day + timedelta(days=1), zone)
            window = {"checkpoint_id": checkpoint, "since": since, "until": until}
            # these hours are behind the aggregates' watermarks: refreshed as their policies would
            for view in ("checkpoint_counts_hourly", "checkpoint_counts_daily"):
                await conn.execute(f"CALL refresh_continuous_aggregate('{view}', %s::timestamptz,"
                                   " %s::timestamptz)", [since - timedelta(days=1), until])
            days = await counts_per_local_day(conn, zone=zone, **window)
            assert [(r.bucket, r.vehicles) for r in days] == [(since, 3), (local_midnight(next_day, zone), 5)]
            utc_day = datetime.combine(late.date(), time(), tzinfo=UTC)  # both vehicles' UTC day
            utc_days = await counts_rollup(conn, granularity="day", checkpoint_id=checkpoint,
                                           since=utc_day, until=utc_day + timedelta(days=1))
            assert [(r.bucket, r.vehicles) for r in utc_days] == [(utc_day, 8)]


async def test_retention_expires_the_aggregates_too(tsl_url: str) -> None:
    """The roll-ups are continuous aggregates here, with chunks of their own: retention passed them
    by, and hourly and daily counts were kept for ever (the other layouts delete them with the
    minute windows, after IOC_ALERT_RETENTION_DAYS). An aggregate's chunks are wide (70 days here),
    and only whole ones go: counts 500 days old are in a chunk wholly past the 365 days kept."""
    await _migrated(tsl_url)
    checkpoint = f"tsl-{uuid.uuid4().hex[:8]}"
    old = (datetime.now(UTC) - timedelta(days=500)).replace(minute=0, second=0, microsecond=0)
    window = {"checkpoint_id": checkpoint, "since": old - timedelta(days=2), "until": old + timedelta(days=2)}
    conn = await _connect(tsl_url)
    async with conn:
        await upsert_counts(conn, [CountRow(old + timedelta(minutes=5), checkpoint, "in", "car", "home", 3)])
        await conn.commit()
        await conn.set_autocommit(True)
        for view in ("checkpoint_counts_hourly", "checkpoint_counts_daily"):  # as 0011 or a policy did
            await conn.execute(f"CALL refresh_continuous_aggregate('{view}', %s, %s)",
                               [old - timedelta(days=2), old + timedelta(days=2)])  # fmt: skip
        assert sum(r.vehicles for r in await counts_rollup(conn, granularity="hour", **window)) == 3
        await conn.set_autocommit(False)
        caps = await detect_capabilities(conn)
        result = await run_retention(conn, caps, read_days=20, alert_days=365)
        await conn.commit()
        assert result.dropped["checkpoint_counts_hourly"] and result.dropped["checkpoint_counts_daily"]
        assert await counts_rollup(conn, granularity="hour", **window) == []
        assert await counts_rollup(conn, granularity="day", **window) == []


async def test_counts_recounted_days_late_reach_the_aggregates(tsl_url: str) -> None:
    """An edge camera's backlog uploaded 12 days late: its minutes were recounted, but the roll-ups'
    refresh policies look back 3 and 10 days, so its hours and days never showed them."""
    await _migrated(tsl_url)
    checkpoint = f"tsl-{uuid.uuid4().hex[:8]}"
    late = (datetime.now(UTC) - timedelta(days=12)).replace(minute=0, second=0, microsecond=0)
    day = timedelta(days=1)
    window = {"checkpoint_id": checkpoint, "since": late - day, "until": late + day}
    conn = await _connect(tsl_url)
    async with conn:
        recent = (datetime.now(UTC) - timedelta(hours=3)).replace(second=0, microsecond=0)
        await upsert_counts(conn, [CountRow(recent, checkpoint, "in", "car", "home", 1)])
        await conn.commit()
        await conn.set_autocommit(True)
        for view, back, end in (("checkpoint_counts_hourly", "3 days", "1 hour"),
                                ("checkpoint_counts_daily", "10 days", "1 day")):
            await conn.execute(f"CALL refresh_continuous_aggregate('{view}', now() - interval '{back}',"
                               f" now() - interval '{end}')")  # the policies' runs: data flows
        await upsert_counts(conn, [CountRow(late + timedelta(minutes=5), checkpoint, "in", "car", "home", 4)])
        assert await counts_rollup(conn, granularity="hour", **window) == []  # as the policies leave it
        recounted = [(late + timedelta(minutes=5), late + timedelta(minutes=6))]
        refreshed = await refresh_late_rollups(conn, recounted, now=datetime.now(UTC))
        assert [view for view, _, _ in refreshed] == ["checkpoint_counts_hourly", "checkpoint_counts_daily"]
        hours = await counts_rollup(conn, granularity="hour", **window)
        assert [(r.bucket, r.vehicles) for r in hours] == [(late, 4)]
        assert sum(r.vehicles for r in await counts_rollup(conn, granularity="day", **window)) == 4
        recent = [(datetime.now(UTC) - timedelta(hours=2), datetime.now(UTC))]  # the policies' own
        assert await refresh_late_rollups(conn, recent, now=datetime.now(UTC)) == []
