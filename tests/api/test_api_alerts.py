"""Alerts over HTTP: the queue, acknowledge / escalate / resolve with notes, hit
decisions with configured reasons, history, the decisions report, and each alert's crop
and its route sightings' crops (its own copies, kept as long as the alert)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest
from psycopg_pool import PoolTimeout
from served_api import ApiServer, plate_read, read_topic, store_alerts, store_reads, watchlist_alert

from ioc.schemas import Alert, AlertKind, Severity
from ioc.storage.alerts import update_alert_status
from ioc.storage.database import connect, detect_capabilities
from ioc.storage.incidents import append_sightings, lock_incidents, open_incidents
from ioc.storage.retention import run_retention
from streams.watchlist_alerts import ROUTE_KEEP

pytestmark = pytest.mark.parametrize("database_url", ["timescaledb"], indirect=True)


@pytest.fixture
async def staffed(api: ApiServer) -> ApiServer:
    for role in ("officer", "operator", "supervisor"):
        await api.token(role)
    return api


def _camera_alert() -> Alert:
    return Alert(alert_id=uuid.uuid4(), alert_kind=AlertKind.CAMERA_OFFLINE, severity=Severity.WARNING,
                 subject="CP01-CAM2", checkpoint_id="CP01", camera_id="CP01-CAM2")


async def test_queue_newest_first_with_paging_and_filters(staffed: ApiServer) -> None:
    now = datetime.now(UTC)
    hits = [watchlist_alert(f"30A1234{i}").model_copy(update={"raised_at": now - timedelta(minutes=i)})
            for i in range(7)]
    await store_alerts(staffed, [*hits, _camera_alert()])
    async with staffed.client("officer") as client:
        first = (await client.get("/api/alerts", params={"limit": 4, "kind": "watchlist_hit"})).json()
        second = (await client.get("/api/alerts", params={"limit": 4, "kind": "watchlist_hit",
                                                          "cursor": first["next_cursor"]})).json()
        subjects = [a["subject"] for a in first["data"] + second["data"]]
        assert subjects == [f"30A1234{i}" for i in range(7)] and "next_cursor" not in second
        cameras = (await client.get("/api/alerts", params={"kind": "camera_offline"})).json()
        assert [a["subject"] for a in cameras["data"]] == ["CP01-CAM2"]
        one = (await client.get(f"/api/alerts/{hits[0].alert_id}")).json()
        assert one["evidence"]["reason"] == "stolen vehicle" and one["status"] == "new"
        assert (await client.get(f"/api/alerts/{uuid.uuid4()}")).status_code == 404


async def test_acknowledge_escalate_resolve_with_notes(staffed: ApiServer) -> None:
    read = plate_read("30A12345", crop=b"\xff\xd8jpeg")
    await store_reads(staffed, [read])
    alert = watchlist_alert("30A12345", read=read)
    await store_alerts(staffed, [alert])
    url = f"/api/alerts/{alert.alert_id}"
    async with staffed.client("operator") as operator:
        acked = await operator.post(f"{url}/status", json={"status": "acknowledged",
                                                            "note": "  seen on wall "})
        assert acked.status_code == 200 and acked.json()["status"] == "acknowledged"
        assert acked.json()["crop_url"] == f"/api/alerts/{alert.alert_id}/crop.jpg"
        await operator.post(f"{url}/status", json={"status": "escalated", "note": "unit 12 dispatched"})
        resolved = await operator.post(f"{url}/status", json={"status": "resolved"})
        assert resolved.json()["status"] == "resolved"
        again = await operator.post(f"{url}/status", json={"status": "acknowledged"})
        assert again.status_code == 409  # resolved is final
        bad = await operator.post(f"{url}/status", json={"status": "accepted"})
        assert bad.status_code == 422  # decisions are not status changes
        history = (await operator.get(f"{url}/history")).json()
    assert [(h["status"], h["actor"], h.get("note")) for h in history] == [
        ("new", "system", "raised"), ("acknowledged", "operator", "seen on wall"),
        ("escalated", "operator", "unit 12 dispatched"), ("resolved", "operator", None)]
    [(status,)] = await staffed.sql("SELECT status FROM alerts WHERE alert_id = %s", [alert.alert_id])
    assert status == "resolved"


async def test_status_changes_are_published_for_every_console(staffed: ApiServer) -> None:
    alert = watchlist_alert("51F86988")
    await store_alerts(staffed, [alert])
    async with staffed.client("operator") as operator:
        await operator.post(f"/api/alerts/{alert.alert_id}/status", json={"status": "acknowledged"})
    bootstrap = staffed.settings.kafka_bootstrap
    assert bootstrap
    records = await read_topic(bootstrap, staffed.settings.topics.alerts, lambda rs: len(rs) >= 1)
    [published] = [Alert.from_json(r.value) for r in records]
    assert published.alert_id == alert.alert_id and published.status == "acknowledged"
    assert published.evidence["reason"] == "stolen vehicle"


async def test_a_change_is_published_with_its_revision_and_one_not_published_stays_queued(
    api_factory: Callable[..., Awaitable[ApiServer]],
) -> None:
    """Every change moves the alert's revision on, and the API answers and publishes it with it: of
    two states of one alert arriving out of order, a console keeps the higher. A change published is
    off the outbox; one the API could not publish (no broker here; or the process stopped first) was
    lost for good, and now stays queued for the workers to publish."""
    api = await api_factory()
    brokerless = await api_factory(kafka_bootstrap=None)
    await api.token("operator")
    await brokerless.token("operator", "night-operator")
    alert = watchlist_alert("51F86988")
    await store_alerts(api, [alert])
    url = f"/api/alerts/{alert.alert_id}"
    queued = "SELECT revision FROM alert_outbox WHERE alert_id = %s"
    async with api.client("operator") as operator:
        assert (await operator.get(url)).json()["revision"] == 1
        acked = await operator.post(f"{url}/status", json={"status": "acknowledged"})
        assert acked.status_code == 200 and acked.json()["revision"] == 2
        assert await api.sql(queued, [alert.alert_id]) == []
        listed = (await operator.get("/api/alerts")).json()["data"]
        assert [(a["alert_id"], a["revision"]) for a in listed] == [(str(alert.alert_id), 2)]
    records = await read_topic(api.settings.kafka_bootstrap or "", api.settings.topics.alerts,
                               lambda rs: len(rs) >= 1)
    [published] = [Alert.from_json(r.value) for r in records]
    assert (published.status, published.revision) == ("acknowledged", 2)

    async with brokerless.client("night-operator") as operator:
        escalated = await operator.post(f"{url}/status", json={"status": "escalated"})
        assert escalated.status_code == 200 and escalated.json()["revision"] == 3
    assert await api.sql(queued, [alert.alert_id]) == [(3,)]


async def test_status_change_returns_its_connection_before_publishing(
    api_factory: Callable[..., Awaitable[ApiServer]],
) -> None:
    """A broker slow to take the change must not hold a pooled connection meanwhile: with a
    pool of two, the publisher can take both."""
    api = await api_factory(database_pool_size=2)
    for role in ("operator", "supervisor"):
        await api.token(role)
    publisher, pool = api.app.state.publisher, api.app.state.pool
    publish, both_free = publisher.alert_changed, []

    async def taking_every_connection(alert: Alert) -> bool:
        try:
            async with pool.connection(timeout=3) as first, pool.connection(timeout=3) as second:
                await first.execute("SELECT 1")
                await second.execute("SELECT 1")
            both_free.append(True)
        except PoolTimeout:
            both_free.append(False)
        return await publish(alert)

    publisher.alert_changed = taking_every_connection
    alerts = [watchlist_alert("51F86988"), watchlist_alert("30A12345")]
    await store_alerts(api, alerts)
    decision = {"decision": "accepted", "reason": api.settings.hit_decision_reasons[0]}
    async with api.client("operator") as operator, api.client("supervisor") as supervisor:
        acked = await operator.post(f"/api/alerts/{alerts[0].alert_id}/status",
                                    json={"status": "acknowledged"})
        decided = await supervisor.post(f"/api/alerts/{alerts[1].alert_id}/decision", json=decision)
    assert (acked.status_code, decided.status_code) == (200, 200)
    assert both_free == [True, True]


async def test_hit_decisions_take_a_configured_reason(staffed: ApiServer) -> None:
    hit, camera = watchlist_alert("30A12345"), _camera_alert()
    await store_alerts(staffed, [hit, camera])
    async with staffed.client("officer") as officer:
        reasons = (await officer.get("/api/alerts/decision-reasons")).json()
        assert reasons == staffed.settings.hit_decision_reasons
        url = f"/api/alerts/{hit.alert_id}/decision"
        made_up = await officer.post(url, json={"decision": "rejected", "reason": "felt like it"})
        assert made_up.status_code == 422
        accepted = await officer.post(url, json={"decision": "accepted", "reason": reasons[0],
                                                 "note": "driver detained"})
        assert accepted.status_code == 200 and accepted.json()["status"] == "accepted"
        twice = await officer.post(url, json={"decision": "rejected", "reason": reasons[1]})
        assert twice.status_code == 409
        not_a_hit = await officer.post(f"/api/alerts/{camera.alert_id}/decision",
                                       json={"decision": "accepted", "reason": reasons[0]})
        assert not_a_hit.status_code == 409
    async with staffed.client("supervisor") as supervisor:
        window = {"since": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
                  "until": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}
        report = (await supervisor.get("/api/alerts/decisions", params=window)).json()
    assert [(r["alert_id"], r["status"], r["actor"], r["reason"], r["note"]) for r in report["data"]] == [
        (str(hit.alert_id), "accepted", "officer", reasons[0], "driver detained")]
    assert report["count"] == 1 and "next_cursor" not in report


async def test_the_decisions_report_comes_in_pages(staffed: ApiServer) -> None:
    """The report had no limit: a month of a province's decisions came as one answer. Now 100 a
    page by default (500 at most, as the audit trail's), oldest first, each page following on
    from the last by its next_cursor, decisions of one moment (one transaction) neither
    repeated nor skipped."""
    reason = staffed.settings.hit_decision_reasons[0]
    hits = [watchlist_alert(f"30A{i:05d}") for i in range(105)]
    await store_alerts(staffed, hits)
    async with await connect(staffed.conninfo) as conn, conn.transaction():  # one now(): one moment
        for i, hit in enumerate(hits):
            await update_alert_status(conn, hit.alert_id, "rejected" if i % 3 else "accepted", "officer",
                                      reason=reason)
    window = {"since": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
              "until": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}
    async with staffed.client("supervisor") as supervisor:
        default = (await supervisor.get("/api/alerts/decisions", params=window)).json()
        assert default["count"] == len(default["data"]) == 100 and default["next_cursor"]
        rest = (await supervisor.get("/api/alerts/decisions",
                                     params={**window, "cursor": default["next_cursor"]})).json()
        assert rest["count"] == 5 and "next_cursor" not in rest
        paged, cursor = [], None
        while True:
            page = (await supervisor.get("/api/alerts/decisions", params={
                **window, "limit": 40, **({"cursor": cursor} if cursor else {})})).json()
            paged += page["data"]
            if (cursor := page.get("next_cursor")) is None:
                break
        assert paged == default["data"] + rest["data"]
        assert sorted(d["alert_id"] for d in paged) == sorted(str(h.alert_id) for h in hits)
        too_many = await supervisor.get("/api/alerts/decisions", params={**window, "limit": 501})
        forged = await supervisor.get("/api/alerts/decisions",
                                      params={**window, "cursor": "bm90LWEtY3Vyc29y"})
        assert (too_many.status_code, forged.status_code) == (422, 422)


async def test_an_officers_decision_is_not_overturned_by_a_status_change(staffed: ApiServer) -> None:
    """An operator (or supervisor) could take a hit an officer had accepted or rejected back to
    acknowledged or escalated, reopening it for another decision (a rejected one for new
    sightings too). An accepted hit may now only be resolved; a rejected one is closed."""
    accepted, rejected = watchlist_alert("30A12345"), watchlist_alert("51F86988")
    await store_alerts(staffed, [accepted, rejected])
    reason = staffed.settings.hit_decision_reasons[0]
    async with staffed.client("officer") as officer:
        for hit, decision in ((accepted, "accepted"), (rejected, "rejected")):
            decided = await officer.post(f"/api/alerts/{hit.alert_id}/decision",
                                         json={"decision": decision, "reason": reason})
            assert decided.status_code == 200
    async with staffed.client("operator") as operator, staffed.client("supervisor") as supervisor:
        for client in (operator, supervisor):
            for hit, moves in ((accepted, ("acknowledged", "escalated")),
                               (rejected, ("acknowledged", "escalated", "resolved"))):
                for move in moves:
                    refused = await client.post(f"/api/alerts/{hit.alert_id}/status", json={"status": move})
                    assert refused.status_code == 409, (hit.subject, move, refused.text)
                    assert "officer's decision" in refused.json()["detail"]
        rows = await staffed.sql("SELECT alert_id, status FROM alerts")
        assert dict(rows) == {accepted.alert_id: "accepted", rejected.alert_id: "rejected"}
        resolved = await operator.post(f"/api/alerts/{accepted.alert_id}/status",
                                       json={"status": "resolved", "note": "vehicle recovered"})
        assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    history = await staffed.sql("SELECT alert_id, status, actor FROM alert_events WHERE actor <> 'system'"
                                " ORDER BY alert_event_id")
    assert history == [(accepted.alert_id, "accepted", "officer"), (rejected.alert_id, "rejected", "officer"),
                       (accepted.alert_id, "resolved", "operator")]


async def test_report_windows_without_a_time_zone_are_refused(api: ApiServer) -> None:
    """An auditor asking for a day's decisions or audit trail in local time, without the zone,
    got a window seven hours off (read as UTC): refused, as sightings' windows are."""
    calls = [("operator", "/api/alerts", {"since": "2026-12-02T00:00:00"}),
             ("supervisor", "/api/alerts/decisions", {"since": "2026-12-02T00:00:00",
                                                      "until": "2026-12-03T00:00:00"}),
             ("auditor", "/api/audit", {"since": "2026-12-02T00:00:00"}),
             ("officer", "/api/audit/mine", {"until": "2026-12-03T00:00:00"})]
    for role, path, window in calls:
        await api.token(role)
        async with api.client(role) as client:
            naive = await client.get(path, params=window)
            assert naive.status_code == 422 and "timezone" in naive.text, (path, naive.text)
            zoned = await client.get(path, params={k: v + "+07:00" for k, v in window.items()})
            assert zoned.status_code == 200, (path, zoned.text)


async def test_a_hit_is_not_resolved_while_a_worker_adds_a_sighting_to_it(api: ApiServer) -> None:
    """A worker looks for the plate's open incident, then appends the new sighting to it, under
    the incident's lock. An operator resolving it in between left the sighting on a resolved
    alert, and no new alert was raised for the vehicle seen again: the resolve now waits for
    the worker's transaction (after it, the worker finds the incident closed and opens another)."""
    await api.token("operator")
    hit = watchlist_alert("30A12345")
    await store_alerts(api, [hit])
    incident = (uuid.UUID(hit.evidence["entry_id"]), hit.subject)
    async with api.client("operator") as operator:
        async with await connect(api.conninfo) as worker, worker.transaction():
            await lock_incidents(worker, [incident])
            assert await open_incidents(worker, [(incident, hit.raised_at - timedelta(hours=1))]) == {
                incident: hit.alert_id}
            resolving = asyncio.create_task(
                operator.post(f"/api/alerts/{hit.alert_id}/status", json={"status": "resolved"}))
            await asyncio.sleep(1.0)
            assert not resolving.done(), "resolved while a worker was adding a sighting to the incident"
        assert (await resolving).status_code == 200


async def _retention(api: ApiServer, now: datetime, *, alert_days: int) -> None:
    async with await connect(api.conninfo) as conn:
        caps = await detect_capabilities(conn)
        await run_retention(conn, caps, read_days=30, alert_days=alert_days, now=now)
        await conn.commit()


async def test_an_alerts_crop_is_served_as_long_as_the_alert_is_kept(staffed: ApiServer) -> None:
    """Reads and their crops go after 30 days, alerts after a year: an alert's crop link serves
    the alert's own copy, after the read is gone, until the alert goes; each fetch is audited."""
    jpeg = b"\xff\xd8 evidence \xff\xd9"
    read = plate_read("30A12345", crop=jpeg)
    await store_reads(staffed, [read])
    alert = watchlist_alert("30A12345", read=read)
    await store_alerts(staffed, [alert])
    await staffed.token("auditor")
    async with staffed.client("officer") as officer:
        link = (await officer.get(f"/api/alerts/{alert.alert_id}")).json()["crop_url"]
        listed = (await officer.get("/api/alerts")).json()["data"]
        assert [a["crop_url"] for a in listed] == [link] == [f"/api/alerts/{alert.alert_id}/crop.jpg"]

        await _retention(staffed, datetime.now(UTC) + timedelta(days=40), alert_days=365)
        assert await staffed.sql("SELECT count(*) FROM plate_crops") == [(0,)]
        crop = await officer.get(link)
        assert crop.status_code == 200 and crop.content == jpeg
        assert crop.headers["content-type"] == "image/jpeg"
        assert crop.headers["cache-control"] == "private, no-store"

        await _retention(staffed, datetime.now(UTC) + timedelta(days=400), alert_days=365)
        assert (await officer.get(f"/api/alerts/{alert.alert_id}")).status_code == 404
        assert (await officer.get(link)).status_code == 404
    async with staffed.client("auditor") as auditor:
        records = (await auditor.get("/api/audit", params={"action": "alert.crop"})).json()["data"]
    assert [(r["actor"], r["query"], r["result_count"]) for r in records] == [
        ("officer", {"alert_id": str(alert.alert_id)}, 0), ("officer", {"alert_id": str(alert.alert_id)}, 1)]
    assert all(r["purpose"] for r in records)


async def test_a_route_sightings_crop_is_served_as_long_as_the_alert_is_kept(staffed: ApiServer) -> None:
    """The wanted vehicle went on past the first camera: a later sighting's crop is served from the
    incident's own copy after the read is gone, until the alert goes; each fetch is audited."""
    first, later = (plate_read("30A12345", checkpoint_id=cp, camera_id=f"{cp}-CAM1",
                               crop=b"\xff\xd8" + cp.encode()) for cp in ("CP01", "CP02"))
    await store_reads(staffed, [first, later])
    alert = watchlist_alert("30A12345", read=first)
    await store_alerts(staffed, [alert])
    async with await connect(staffed.conninfo) as conn:
        seen = {"read_id": str(later.read_id), "captured_at": later.captured_at.isoformat(),
                "checkpoint_id": later.checkpoint_id}
        await append_sightings(conn, [(alert.alert_id, [seen])], keep=ROUTE_KEEP)
        await conn.commit()
    link, stranger = f"/api/alerts/{alert.alert_id}/sightings/{later.read_id}/crop.jpg", uuid.uuid4()
    await staffed.token("auditor")
    async with staffed.client("officer") as officer:
        await _retention(staffed, datetime.now(UTC) + timedelta(days=40), alert_days=365)
        assert await staffed.sql("SELECT count(*) FROM plate_crops") == [(0,)]
        crop = await officer.get(link)
        assert crop.status_code == 200 and crop.content == later.crop_jpeg
        assert crop.headers["content-type"] == "image/jpeg"
        assert crop.headers["cache-control"] == "private, no-store"
        elsewhere = await officer.get(f"/api/alerts/{alert.alert_id}/sightings/{stranger}/crop.jpg")
        assert elsewhere.status_code == 404

        await _retention(staffed, datetime.now(UTC) + timedelta(days=400), alert_days=365)
        assert (await officer.get(link)).status_code == 404
        assert await staffed.sql("SELECT count(*) FROM sighting_evidence") == [(0,)]
    async with staffed.client("auditor") as auditor:
        records = (await auditor.get("/api/audit", params={"action": "alert.sighting_crop"})).json()["data"]
    assert [(r["actor"], r["query"]["read_id"], r["result_count"]) for r in records] == [
        ("officer", str(later.read_id), 0), ("officer", str(stranger), 0),
        ("officer", str(later.read_id), 1)]
    assert all(r["query"]["alert_id"] == str(alert.alert_id) and r["purpose"] for r in records)


async def test_an_alert_without_a_crop_links_none_or_answers_404(staffed: ApiServer) -> None:
    bare = plate_read("51F86988")
    await store_reads(staffed, [bare])
    hit, camera = watchlist_alert("51F86988", read=bare), _camera_alert()
    await store_alerts(staffed, [hit, camera])
    async with staffed.client("operator") as operator:
        assert "crop_url" not in (await operator.get(f"/api/alerts/{camera.alert_id}")).json()
        link = (await operator.get(f"/api/alerts/{hit.alert_id}")).json()["crop_url"]
        assert (await operator.get(link)).status_code == 404
        assert (await operator.get(f"/api/alerts/{uuid.uuid4()}/crop.jpg")).status_code == 404


async def test_every_refusal_of_a_change_is_in_the_openapi_document(staffed: ApiServer) -> None:
    """A decision on a closed or decided hit, or on an alert that is not a hit, answers 409, but
    the decision's OpenAPI answers listed only 200 and 422: a client generated from the document
    had no case for the officer's most common refusal (the hit was already decided)."""
    hit, camera = watchlist_alert("30A12345"), _camera_alert()
    await store_alerts(staffed, [hit, camera])
    reason = staffed.settings.hit_decision_reasons[0]
    decision, change = "/api/alerts/{alert_id}/decision", "/api/alerts/{alert_id}/status"
    answers: list[tuple[str, int, str]] = []
    async with staffed.client("officer") as officer:
        document = (await officer.get("/openapi.json")).json()

        async def decide(alert_id: uuid.UUID, verdict: str) -> None:
            answer = await officer.post(decision.format(alert_id=alert_id),
                                        json={"decision": verdict, "reason": reason})
            answers.append((decision, answer.status_code, answer.text))

        await decide(hit.alert_id, "rejected")
        await decide(hit.alert_id, "accepted")       # rejected: closed
        await decide(camera.alert_id, "accepted")    # not a hit
        await decide(uuid.uuid4(), "accepted")       # no such alert
    async with staffed.client("operator") as operator:
        for alert_id in (hit.alert_id, uuid.uuid4()):
            answer = await operator.post(change.format(alert_id=alert_id), json={"status": "acknowledged"})
            answers.append((change, answer.status_code, answer.text))
    assert [code for _, code, _ in answers] == [200, 409, 409, 404, 409, 404], answers
    assert "rejected by an officer's decision" in answers[1][2]
    for path, code, body in answers:
        documented = document["paths"][path]["post"]["responses"]
        assert str(code) in documented, (path, code, body, sorted(documented))


async def test_the_history_of_an_alert_that_does_not_exist_is_404(staffed: ApiServer) -> None:
    """GET /api/alerts/{id} answered 404 for an unknown alert while its history answered 200 with
    an empty list, as if the alert existed and nothing had happened to it. A stored alert with no
    history rows still answers its (empty) list."""
    alert = watchlist_alert("30A12345")
    await store_alerts(staffed, [alert])
    await staffed.sql("DELETE FROM alert_events WHERE alert_id = %s", [alert.alert_id])
    async with staffed.client("operator") as operator:
        document = (await operator.get("/openapi.json")).json()
        unknown = await operator.get(f"/api/alerts/{uuid.uuid4()}/history")
        bare = await operator.get(f"/api/alerts/{alert.alert_id}/history")
    assert (unknown.status_code, unknown.json()) == (404, {"detail": "no such alert"})
    assert (bare.status_code, bare.json()) == (200, [])
    assert "404" in document["paths"]["/api/alerts/{alert_id}/history"]["get"]["responses"]
