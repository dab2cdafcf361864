"""Access, beyond tests/api/test_roles.py's role x endpoint matrix: every kind of bad
token and Authorization header on every protected endpoint; one officer's audit
history out of another's reach; audit records that no API route (and not the API's
own database connection) can change or remove.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from served_api import ROLES, ApiServer

from ioc.api.security import AUDIENCE, ISSUER, Principal, issue_token
from ioc.storage.database import detect_capabilities
from ioc.storage.retention import run_retention

pytestmark = pytest.mark.parametrize("database_url", ["timescaledb"], indirect=True)
Record = Callable[..., None]  # the reliability_record fixture

PURPOSE = "case 2026/117 access test"
UUID = "00000000-0000-4000-8000-000000000000"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _token(header: dict[str, Any], claims: dict[str, Any], secret: str | None) -> str:
    """A compact JWS as an attacker (``secret=None``: no signature) or the issuer would write it."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    if secret is None:
        return signing_input + "."
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64(signature)


def _claims(username: str, role: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": username, "role": role, "iat": now, "exp": now + 600,
              "jti": "x"}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _bad_credentials(secret: str) -> dict[str, dict[str, str | bytes]]:
    """Name -> request headers that must not authenticate, on any endpoint.

    Tokens name the real user ``officer`` (so only the token itself is wrong) or try
    to become ``admin``; the last few are signed with the real secret, as a leaked
    signing key or an issuer bug would produce them, and still must not pass.
    """
    hs256 = {"alg": "HS256", "typ": "JWT"}
    now = int(time.time())
    good = issue_token(Principal("officer", "officer"), secret=secret, ttl_s=600)
    header, claims, signature = good.split(".")
    escalated = _b64(json.dumps(_claims("officer", "admin")).encode())
    become_admin = _b64(json.dumps(_claims("admin", "admin")).encode())
    tokens = {
        "expired": issue_token(Principal("officer", "officer"), secret=secret, ttl_s=-1),
        "expired an hour ago": _token(hs256, _claims("officer", "officer", iat=now - 7200, exp=now - 3600),
                                      secret),
        "issued an hour ahead": _token(hs256, _claims("officer", "officer", iat=now + 3600, exp=now + 7200),
                                       secret),
        "other secret": issue_token(Principal("officer", "officer"), secret="not-the-secret", ttl_s=600),
        "empty secret": _token(hs256, _claims("officer", "officer"), ""),
        "alg none, no signature": _token({"alg": "none", "typ": "JWT"}, _claims("officer", "officer"), None),
        "alg None, no signature": _token({"alg": "None"}, _claims("admin", "admin"), None),
        "alg none, real signature": f"{_b64(json.dumps({'alg': 'none'}).encode())}.{claims}.{signature}",
        "alg none, signed": _token({"alg": "none", "typ": "JWT"}, _claims("officer", "officer"), secret),
        "alg HS512 header": _token({"alg": "HS512", "typ": "JWT"}, _claims("officer", "officer"), secret),
        "role escalated in payload": f"{header}.{escalated}.{signature}",
        "subject changed in payload": f"{header}.{become_admin}.{signature}",
        "signature stripped": f"{header}.{claims}.",
        "signature of another token": f"{header}.{escalated}."
                                      + issue_token(Principal("officer", "officer"), secret=secret,
                                                    ttl_s=60).split(".")[2],
        "payload not JSON": f"{header}.{_b64(b'not json')}.{signature}",
        "wrong issuer": _token(hs256, _claims("officer", "officer", iss="someone-else"), secret),
        "wrong audience": _token(hs256, _claims("officer", "officer", aud="another-api"), secret),
        "no expiry": _token(hs256, _claims("officer", "officer", exp=None), secret),
        "expiry not a number": _token(hs256, _claims("officer", "officer", exp="never"), secret),
        "unknown user": _token(hs256, _claims("ghost", "admin"), secret),
        "claims a list": _token(hs256, [1, 2], secret),  # type: ignore[arg-type]
        "two segments": f"{header}.{claims}",
        "four segments": f"{good}.{signature}",
        "garbage": "not.a.token",
        "empty segments": "..",
        "10 kB": "a" * 10_000,
        "non-ASCII": "ŧøķēñ.ŧøķēñ.ŧøķēñ",
    }
    # bytes, so a non-ASCII token goes out as its UTF-8 (an HTTP client would refuse the str)
    headers: dict[str, dict[str, str | bytes]] = {
        name: {"Authorization": f"Bearer {token}".encode()} for name, token in tokens.items()}
    headers |= {
        "no Authorization header": {},
        "empty header": {"Authorization": ""},
        "Bearer and nothing": {"Authorization": "Bearer"},
        "Basic credentials": {"Authorization": "Basic " + base64.b64encode(b"officer:correct horse battery")
                              .decode()},
        "Basic scheme, bearer token": {"Authorization": f"Basic {good}"},
        "Token scheme": {"Authorization": f"Token {good}"},
        "no scheme": {"Authorization": good},
        "token then junk": {"Authorization": f"Bearer {good} junk"},
        "token in a cookie": {"Cookie": f"access_token={good}; token={good}"},
        "token in another header": {"X-Access-Token": good, "X-Authorization": f"Bearer {good}"},
    }
    return headers


def _protected(document: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((method.upper(), path) for path, item in document["paths"].items()
                  for method, op in item.items() if op["x-roles"] != ["public"])


def _url(path: str) -> str:
    return (path.replace("{alert_id}", UUID).replace("{entry_id}", UUID).replace("{read_id}", UUID)
            .replace("{username}", "nobody"))


async def _status(client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str | bytes],
                  params: dict[str, str] | None = None) -> tuple[int, httpx.Headers]:
    if path == "/api/alerts/stream":
        async with client.stream(method, _url(path), headers=headers, params=params) as response:
            return response.status_code, response.headers
    response = await client.request(method, _url(path), headers=headers, params=params)
    return response.status_code, response.headers


async def test_bad_tokens_and_headers_are_401_on_every_endpoint(
    api: ApiServer, reliability_record: Record
) -> None:
    """Not one of them authenticates anywhere: 401 with ``WWW-Authenticate: Bearer``,
    decided before any parameter or body is looked at."""
    await api.all_roles()
    secret = api.settings.auth_secret.get_secret_value()
    async with api.client() as client:
        document = (await client.get("/openapi.json")).json()
        endpoints = _protected(document)
        credentials = _bad_credentials(secret)
        outcomes: Counter[int] = Counter()
        wrong = []
        for method, path in endpoints:
            for name, headers in credentials.items():
                status, response_headers = await _status(client, method, path, headers)
                outcomes[status] += 1
                if status != 401 or response_headers.get("www-authenticate") != "Bearer":
                    wrong.append((method, path, name, status))
                if name == "no scheme":  # and a good token in the URL is no token at all
                    status, _ = await _status(client, method, path, {},
                                              {"access_token": api.tokens["officer"]})
                    outcomes[status] += 1
                    if status != 401:
                        wrong.append((method, path, "token in the query string", status))
        # the real token, for contrast: the same requests pass authentication
        good = {"Authorization": f"Bearer {api.tokens['officer']}"}
        assert (await client.get("/api/auth/me", headers=good)).status_code == 200
        lower = {"Authorization": f"bearer {api.tokens['officer']}"}  # the scheme is case-insensitive
        assert (await client.get("/api/auth/me", headers=lower)).status_code == 200
    assert not wrong, wrong[:20]
    tried = sum(outcomes.values())
    reliability_record(area="access", inputs=f"{len(credentials) + 1} kinds of bad credentials (expired, "
                       "other secret, alg none, tampered role, stripped signature, no or malformed header, "
                       f"token in URL or cookie) on {len(endpoints)} protected endpoints: {tried:,} requests",
                       outcome=f"{outcomes[401]:,} of {tried:,} refused with 401, 0 admitted",
                       stored_wrongly=0)


async def _look_up(client: httpx.AsyncClient, what: str, plate: str, purpose: str) -> None:
    response = await client.get(f"/api/plates/{what}", params={"plate": plate, "purpose": purpose})
    assert response.status_code == 200, response.text


async def _audit_rows(api: ApiServer) -> list[tuple]:
    return await api.sql("SELECT audit_id, at, actor, role, action, query::text, purpose, result_count"
                         " FROM audit_log ORDER BY audit_id")


async def test_an_officer_cannot_read_another_officers_audit_history(
    api: ApiServer, reliability_record: Record
) -> None:
    await api.token("officer", username="officer-a")
    await api.token("officer", username="officer-b")
    await api.token("auditor")
    for role in ROLES:
        await api.token(role)
    async with api.client("officer-a") as officer_a:
        await _look_up(officer_a, "sightings", "30A12345", "A's secret case")
        await _look_up(officer_a, "sightings", "51F86988", "A's secret case")
        await _look_up(officer_a, "wanted", "29X504899", "A's secret case")
    async with api.client("officer-b") as officer_b:
        await _look_up(officer_b, "sightings", "30A12345", "B's case")
    a_ids = [audit_id for audit_id, actor in await api.sql("SELECT audit_id, actor FROM audit_log")
             if actor == "officer-a"]
    assert len(a_ids) == 3
    tried = 0
    async with api.client("officer-b") as officer_b:
        for params in ({}, {"actor": "officer-a"}, {"actor": "officer-a", "limit": "500"},
                       {"before_id": str(max(a_ids) + 1)}, {"since": "2000-01-01T00:00:00Z"},
                       {"actor": "' OR 1=1 --"}, {"role": "auditor"}):
            tried += 1
            mine = await officer_b.get("/api/audit/mine", params=params)
            assert mine.status_code == 200, mine.text
            assert {r["actor"] for r in mine.json()["data"]} <= {"officer-b"}, params
            assert "A's secret case" not in mine.text
        for params in ({}, {"actor": "officer-a"}, {"actor": "officer-b"}):
            tried += 1
            assert (await officer_b.get("/api/audit", params=params)).status_code == 403
        for audit_id in a_ids:  # there is no by-id route; whatever answers must not be A's record
            for path in (f"/api/audit/{audit_id}", f"/api/audit/mine/{audit_id}", f"/api/audit/{audit_id}/",
                         f"/api/audit/mine?id={audit_id}", f"/api/audit//{audit_id}"):
                tried += 1
                response = await officer_b.get(path)
                assert "A's secret case" not in response.text and "officer-a" not in response.text, path
                assert response.status_code in (200, 307, 404, 405), (path, response.status_code)
    for role in ROLES:  # no other role gets A's history either; the auditor does
        async with api.client(role) as client:
            tried += 1
            response = await client.get("/api/audit", params={"actor": "officer-a"})
            if role == "auditor":
                assert response.status_code == 200 and len(response.json()["data"]) == 3
            else:
                assert response.status_code == 403, role
                mine = await client.get("/api/audit/mine")
                assert "officer-a" not in mine.text, role
    reliability_record(area="access", inputs=f"{tried} attempts by another officer (and each role) to read "
                       "one officer's audit history: actor filters, paging, id paths, injection",
                       outcome="0 of the officer's records disclosed; auditor alone sees them",
                       stored_wrongly=0)


async def test_no_api_route_alters_or_deletes_audit_records(
    api: ApiServer, reliability_record: Record
) -> None:
    tokens = await api.all_roles()
    async with api.client("officer") as officer:
        for n in range(3):
            await _look_up(officer, "sightings", f"30A1234{n}", PURPOSE)
    before = await _audit_rows(api)
    audit_id = before[0][0]
    async with api.client() as client:
        document = (await client.get("/openapi.json")).json()
        audit_operations = {(m.upper(), p) for p, item in document["paths"].items() for m in item
                            if "audit" in p}
        assert audit_operations == {("GET", "/api/audit"), ("GET", "/api/audit/mine")}, audit_operations
        paths = ["/api/audit", "/api/audit/mine", f"/api/audit/{audit_id}", f"/api/audit/mine/{audit_id}"]
        bodies = [None, {"purpose": "rewritten"}, [{"op": "replace", "path": "/purpose", "value": "x"}]]
        statuses: Counter[int] = Counter()
        for path in paths:
            for method in ("POST", "PUT", "PATCH", "DELETE"):
                for role in (None, *ROLES):
                    for body in bodies:
                        headers = {"Authorization": f"Bearer {tokens[role]}"} if role else {}
                        response = await client.request(method, path, headers=headers,
                                                        **({"json": body} if body is not None else {}))
                        statuses[response.status_code] += 1
                        assert response.status_code in (401, 403, 404, 405), (method, path, role,
                                                                                response.status_code)
        # GET with write-looking parameters changes nothing either
        for role in ("auditor", "officer"):
            async with api.client(role) as reader:
                for params in ({"_method": "DELETE"}, {"delete": "true"}, {"purpose": "rewritten"}):
                    statuses[(await reader.get("/api/audit/mine", params=params)).status_code] += 1
    after = await _audit_rows(api)
    assert after[:len(before)] == before, "an audit record changed"
    assert len(after) == len(before), "an audit record was added by a refused request"
    tried = sum(statuses.values())
    reliability_record(area="access", inputs=f"{tried} write attempts on audit paths (POST/PUT/PATCH/DELETE "
                       "x every role and none x 3 bodies; GET with write-looking parameters)",
                       outcome=f"statuses {dict(sorted(statuses.items()))}; audit log unchanged",
                       stored_wrongly=0)


async def test_the_apis_database_role_cannot_change_audit_rows(
    api: ApiServer, reliability_record: Record
) -> None:
    """Through the running API's own connection pool (its database role): UPDATE, DELETE
    and TRUNCATE are refused by the append-only trigger; the retention job keeps even
    ten-year-old records."""
    await api.token("officer")
    async with api.client("officer") as officer:
        await _look_up(officer, "sightings", "30A12345", PURPOSE)
    await api.sql("INSERT INTO audit_log (at, actor, role, action, purpose, result_count)"
                  " VALUES (now() - interval '10 years', 'old-officer', 'officer', 'plate.sightings',"
                  " 'old case', 0)")
    before = await _audit_rows(api)
    refused = 0
    async with api.app.state.pool.connection() as conn:
        for statement in ("UPDATE audit_log SET purpose = 'nothing to see'",
                          "UPDATE audit_log SET actor = 'someone-else' WHERE actor = 'officer'",
                          "DELETE FROM audit_log",
                          "DELETE FROM audit_log WHERE actor = 'officer'",
                          "TRUNCATE audit_log",
                          "TRUNCATE audit_log CASCADE"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                async with conn.transaction():
                    await conn.execute(statement)
            refused += 1
        caps = await detect_capabilities(conn)
        ten_years_on = datetime.now(UTC) + timedelta(days=3650)
        await run_retention(conn, caps, read_days=1, alert_days=1, now=ten_years_on)
    assert await _audit_rows(api) == before
    reliability_record(area="access", inputs=f"{refused} UPDATE/DELETE/TRUNCATE statements on audit_log "
                       "through the API's own database connection, then a retention run",
                       outcome=f"{refused} refused by the append-only trigger; retention kept 10-year-old "
                       "records",
                       stored_wrongly=0)
