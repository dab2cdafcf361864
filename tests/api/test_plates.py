"""Plate look-ups over HTTP against real rows (TimescaleDB and plain PostgreSQL):
exact, look-alike fuzzy and partial; paging; filters; crops; "is it wanted?";
a purpose on every query and an audit record for each (and for each crop fetched), in the
same transaction."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from served_api import ApiServer, plate_read, store_reads

from ioc.schemas import Direction
from ioc.storage.database import connect

PURPOSE = "case 2026/117 stolen car"
JPEG = b"\xff\xd8\xff\xe0 tiny jpeg \xff\xd9"


@pytest.fixture
async def seeded(api: ApiServer) -> ApiServer:
    now = datetime.now(UTC)
    reads = [plate_read("30A12345", captured_at=now - timedelta(minutes=i), checkpoint_id=f"CP0{1 + i % 2}",
                        direction=Direction.IN if i % 3 else Direction.OUT, crop=JPEG if i == 0 else None)
             for i in range(25)]
    reads += [plate_read("3OA12345", captured_at=now - timedelta(minutes=30)),   # O read for 0
              plate_read("30A1Z345", captured_at=now - timedelta(minutes=31)),   # Z read for 2
              plate_read("30A12399", captured_at=now - timedelta(minutes=32)),
              plate_read("51F86988", captured_at=now - timedelta(minutes=33)),
              plate_read("30A12345", captured_at=now - timedelta(days=3))]
    await store_reads(api, reads)
    await api.token("officer")
    await api.token("supervisor")
    await api.token("auditor")
    return api


async def _sightings(api: ApiServer, role: str = "officer", **params) -> dict:
    async with api.client(role) as client:
        response = await client.get("/api/plates/sightings", params={"purpose": PURPOSE, **params})
    assert response.status_code == 200, response.text
    return response.json()


async def _audit_count(api: ApiServer) -> int:
    return (await api.sql("SELECT count(*) FROM audit_log WHERE action LIKE 'plate.%'"))[0][0]


async def test_exact_lookup_pages_newest_first(seeded: ApiServer) -> None:
    since = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    seen: list[dict] = []
    cursor = None
    while True:
        page = await _sightings(seeded, plate="30a-123.45", limit=10, since=since,
                                **({"cursor": cursor} if cursor else {}))
        seen.extend(page["data"])
        cursor = page.get("next_cursor")
        if cursor is None:
            break
    assert len(seen) == 25 and len({s["read_id"] for s in seen}) == 25
    times = [s["captured_at"] for s in seen]
    assert times == sorted(times, reverse=True)
    assert {s["plate"] for s in seen} == {"30A12345"} and {s["match"] for s in seen} == {"exact"}
    # compact: no empty fields, a crop link only where there is a crop
    assert "crop_url" in seen[0] and all("crop_url" not in s for s in seen[1:])
    assert set(seen[1]) == {"read_id", "captured_at", "plate", "checkpoint_id", "camera_id", "direction",
                            "confidence", "match", "vehicle_class"}


async def test_default_window_reaches_back_to_the_retention_period(seeded: ApiServer) -> None:
    assert (await _sightings(seeded, plate="30A12345", limit=100))["count"] == 26


async def test_fuzzy_lookup_finds_lookalike_readings(seeded: ApiServer) -> None:
    page = await _sightings(seeded, plate="30A12345", fuzzy="true", limit=100)
    by_plate = {s["plate"]: s["match"] for s in page["data"]}
    assert by_plate == {"30A12345": "exact", "3OA12345": "lookalike", "30A1Z345": "lookalike"}
    # the look-alike reading itself, looked up fuzzily, finds the real plate
    page = await _sightings(seeded, plate="3OA1Z345", fuzzy="true", limit=100)
    assert {s["plate"] for s in page["data"]} == {"30A12345", "3OA12345", "30A1Z345"}
    assert (await _sightings(seeded, plate="3OA1Z345"))["count"] == 0  # not without fuzzy


async def test_partial_lookups_with_wildcards(seeded: ApiServer) -> None:
    prefix = await _sightings(seeded, plate="30A123*", limit=100)
    assert {s["plate"] for s in prefix["data"]} == {"30A12345", "30A12399"}
    assert {s["match"] for s in prefix["data"]} == {"pattern"}
    one_char = await _sightings(seeded, plate="30A1234?", limit=100)
    assert {s["plate"] for s in one_char["data"]} == {"30A12345"}
    suffix = await _sightings(seeded, plate="*86988")
    assert [s["plate"] for s in suffix["data"]] == ["51F86988"]
    fuzzy_pattern = await _sightings(seeded, plate="3OA*", fuzzy="true", limit=100)
    assert {s["plate"] for s in fuzzy_pattern["data"]} == {"30A12345", "3OA12345", "30A1Z345", "30A12399"}


async def test_a_sighting_dated_ahead_by_a_fast_camera_clock_is_found_first(api: ApiServer) -> None:
    """Reads are stored at the camera's capture time. Asked without ``until``, the look-up ended
    a minute after now: a wanted vehicle's newest sighting, from a camera whose clock runs 40
    minutes fast, was hidden until then. Now no end is assumed; a given ``until`` still bounds,
    and the pages still follow on from each other."""
    await api.token("officer")
    now = datetime.now(UTC)
    fast = plate_read("29A88888", captured_at=now + timedelta(minutes=40), camera_id="CP02-CAM1",
                      checkpoint_id="CP02")
    older = [plate_read("29A88888", captured_at=now - timedelta(minutes=i)) for i in range(1, 4)]
    await store_reads(api, [fast, *older])
    first = await _sightings(api, plate="29A88888", limit=2)
    assert [s["read_id"] for s in first["data"]] == [str(fast.read_id), str(older[0].read_id)]
    second = await _sightings(api, plate="29A88888", limit=2, cursor=first["next_cursor"])
    assert [s["read_id"] for s in second["data"]] == [str(r.read_id) for r in older[1:]]
    bounded = await _sightings(api, plate="29A88888", until=now.isoformat(), limit=10)
    assert [s["read_id"] for s in bounded["data"]] == [str(r.read_id) for r in older]
    [(asked,)] = await api.sql("SELECT query FROM audit_log WHERE action = 'plate.sightings'"
                               " ORDER BY audit_id LIMIT 1")
    assert asked["until"] is None  # the audit says the look-up had no end


async def test_checkpoint_direction_and_time_filters(seeded: ApiServer) -> None:
    now = datetime.now(UTC)
    at_cp2_out = await _sightings(seeded, plate="30A12345", checkpoint_id="CP02", direction="out", limit=100)
    assert at_cp2_out["count"] == 4  # i in 3, 9, 15, 21
    assert all(s["checkpoint_id"] == "CP02" and s["direction"] == "out" for s in at_cp2_out["data"])
    since = now - timedelta(minutes=4, seconds=30)
    recent = await _sightings(seeded, plate="30A12345", since=since.isoformat(), until=now.isoformat(),
                              limit=100)
    assert recent["count"] == 5


async def test_a_window_given_only_its_end_reaches_back_the_retention_period_from_it(
    seeded: ApiServer,
) -> None:
    """``since`` left out was the retention period back from now, whatever ``until`` said: asked
    for the sightings before a date more than a retention period ago (a cold case), the officer
    got 422 "since must be before until" for a query that states nothing wrong. The period now
    reaches back from the end asked for (from now where the end is later), and the audit record
    holds the window searched."""
    now = datetime.now(UTC)
    retention = timedelta(days=seeded.settings.read_retention_days)
    long_ago, two_days_ago = now - timedelta(days=400), now - timedelta(days=2)
    cold = await _sightings(seeded, plate="30A12345", until=long_ago.isoformat(), limit=100)
    assert cold["count"] == 0
    before = await _sightings(seeded, plate="30A12345", until=two_days_ago.isoformat(), limit=100)
    assert before["count"] == 1  # the read of three days ago only
    ahead = await _sightings(seeded, plate="30A12345", until=(now + timedelta(days=1)).isoformat(), limit=100)
    assert ahead["count"] == 26
    audited = await seeded.sql("SELECT query->>'since', query->>'until' FROM audit_log"
                               " WHERE action = 'plate.sightings' ORDER BY audit_id")
    windows = [(datetime.fromisoformat(since), datetime.fromisoformat(until)) for since, until in audited]
    assert [until for _, until in windows[:2]] == [long_ago, two_days_ago]
    assert [since for since, _ in windows[:2]] == [long_ago - retention, two_days_ago - retention]
    assert abs(windows[2][0] - (now - retention)) < timedelta(minutes=1)  # an end ahead: from now


async def test_every_query_needs_a_purpose_and_is_audited(seeded: ApiServer) -> None:
    before = await _audit_count(seeded)
    async with seeded.client("officer") as client:
        missing = await client.get("/api/plates/sightings", params={"plate": "30A12345"})
        blank = await client.get("/api/plates/sightings", params={"plate": "30A12345", "purpose": "     "})
        wanted_missing = await client.get("/api/plates/wanted", params={"plate": "30A12345"})
        too_short = await client.get("/api/plates/sightings", params={"plate": "**", "purpose": PURPOSE})
    assert [r.status_code for r in (missing, blank, wanted_missing, too_short)] == [422] * 4
    assert await _audit_count(seeded) == before  # refused queries ran nothing and logged nothing

    page = await _sightings(seeded, plate="30A-12345", fuzzy="true", checkpoint_id="CP01", limit=7)
    async with seeded.client("supervisor") as client:
        wanted = await client.get("/api/plates/wanted", params={"plate": "51F86988", "purpose": " case  9 "})
    assert wanted.status_code == 200
    rows = await seeded.sql(
        "SELECT actor, role, action, query, purpose, result_count FROM audit_log"
        " WHERE action LIKE 'plate.%%' ORDER BY audit_id DESC LIMIT 2")
    (w_actor, w_role, w_action, w_query, w_purpose, w_count), sightings_row = rows
    actor, role, action, query, purpose, count = sightings_row
    assert (actor, role, action, purpose, count) == ("officer", "officer", "plate.sightings", PURPOSE, 7)
    assert page["count"] == 7
    assert query["plate"] == "30A12345" and query["kind"] == "fuzzy" and query["checkpoint_id"] == "CP01"
    assert (w_actor, w_role, w_action, w_purpose, w_count) == ("supervisor", "supervisor", "plate.wanted",
                                                                "case 9", 0)
    assert w_query == {"plate": "51F86988"}


async def test_audit_failure_withholds_the_answer(seeded: ApiServer) -> None:
    """The query and its audit record commit together: no audit row, no result."""
    await seeded.sql("ALTER TABLE audit_log ADD CONSTRAINT no_more_audit CHECK (audit_id < 0) NOT VALID")
    async with seeded.client("officer") as client:
        response = await client.get("/api/plates/sightings", params={"plate": "30A12345", "purpose": PURPOSE})
    assert response.status_code == 500
    assert "30A12345" not in response.text


async def test_officers_see_their_own_history_and_auditors_everyones(seeded: ApiServer) -> None:
    await seeded.token("officer", username="officer-2")
    await _sightings(seeded, "officer", plate="30A12345")
    await _sightings(seeded, "officer-2", plate="51F86988")
    async with seeded.client("officer") as officer, seeded.client("auditor") as auditor:
        mine = (await officer.get("/api/audit/mine")).json()
        assert {r["actor"] for r in mine["data"]} == {"officer"}
        assert (await officer.get("/api/audit")).status_code == 403
        everyone = (await auditor.get("/api/audit", params={"action": "plate.sightings"})).json()
        assert {"officer", "officer-2"} <= {r["actor"] for r in everyone["data"]}
        only_2 = (await auditor.get("/api/audit", params={"actor": "officer-2"})).json()
        assert [r["query"]["plate"] for r in only_2["data"]] == ["51F86988"]


async def test_audit_log_is_append_only(seeded: ApiServer) -> None:
    await _sightings(seeded, plate="30A12345")
    for statement in ("UPDATE audit_log SET purpose = 'nothing to see'", "DELETE FROM audit_log",
                      "TRUNCATE audit_log"):
        with pytest.raises(psycopg.Error, match="append-only"):
            await seeded.sql(statement)
    assert await _audit_count(seeded) == 1
    async with seeded.client("auditor") as client:
        for method in ("DELETE", "PUT", "PATCH", "POST"):
            response = await client.request(method, "/api/audit")
            assert response.status_code == 405, method


async def test_crop_link_serves_the_jpeg(seeded: ApiServer) -> None:
    newest = (await _sightings(seeded, plate="30A12345", limit=1))["data"][0]
    async with seeded.client("officer") as client:
        crop = await client.get(newest["crop_url"])
        assert crop.status_code == 200 and crop.content == JPEG
        assert crop.headers["content-type"] == "image/jpeg"
        assert crop.headers["cache-control"] == "private, no-store"  # not left on a shared PC's disk
        without_time = await client.get(newest["crop_url"].split("?")[0])
        assert without_time.content == JPEG
        read_id = newest["read_id"]
        other = read_id[:-1] + ("1" if read_id[-1] == "0" else "0")  # a different, unknown read
        missing = await client.get(f"/api/reads/{other}/crop.jpg")
        assert missing.status_code == 404


async def test_every_crop_fetch_is_audited(seeded: ApiServer) -> None:
    """A crop shows a plate: each fetch, found or not, leaves a record the auditor sees, written
    by the look-up itself; no record, no crop."""
    newest = (await _sightings(seeded, plate="30A12345", limit=1))["data"][0]
    read_id = newest["read_id"]
    other = read_id[:-1] + ("1" if read_id[-1] == "0" else "0")
    async with seeded.client("supervisor") as client:
        assert (await client.get(newest["crop_url"])).status_code == 200
        assert (await client.get(f"/api/reads/{other}/crop.jpg")).status_code == 404
    async with seeded.client("auditor") as auditor:
        page = (await auditor.get("/api/audit", params={"action": "plate.crop"})).json()
    missing, found = page["data"]
    for record in (missing, found):
        assert (record["actor"], record["role"], record["action"]) == ("supervisor", "supervisor",
                                                                       "plate.crop")
        assert record["purpose"] == "plate crop shown"
    assert found["result_count"] == 1 and found["query"]["read_id"] == read_id
    assert datetime.fromisoformat(found["query"]["at"]) == datetime.fromisoformat(newest["captured_at"])
    assert (missing["result_count"], missing["query"]) == (0, {"read_id": other, "at": None})

    await seeded.sql("ALTER TABLE audit_log ADD CONSTRAINT no_more_audit CHECK (audit_id < 0) NOT VALID")
    async with seeded.client("supervisor") as client:
        refused = await client.get(newest["crop_url"])
    assert refused.status_code == 500 and JPEG not in refused.content


async def test_is_this_vehicle_wanted(seeded: ApiServer) -> None:
    async with seeded.client("supervisor") as supervisor:
        stolen = await supervisor.post("/api/watchlist", json={"pattern": "30A-123.45", "reason": "stolen",
                                                               "priority": 1})
        fleet = await supervisor.post("/api/watchlist", json={"pattern": "51F*", "reason": "fleet check",
                                                              "priority": 3})
        gone = await supervisor.post("/api/watchlist", json={"pattern": "29X504899", "reason": "old case"})
        assert {stolen.status_code, fleet.status_code, gone.status_code} == {201}
        assert (await supervisor.post(f"/api/watchlist/{gone.json()['entry_id']}/expire")).status_code == 200

    async def check(plate: str) -> dict:
        async with seeded.client("officer") as client:
            response = await client.get("/api/plates/wanted", params={"plate": plate, "purpose": PURPOSE})
        assert response.status_code == 200, response.text
        return response.json()

    exact = await check("30A12345")
    assert exact["wanted"] and exact["entries"][0]["match_kind"] == "exact"
    assert exact["entries"][0]["reason"] == "stolen" and exact["entries"][0]["priority"] == 1
    lookalike = await check("3OA-I2345")
    assert [e["match_kind"] for e in lookalike["entries"]] == ["lookalike"]
    assert [e["match_kind"] for e in (await check("51F86988"))["entries"]] == ["pattern"]
    assert await check("29X504899") == {"plate": "29X504899", "wanted": False, "entries": []}
    async with seeded.client("officer") as client:
        pattern = await client.get("/api/plates/wanted", params={"plate": "30A*", "purpose": PURPOSE})
    assert pattern.status_code == 422


@pytest.mark.parametrize(("vehicle_class", "has_crop", "microsecond"),
                         [("car", True, 123456), ("unknown", False, 0), ("motorbike", False, 7)])
def test_sightings_are_written_as_their_documented_model(
    vehicle_class: str, has_crop: bool, microsecond: int
) -> None:
    """The page is serialised by hand (the hot path): it must be byte for byte what the
    documented ``SightingPublic`` model gives, so the OpenAPI document stays true."""
    import uuid

    import orjson

    from ioc.api.routes.plates import SightingPublic, public_sighting
    from ioc.storage.plate_reads import Sighting

    sighting = Sighting(
        read_id=uuid.uuid4(), captured_at=datetime(2026, 12, 2, 9, 30, 5, microsecond, tzinfo=UTC),
        camera_id="cam-1", checkpoint_id="cp-1", lane=1, direction="in", text="30A12345",
        display="30A-123.45", confidence=0.87654, vehicle_class=vehicle_class, colour="white", province="30",
        out_of_province=True, has_crop=has_crop, match="lookalike")
    by_hand = orjson.dumps(public_sighting(sighting), option=orjson.OPT_UTC_Z)
    model = SightingPublic.model_validate(orjson.loads(by_hand))
    assert by_hand == model.model_dump_json(exclude_none=True).encode()
    assert ("crop_url" in model.model_fields_set) == has_crop
    assert ("vehicle_class" in model.model_fields_set) == (vehicle_class != "unknown")


async def test_a_plate_typed_with_d_stroke_finds_its_reads(api: ApiServer) -> None:
    """Plates are stored with Đ folded to D: an officer typing the Đ must still find them."""
    read = plate_read("29MD101353")  # detectors.plate_format.canonical("29-MĐ1 013.53")
    await store_reads(api, [read])
    await api.token("officer")
    for typed in ("29-MĐ1 013.53", "29mđ101353"):
        page = await _sightings(api, plate=typed)
        assert [(s["read_id"], s["match"]) for s in page["data"]] == [(str(read.read_id), "exact")]


async def test_a_query_past_the_statement_timeout_is_a_503(
    api_factory: Callable[..., Awaitable[ApiServer]],
) -> None:
    """A look-up the database cancels (IOC_API_STATEMENT_TIMEOUT_S) answers 503 with what to do,
    and frees its connection; here the query waits on a lock the test holds."""
    api = await api_factory(api_statement_timeout_s=1.0)
    await api.token("officer")
    async with await connect(api.conninfo) as blocker:
        await blocker.execute("LOCK TABLE plate_reads IN ACCESS EXCLUSIVE MODE")
        async with api.client("officer") as client:
            started = time.monotonic()
            response = await client.get("/api/plates/sightings",
                                        params={"purpose": PURPOSE, "plate": "*12345", "fuzzy": "true"})
            waited = time.monotonic() - started
        await blocker.rollback()
    assert response.status_code == 503, response.text
    assert "took too long" in response.json()["detail"]
    assert waited < 10
    assert await _audit_count(api) == 0  # the audit row is part of the cancelled statement
    page = await _sightings(api, plate="*12345", fuzzy="true")
    assert page["count"] == 0
    [(asked,)] = await api.sql("SELECT query FROM audit_log WHERE action = 'plate.sightings'")
    assert (asked["kind"], asked["fuzzy"]) == ("partial", True)  # a look-alike pattern search, audited so
