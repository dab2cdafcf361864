"""Watchlist management over HTTP: add, update, expire, CSV import/export, the audit
trail of changes, and every change published to the real compacted topic."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import pytest
from aiokafka.errors import KafkaConnectionError
from jsonschema import Draft202012Validator
from prometheus_client import REGISTRY
from served_api import ApiServer, read_topic

from ioc import watchlist_sync
from ioc.api import publishing as publishing_module
from ioc.schemas import WatchlistEntry
from ioc.storage.database import connect, open_pool
from ioc.storage.watchlist import add_entry, expire_entry

pytestmark = pytest.mark.parametrize("database_url", ["timescaledb"], indirect=True)


@pytest.fixture
async def editor(api: ApiServer) -> ApiServer:
    await api.token("operator")
    await api.token("auditor")
    return api


async def test_add_update_expire(editor: ApiServer) -> None:
    async with editor.client("operator") as client:
        created = await client.post("/api/watchlist", json={"pattern": "30a-123.45",
                                                            "reason": "Xe bị mất cắp", "priority": 2})
        assert created.status_code == 201, created.text
        entry = created.json()
        assert entry["pattern"] == "30A12345" and entry["added_by"] == "operator" and entry["active"]
        entry_id = entry["entry_id"]
        changed = await client.patch(f"/api/watchlist/{entry_id}", json={"priority": 1, "reason": "armed"})
        assert changed.json()["priority"] == 1 and changed.json()["reason"] == "armed"
        assert changed.json()["pattern"] == "30A12345" and changed.json()["added_by"] == "operator"
        expired = await client.post(f"/api/watchlist/{entry_id}/expire", json={"note": "vehicle recovered"})
        assert expired.status_code == 200 and not expired.json()["active"]
        assert expired.json()["expires_at"] is not None
        assert (await client.get("/api/watchlist")).json()["count"] == 0
        listed = (await client.get("/api/watchlist", params={"include_inactive": "true"})).json()
        assert [e["entry_id"] for e in listed["data"]] == [entry_id]
        assert (await client.get(f"/api/watchlist/{entry_id}")).json()["active"] is False
        for bad in ({"pattern": "*", "reason": "x"}, {"pattern": "**?", "reason": "x"},
                    {"pattern": "30A12345", "reason": "x", "priority": 9},
                    {"pattern": "30A12345", "reason": "x", "expires_at": "2030-01-01T00:00:00"},
                    {"pattern": "30A12345", "reason": " "}, {"pattern": "30A12345", "reason": "\t\u3000"}):
            assert (await client.post("/api/watchlist", json=bad)).status_code == 422, bad
        assert (await client.patch(f"/api/watchlist/{entry_id}", json={"reason": "  "})).status_code == 422
        for null in ("pattern", "reason", "priority", "active"):  # only expires_at may be null
            refused = await client.patch(f"/api/watchlist/{entry_id}", json={null: None})
            assert refused.status_code == 422, (null, refused.text)
        assert (await client.get(f"/api/watchlist/{entry_id}")).json()["pattern"] == "30A12345"
        missing = "00000000-0000-0000-0000-000000000000"
        assert (await client.patch(f"/api/watchlist/{missing}", json={"priority": 1})).status_code == 404
        assert (await client.post(f"/api/watchlist/{missing}/expire")).status_code == 404
    actions = await editor.sql("SELECT action, actor, purpose FROM audit_log ORDER BY audit_id")
    assert actions == [("watchlist.add", "operator", "Xe bị mất cắp"),
                       ("watchlist.update", "operator", "armed"),
                       ("watchlist.expire", "operator", "vehicle recovered")]


async def test_an_entry_past_its_expiry_is_not_put_in_force(editor: ApiServer) -> None:
    """Made active again after "expire", or added with a past expiry, an entry showed as active
    while the workers and "is it wanted?" ignored it: refused, with what to do instead."""
    async with editor.client("operator") as client:
        past = {"pattern": "30A12345", "reason": "x", "expires_at": "2020-01-01T00:00:00+00:00"}
        added = await client.post("/api/watchlist", json=past)
        assert added.status_code == 422 and "is past" in added.text
        entry_id = (await client.post("/api/watchlist", json={"pattern": "30A12345", "reason": "x"})).json()[
            "entry_id"]
        await client.post(f"/api/watchlist/{entry_id}/expire")
        revived = await client.patch(f"/api/watchlist/{entry_id}", json={"active": True})
        assert revived.status_code == 422 and "give a later expires_at" in revived.text
        edited = await client.patch(f"/api/watchlist/{entry_id}", json={"reason": "recovered"})
        assert edited.status_code == 200  # an entry out of force may still be edited
        again = await client.patch(f"/api/watchlist/{entry_id}", json={"active": True, "expires_at": None})
        assert again.status_code == 200 and again.json()["active"] and again.json()["expires_at"] is None
    await editor.token("officer")
    async with editor.client("officer") as client:
        wanted = await client.get("/api/plates/wanted", params={"plate": "30A12345", "purpose": "test"})
        assert wanted.status_code == 200 and wanted.json()["wanted"], wanted.text


async def test_a_change_whose_publish_was_lost_is_published_by_the_next_api_process(
    api: ApiServer, api_factory: Callable[..., Awaitable[ApiServer]]
) -> None:
    """An entry committed by an API process that stopped before publishing it (a crash between
    the two, or Kafka down until the process was replaced): the workers would never learn of
    it. The next API process to start publishes the last day's changes again."""
    entry = WatchlistEntry(pattern="51F86988", reason="committed, never published")
    async with await connect(api.conninfo) as conn:
        await add_entry(conn, entry)
        await conn.commit()
    await api_factory()  # the replacement process
    key = str(entry.entry_id).encode()
    records = await read_topic(api.settings.kafka_bootstrap or "", api.settings.topics.watchlist,
                               lambda got: any(r.key == key for r in got), timeout=30)
    assert any(r.key == key and b"51F86988" in r.value for r in records)


async def test_an_import_answers_once_stored_and_is_published_after(
    editor: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import published its entries inside the request, one produce round trip each: 10,000 rows
    held it about 16 s, longer with a broker farther away, and a proxy's timeout could cut it off.
    Now it answers once they are stored; the publisher publishes them right after."""
    sending, go_on = asyncio.Event(), asyncio.Event()
    sent = watchlist_sync.publish_entries  # the real send

    async def held_send(producer, topic, entries):  # noqa: ANN001, ANN202 - as publish_entries
        entries = list(entries)
        sending.set()
        await go_on.wait()
        await sent(producer, topic, entries)

    monkeypatch.setattr(watchlist_sync, "publish_entries", held_send)
    async with editor.client("operator") as client:
        imported = await asyncio.wait_for(client.post(
            "/api/watchlist/import", content=b"pattern,reason\n51F86988,stolen\n29A88888,stolen\n",
            headers={"content-type": "text/csv"}), 10)
        assert imported.status_code == 200 and imported.json()["added"] == 2, imported.text
    await asyncio.wait_for(sending.wait(), 10)  # published without a request asking
    go_on.set()

    def patterns(records: list) -> set[str]:
        return {json.loads(r.value)["pattern"] for r in records if r.value}

    records = await read_topic(editor.settings.kafka_bootstrap or "", editor.settings.topics.watchlist,
                               lambda got: patterns(got) >= {"51F86988", "29A88888"})
    assert patterns(records) >= {"51F86988", "29A88888"}


def _hold_the_first_send(monkeypatch: pytest.MonkeyPatch) -> tuple[asyncio.Event, asyncio.Event]:
    """Hold the first watchlist publish (``publish_entries``) until the second event is set; the
    first is set once it is held."""
    holding, go_on = asyncio.Event(), asyncio.Event()
    sent = watchlist_sync.publish_entries  # the real send

    async def held_first(producer, topic, entries):  # noqa: ANN001, ANN202 - as publish_entries
        entries = list(entries)
        if not holding.is_set():
            holding.set()
            await go_on.wait()
        await sent(producer, topic, entries)

    monkeypatch.setattr(watchlist_sync, "publish_entries", held_first)
    return holding, go_on


async def test_a_change_asked_for_while_a_resync_runs_is_published_by_the_next(
    editor: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import committed while the publisher was resyncing (the start-up one, or the import
    before it: 10,000 entries take seconds) asked for a publish the running resync then cleared
    with its own: the second file's entries never reached the workers."""
    await editor.app.state.publisher.stop()  # its own start-up resync would publish both
    first = WatchlistEntry(pattern="29A99998", reason="in the resync")
    later = WatchlistEntry(pattern="29A99997", reason="imported while it ran")
    async with await connect(editor.conninfo) as conn:
        await add_entry(conn, first)
        await conn.commit()
    resyncing, go_on = _hold_the_first_send(monkeypatch)  # the start-up resync's, while it sends
    monkeypatch.setattr(publishing_module, "RESYNC_EVERY_S", 0.05)
    pool = await open_pool(editor.conninfo, min_size=1, max_size=4)
    publisher = publishing_module.EventPublisher(editor.settings, pool)
    try:
        await publisher.start()
        await asyncio.wait_for(resyncing.wait(), 10)
        asked_at = datetime.now(UTC)
        async with await connect(editor.conninfo) as conn:
            await add_entry(conn, later)
            await conn.commit()
        publisher.publish_soon(asked_at)  # as the import route does
        go_on.set()
        keys = {str(e.entry_id).encode() for e in (first, later)}
        records = await read_topic(editor.settings.kafka_bootstrap or "", editor.settings.topics.watchlist,
                                   lambda got: keys <= {r.key for r in got}, timeout=15)
    finally:
        await publisher.stop()
        await pool.close()
    assert keys <= {r.key for r in records}


async def _until(check: Callable[[], bool], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.05)


async def test_a_change_not_published_says_how_long_it_has_waited(
    editor: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing told that watchlist changes were not reaching the workers (a newly wanted plate not
    matched): a failed resync was only logged. ``ioc_watchlist_publish_behind_seconds`` is how long the
    oldest change not yet published has waited, 0 once published, and every failed try counts in
    ``ioc_watchlist_publish_failures_total``, the resyncs' included."""
    await editor.app.state.publisher.stop()
    monkeypatch.setattr(publishing_module, "RESYNC_EVERY_S", 0.05)
    broker_away = False
    sent = watchlist_sync.publish_entries  # the real send

    async def refused_while_away(producer, topic, entries):  # noqa: ANN001, ANN202 - as publish_entries
        if broker_away:
            raise KafkaConnectionError("broker away")
        await sent(producer, topic, entries)

    monkeypatch.setattr(watchlist_sync, "publish_entries", refused_while_away)

    def behind() -> float:
        value = REGISTRY.get_sample_value("ioc_watchlist_publish_behind_seconds")
        assert value is not None, "ioc_watchlist_publish_behind_seconds is not exported"
        return value

    def failures() -> float:
        return REGISTRY.get_sample_value("ioc_watchlist_publish_failures_total") or 0.0

    entry = WatchlistEntry(pattern="29A77777", reason="stolen while the broker was away")
    pool = await open_pool(editor.conninfo, min_size=1, max_size=4)
    publisher = publishing_module.EventPublisher(editor.settings, pool)
    try:
        await publisher.start()
        await _until(lambda: behind() == 0)  # the start-up resync published the last day
        async with await connect(editor.conninfo) as conn:
            await add_entry(conn, entry)
            await conn.commit()
        broker_away, failed_before = True, failures()
        assert not await publisher.watchlist_changed([entry])
        await asyncio.sleep(0.5)  # about ten resyncs, each refused
        assert behind() >= 0.5
        assert failures() >= failed_before + 3, "the failed resyncs are not counted"
        broker_away = False
        await _until(lambda: behind() == 0)
    finally:
        await publisher.stop()
        await pool.close()
    key = str(entry.entry_id).encode()
    records = await read_topic(editor.settings.kafka_bootstrap or "", editor.settings.topics.watchlist,
                               lambda got: key in {r.key for r in got})
    assert key in {r.key for r in records}


async def test_as_many_changes_at_once_as_the_pool_holds_are_all_published(
    api_factory: Callable[..., Awaitable[ApiServer]],
) -> None:
    """Each change held its request's connection while the publisher took another to read the
    entry as stored: with as many changes at once as the pool holds, every one of them waited
    for a connection none would give back, until the pool's timeout (30 s; meanwhile every
    other request of the process waited too), and then the publish failed. Now each change
    hands its connection back before publishing."""
    api = await api_factory(database_pool_size=2)
    await api.token("operator")
    async with api.client("operator") as client:
        made = [(await client.post("/api/watchlist", json={"pattern": p, "reason": "stolen"})).json()
                for p in ("30A12340", "30A12341")]
        csv_body, as_csv = "pattern,reason\n51F86988,stolen\n29A88888,stolen\n", {"content-type": "text/csv"}
        changes = [client.post("/api/watchlist", json={"pattern": f"43A2468{i}", "reason": "stolen"})
                   for i in range(2)]
        changes += [client.patch(f"/api/watchlist/{made[0]['entry_id']}", json={"priority": 1}),
                    client.post(f"/api/watchlist/{made[1]['entry_id']}/expire"),
                    client.post("/api/watchlist/import", content=csv_body, headers=as_csv)]
        answers = await asyncio.wait_for(asyncio.gather(*changes), 20)
        assert [a.status_code for a in answers] == [201, 201, 200, 200, 200], [a.text for a in answers]
    patched, expired = (m["entry_id"].encode() for m in made)

    def state(records: list) -> tuple[set[str], bool, bool]:
        latest = {r.key: r.value for r in records}
        patterns = {json.loads(value)["pattern"] for value in latest.values() if value}
        return (patterns, latest.get(expired, b"") is None,
                bool(latest.get(patched)) and json.loads(latest[patched])["priority"] == 1)

    wanted = ({"30A12340", "43A24680", "43A24681", "51F86988", "29A88888"}, True, True)
    records = await read_topic(api.settings.kafka_bootstrap or "", api.settings.topics.watchlist,
                               lambda got: state(got) == wanted)
    assert state(records) == wanted  # new, updated, imported, and the expired one's tombstone


async def test_changes_reach_the_compacted_topic(editor: ApiServer) -> None:
    topic = editor.settings.topics.watchlist
    bootstrap = editor.settings.kafka_bootstrap
    assert bootstrap
    async with editor.client("operator") as client:
        entry = (await client.post("/api/watchlist", json={"pattern": "51F86988", "reason": "stolen"})).json()
    key = entry["entry_id"].encode()
    records = await read_topic(bootstrap, topic, lambda rs: any(r.key == key for r in rs))
    [published] = [r for r in records if r.key == key]
    value = json.loads(published.value)
    assert value["pattern"] == "51F86988" and value["reason"] == "stolen" and value["active"] is True

    async with editor.client("operator") as client:
        await client.post(f"/api/watchlist/{entry['entry_id']}/expire")
    records = await read_topic(bootstrap, topic, lambda rs: sum(r.key == key for r in rs) == 2)
    assert [r.value for r in records if r.key == key][-1] is None  # tombstone: workers drop it


async def test_csv_export_and_import_round_trip(editor: ApiServer) -> None:
    async with editor.client("operator") as client:
        kept = (await client.post("/api/watchlist", json={"pattern": "29X504899", "reason": "=HYPERLINK(1)",
                                                          "priority": 4})).json()
        exported = await client.get("/api/watchlist/export.csv")
        assert exported.headers["content-type"].startswith("text/csv")
        text = exported.content.decode("utf-8-sig")
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [r["pattern"] for r in rows] == ["29X504899"]
        assert rows[0]["reason"] == "'=HYPERLINK(1)"  # a spreadsheet shows it, never runs it

        upload = io.StringIO()
        writer = csv.writer(upload)
        writer.writerow(["entry_id", "pattern", "reason", "priority", "expires_at"])
        writer.writerow([kept["entry_id"], "29X504899", "=HYPERLINK(1)", "1", ""])
        writer.writerow(["", "30a-999.99", "Xe gây tai nạn bỏ chạy", "2", "2031-01-01T00:00:00+07:00"])
        writer.writerow(["", "51G*", "fleet", "", ""])
        imported = await client.post("/api/watchlist/import", content=upload.getvalue().encode("utf-8-sig"),
                                     headers={"content-type": "text/csv"})
        assert imported.status_code == 200, imported.text
        assert imported.json() == {"added": 2, "updated": 1, "errors": []}
        entries = {e["pattern"]: e for e in (await client.get("/api/watchlist")).json()["data"]}
        assert set(entries) == {"29X504899", "30A99999", "51G*"}
        assert entries["29X504899"]["priority"] == 1 and entries["29X504899"]["reason"] == "=HYPERLINK(1)"
        assert entries["30A99999"]["expires_at"].startswith("2030-12-31T17:00:00")
        # each imported entry audited as POST and PATCH audit theirs, its reason the purpose
        audited = await editor.sql("SELECT action, query->>'pattern', purpose FROM audit_log"
                                   " WHERE action LIKE 'watchlist.%%' ORDER BY audit_id")
        assert audited[1:] == [("watchlist.export", None, "watchlist CSV export"),
                               ("watchlist.update", "29X504899", "=HYPERLINK(1)"),
                               ("watchlist.add", "30A99999", "Xe gây tai nạn bỏ chạy"),
                               ("watchlist.add", "51G*", "fleet"),
                               ("watchlist.import", None, "watchlist CSV import")]

        bad = "pattern,reason,priority\n30A11111,ok,2\n*,too short,2\n30A22222,bad priority,7\n"
        refused = await client.post("/api/watchlist/import", content=bad.encode(),
                                    headers={"content-type": "text/csv"})
        assert refused.status_code == 422
        assert [e["line"] for e in refused.json()["errors"]] == [3, 4]
        assert "30A11111" not in {e["pattern"] for e in (await client.get("/api/watchlist")).json()["data"]}
        no_header = await client.post("/api/watchlist/import", content=b"30A1,x\n",
                                      headers={"content-type": "text/csv"})
        assert no_header.status_code == 422
    async with editor.client("auditor") as auditor:
        assert (await auditor.get("/api/watchlist/export.csv")).status_code == 200
        refused = await auditor.post("/api/watchlist", json={"pattern": "30A1", "reason": "x"})
        assert refused.status_code == 403


async def test_every_export_is_audited(editor: ApiServer) -> None:
    """The export hands over every wanted plate and why, in bulk, but left no audit record while a
    single "is it wanted?" look-up leaves one. Now one record per export, by who asked, with what
    was asked (include_inactive) and how many entries went out."""
    async with editor.client("operator") as client:
        for pattern, active in (("29X504899", True), ("30A12345", True), ("51G*", False)):
            created = await client.post("/api/watchlist", json={"pattern": pattern, "reason": "export"})
            if not active:
                await client.patch(f"/api/watchlist/{created.json()['entry_id']}", json={"active": False})
        assert (await client.get("/api/watchlist/export.csv")).status_code == 200
    async with editor.client("auditor") as auditor:
        everything = await auditor.get("/api/watchlist/export.csv", params={"include_inactive": "true"})
        assert everything.status_code == 200
    rows = list(csv.DictReader(io.StringIO(everything.content.decode("utf-8-sig"))))
    assert len(rows) == 3
    exports = await editor.sql("SELECT actor, role, query, purpose, result_count FROM audit_log"
                               " WHERE action = 'watchlist.export' ORDER BY audit_id")
    assert exports == [("operator", "operator", {"include_inactive": False}, "watchlist CSV export", 2),
                       ("auditor", "auditor", {"include_inactive": True}, "watchlist CSV export", 3)]


async def test_an_imports_refusals_are_documented_with_their_bodies(editor: ApiServer) -> None:
    """The import's 422 was documented by a description only, though its body is the row errors
    (an ImportResult) or, for a file that cannot be read at all, one message; its 413 (too many
    rows, or a body over the size limit) was not documented. Each answer's body must fit the
    schema the document gives its status and content type."""
    limit = editor.settings.api_max_body_bytes
    async with editor.client("operator") as client:
        document = (await client.get("/openapi.json")).json()

        async def imported(body: bytes) -> tuple[int, str, object]:
            answer = await client.post("/api/watchlist/import", content=body,
                                       headers={"content-type": "text/csv"})
            media = answer.headers["content-type"].split(";")[0]
            return answer.status_code, media, answer.json() if media == "application/json" else answer.text

        answers = [await imported(b"pattern,reason\n30A11111,ok\n*,too short\n"),
                   await imported("pattern,reason\n30A11111,Café\n".encode("latin-1")),
                   await imported(b"30A11111,no header\n"),
                   await imported(b"pattern,reason\n" + b"".join(b"30A%05d,x\n" % i for i in range(10_001))),
                   await imported(b"pattern,reason\n" + b"30A12345,x\n" * (limit // 10))]
    assert [(code, media) for code, media, _ in answers] == [
        (422, "application/json"), (422, "application/json"), (422, "application/json"),
        (413, "application/json"), (413, "text/plain")], answers
    responses = document["paths"]["/api/watchlist/import"]["post"]["responses"]
    for code, media, body in answers:
        assert str(code) in responses, (code, sorted(responses))
        schema = responses[str(code)].get("content", {}).get(media, {}).get("schema")
        assert schema is not None, (code, media, responses[str(code)])
        validator = Draft202012Validator({**schema, "components": document["components"]})
        assert not list(validator.iter_errors(body)), (code, body, schema)
        assert list(validator.iter_errors({"errors": "none"})), schema  # a schema that says something


async def test_an_import_refuses_rows_that_would_never_alert_and_keeps_reasons_as_written(
    editor: ApiServer,
) -> None:
    """An imported row in force but past its expiry, or with an `active` cell that is not a yes or
    a no, had been stored (active but ignored by the workers, or silently inactive): the list showed
    a wanted plate that would never raise an alert. POST refuses the first with a 422; the import now
    refuses both rows, naming the line. A reason's leading apostrophe was stripped however it
    stood; only the one the export puts before a formula character goes now."""
    async with editor.client("operator") as client:
        async def imported(text: str) -> dict:
            answer = await client.post("/api/watchlist/import", content=text.encode(),
                                       headers={"content-type": "text/csv"})
            return {"status": answer.status_code, **answer.json()}

        never = await imported("pattern,reason,expires_at,active\n"
                               "29A11111,ok,2031-01-01T00:00:00Z,true\n"
                               "29A22222,stolen,2020-01-01T00:00:00Z,true\n"
                               "29A33333,stolen,,có\n"
                               "29A44444,was wanted,2020-01-01T00:00:00Z,no\n")
        assert never["status"] == 422, never
        assert [e["line"] for e in never["errors"]] == [3, 4]
        assert "past" in never["errors"][0]["error"] and "active" in never["errors"][1]["error"]
        kept = await imported("pattern,reason,active\n29A55555,'Hot' car seen at market,1\n"
                              "29A66666,'=shown as text,YES\n29A77777,stolen,0\n")
        assert kept["status"] == 200 and kept["added"] == 3, kept
        listed = await client.get("/api/watchlist", params={"include_inactive": "true"})
        entries = {e["pattern"]: e for e in listed.json()["data"]}
        assert entries["29A55555"]["reason"] == "'Hot' car seen at market"
        assert entries["29A66666"]["reason"] == "=shown as text"
        assert [entries[p]["active"] for p in ("29A55555", "29A66666", "29A77777")] == [True, True, False]


async def test_changes_to_different_fields_at_once_all_stay(editor: ApiServer) -> None:
    """Each PATCH reads the entry, merges its fields and writes it back, under a row lock: two
    at once had each written back the other's field as it was."""
    async with editor.client("operator") as client:
        entry = (await client.post("/api/watchlist", json={"pattern": "30A55555", "reason": "first"})).json()
        url = f"/api/watchlist/{entry['entry_id']}"
        changes = [{"priority": 1}, {"reason": "second"}, {"expires_at": "2031-01-01T00:00:00+00:00"},
                   {"pattern": "30A55556"}, {"active": False}]
        answers = await asyncio.gather(*(client.patch(url, json=change) for change in changes))
        assert [answer.status_code for answer in answers] == [200] * len(changes)
        final = (await client.get(url)).json()
    kept = (final["priority"], final["reason"], final["pattern"], final["active"])
    assert kept == (1, "second", "30A55556", False)
    assert final["expires_at"].startswith("2031-01-01T00:00:00")


async def test_a_resync_never_publishes_an_older_state_after_a_newer_one(
    editor: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resync read an entry, in force; the entry was expired and its tombstone published; the
    resync's slower publish came after it, and every worker (and compaction) kept the entry in force."""
    entry = WatchlistEntry(pattern="29A99999", reason="recovered meanwhile")
    async with await connect(editor.conninfo) as conn:
        await add_entry(conn, entry)
        await conn.commit()
    resync_reading, go_on = _hold_the_first_send(monkeypatch)  # the resync's, after reading
    monkeypatch.setattr(publishing_module, "RESYNC_EVERY_S", 0.05)
    pool = await open_pool(editor.conninfo, min_size=1, max_size=4)
    publisher = publishing_module.EventPublisher(editor.settings, pool)
    try:
        await publisher.start()  # resyncs the last day: the entry, in force
        await asyncio.wait_for(resync_reading.wait(), 10)
        async with await connect(editor.conninfo) as conn:
            expired = await expire_entry(conn, entry.entry_id, actor="operator")
            await conn.commit()
        assert expired is not None and not expired.active
        change = asyncio.create_task(publisher.watchlist_changed([expired]))
        await asyncio.sleep(0.5)
        go_on.set()
        assert await asyncio.wait_for(change, 10)
    finally:
        await publisher.stop()
        await pool.close()
    key = str(entry.entry_id).encode()
    records = await read_topic(editor.settings.kafka_bootstrap or "", editor.settings.topics.watchlist,
                               lambda got: sum(r.key == key for r in got) >= 2, timeout=15)
    assert [r.value for r in records if r.key == key][-1] is None  # the tombstone stays last
