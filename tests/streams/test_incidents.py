"""Watchlist hits merge into incidents, against a real database: one alert per
(entry, plate) with its route, replays change nothing, the route stays bounded."""

from __future__ import annotations

import uuid
from datetime import timedelta

from ioc.schemas import Direction, PlateRead, WatchlistEntry, utcnow
from ioc.storage.database import connect
from ioc.storage.migrations import migrate
from ioc.watchlist_matcher import WatchlistMatcher
from streams.watchlist_alerts import ROUTE_KEEP, record_hits

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

        # the same hits again (a replay): the opening read publishes the incident again, unchanged
        again = await record_hits(conn, _hits(first))
        await conn.commit()
        assert [a.evidence["route"] for a in again] == [route]

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
