"""Sign-in (form and JSON), throttling of failed sign-ins, body size limit, health,
metrics and security headers, against the served API."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from served_api import PASSWORD, ApiServer, store_alerts, watchlist_alert

from ioc.api.accounts import UserDirectory
from ioc.api.routes import auth as auth_routes
from ioc.api.security import Principal, issue_token, verify_token
from ioc.storage.database import connect
from ioc.storage.users import set_password

pytestmark = pytest.mark.parametrize("database_url", ["timescaledb"], indirect=True)


async def _login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post("/api/auth/token", json={"username": username, "password": password})


async def test_password_grant_as_form_and_as_json(api: ApiServer) -> None:
    await api.user("duty-officer", "officer")
    async with api.client() as client:
        form = await client.post("/api/auth/token", data={"grant_type": "password",
                                                          "username": "duty-officer", "password": PASSWORD})
        as_json = await _login(client, "duty-officer", PASSWORD)
        for response in (form, as_json):
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["token_type"] == "bearer" and body["role"] == "officer"
            assert body["expires_in"] == api.settings.token_ttl_seconds
            me = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
            assert me.json() == {"username": "duty-officer", "role": "officer"}
        wrong = await _login(client, "duty-officer", "nope nope")
        assert wrong.status_code == 401
        assert (await client.post("/api/auth/token", json={"username": "x"})).status_code == 422
        assert (await client.post("/api/auth/token", content=b"<xml/>",
                                  headers={"content-type": "application/xml"})).status_code == 415


async def test_passwords_are_stored_only_as_scrypt_hashes(api: ApiServer) -> None:
    await api.user("hashed", "auditor")
    [(stored,)] = await api.sql("SELECT password_hash FROM users WHERE username = 'hashed'")
    assert stored.startswith("scrypt$") and PASSWORD not in stored


async def test_failed_sign_ins_are_throttled_per_user_and_client(api: ApiServer) -> None:
    await api.user("target", "operator")
    await api.user("bystander", "operator")
    async with api.client() as client:
        for _ in range(5):
            assert (await _login(client, "target", "guess-123")).status_code == 401
        blocked = await _login(client, "target", PASSWORD)
        assert blocked.status_code == 429
        assert int(blocked.headers["retry-after"]) > 0
        # the right password does not unlock it either, but another user is unaffected
        other = await _login(client, "bystander", PASSWORD)
        assert other.status_code == 200
        metrics = (await client.get("/metrics")).text
    assert "ioc_login_failures_total" in metrics


async def test_sign_ins_sent_all_at_once_are_throttled_as_if_sent_in_turn(api: ApiServer) -> None:
    await api.user("rushed", "operator")
    async with api.client() as client:
        answers = await asyncio.gather(*(_login(client, "rushed", f"guess-{i}") for i in range(20)))
        codes = sorted(answer.status_code for answer in answers)
        assert codes == [401] * 5 + [429] * 15, codes  # five guesses checked, as one at a time allows
        assert (await _login(client, "rushed", PASSWORD)).status_code == 429


async def test_sign_ins_hold_no_database_connection_while_passwords_are_checked(
    api_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With as many sign-ins checking a password as the pool has connections, a plate look-up
    is still served (a sign-in had held its connection through the whole scrypt)."""
    api: ApiServer = await api_factory(database_pool_size=2)
    officer = await api.token("officer")
    checking, release = asyncio.Semaphore(0), asyncio.Event()

    async def slow_check(record, password):  # noqa: ANN001, ANN202 - stands in for a long scrypt
        checking.release()
        await release.wait()
        return None

    monkeypatch.setattr(auth_routes, "check_password", slow_check)
    async with api.client() as client:
        sign_ins = [asyncio.create_task(_login(client, f"user-{i}", "guess-123")) for i in range(2)]
        for _ in sign_ins:
            await asyncio.wait_for(checking.acquire(), 10)
        try:
            look_up = await asyncio.wait_for(client.get(
                "/api/plates/sightings", headers={"Authorization": f"Bearer {officer}"},
                params={"plate": "30A12345", "purpose": "test"}), 10)
        finally:
            release.set()
        assert [(await task).status_code for task in sign_ins] == [401, 401]
    assert look_up.status_code == 200, look_up.text


async def test_requests_as_many_as_the_pool_holds_all_find_their_caller(api_factory) -> None:
    """Each of these requests needs its caller looked up (the user directory's cached entry has
    expired) as well as a connection of its own. They took the connection first and waited for
    another to look the caller up: with as many requests as the pool holds, all of them until
    the pool's timeout (30 s), then 500."""
    api: ApiServer = await api_factory(database_pool_size=2)
    operator = await api.token("operator")
    api.app.state.users = UserDirectory(api.app.state.pool, ttl_s=0)  # every request looks its caller up
    headers = {"Authorization": f"Bearer {operator}"}
    async with api.client() as client:
        requests = (client.get("/api/alerts", headers=headers) for _ in range(6))
        statuses = await asyncio.wait_for(asyncio.gather(*requests), 20)
    assert [r.status_code for r in statuses] == [200] * 6


async def test_request_bodies_over_the_limit_are_refused(api_factory) -> None:
    api: ApiServer = await api_factory(api_max_body_bytes=2_000)
    await api.token("supervisor")
    csv = b"pattern,reason\n" + b"".join(b"29X5%05d,bulk\n" % i for i in range(300))
    assert len(csv) > 2_000
    async with api.client("supervisor") as client:
        declared = await client.post("/api/watchlist/import", content=csv,
                                     headers={"content-type": "text/csv"})
        assert declared.status_code == 413

        async def chunks():  # noqa: ANN202 - no Content-Length: counted while it streams
            for start in range(0, len(csv), 500):
                yield csv[start:start + 500]

        streamed = await client.post("/api/watchlist/import", content=chunks(),
                                     headers={"content-type": "text/csv"})
        assert streamed.status_code == 413
        small = await client.post("/api/watchlist/import", content=csv[:1000].rsplit(b"\n", 1)[0] + b"\n",
                                  headers={"content-type": "text/csv"})
        assert small.status_code == 200, small.text
    assert (await api.sql("SELECT count(*) FROM watchlist_entries"))[0][0] == small.json()["added"] > 0


async def test_health_metrics_and_headers(api: ApiServer) -> None:
    async with api.client() as client:
        health = await client.get("/healthz")
        assert health.json() == {"status": "ok", "database": "ok", "kafka_publisher": "ok",
                                 "live_alerts": "ok"}
        await client.get("/api/alerts")  # 401, counted under its template
        metrics = (await client.get("/metrics")).text
        assert 'ioc_http_requests_total{method="GET",route="/api/alerts",status="401"}' in metrics
        assert "ioc_http_request_seconds_bucket" in metrics
        page = await client.get("/")
        assert page.status_code == 200 and "<canvas" in page.text
        csp = page.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp
        assert page.headers["x-content-type-options"] == "nosniff"


async def test_api_answers_are_kept_by_no_browser_cache(api: ApiServer) -> None:
    """Sightings, alerts, the audit trail and the watchlist export said nothing about caching:
    a handheld's or shared console PC's browser could keep them on disk. Every /api/ answer
    now says no-store, gzipped or not, refusals too; one that says its own keeps it (the live
    stream's no-cache); the operator page keeps its no-cache."""
    for role in ("officer", "operator", "auditor"):
        await api.token(role)
    await store_alerts(api, [watchlist_alert(f"30A1234{i}") for i in range(5)])
    sightings = {"plate": "30A12345", "purpose": "case 12/2026"}
    calls = [("officer", "/api/plates/sightings", sightings), ("operator", "/api/alerts", {}),
             ("auditor", "/api/audit", {}), ("operator", "/api/watchlist/export.csv", {}),
             ("officer", "/api/auth/me", {}), (None, "/api/alerts", {})]
    for role, path, params in calls:
        async with api.client(role) as client:
            answer = await client.get(path, params=params)
        assert answer.status_code == (401 if role is None else 200), (path, answer.text)
        assert answer.headers["cache-control"] == "no-store", path
    async with api.client("operator") as client:
        alerts = await client.get("/api/alerts", headers={"Accept-Encoding": "gzip"})
        assert alerts.headers["content-encoding"] == "gzip" and alerts.json()["count"] == 5
        assert alerts.headers["cache-control"] == "no-store"
        async with client.stream("GET", "/api/alerts/stream") as stream:
            assert stream.status_code == 200
            assert stream.headers["cache-control"] == "no-cache"
            assert stream.headers["content-type"].startswith("text/event-stream")
            assert (await anext(stream.aiter_bytes())).startswith(b"retry:")
        assert (await client.get("/")).headers["cache-control"] == "no-cache"
    async with api.client() as client:
        login = await client.post("/api/auth/token", json={"username": "officer", "password": PASSWORD})
        assert login.status_code == 200 and login.headers["cache-control"] == "no-store"  # RFC 6749 5.1


async def _me(client: httpx.AsyncClient, token: str) -> int:
    """The status a token gets from ``/api/auth/me``."""
    return (await client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})).status_code


async def _set_password(api: ApiServer, username: str, password: str) -> None:
    """As `ioc users passwd` does; this API process forgets its cached answer at once (the
    command leaves each process to its cache time)."""
    async with await connect(api.conninfo) as conn:
        assert await set_password(conn, username, password)
        await conn.commit()
    api.app.state.users.forget(username)


async def test_a_token_issued_before_the_account_changed_no_longer_holds(api: ApiServer) -> None:
    """A password reset, or a deactivation and reactivation, ends the tokens issued before it
    (beyond the clock leeway): a stolen token dies with them."""
    admin = await api.token("admin")
    await api.user("field-7", "officer")
    secret = api.settings.auth_secret.get_secret_value()
    directory = api.app.state.users

    async def token_from_two_minutes_ago() -> str:
        """Backdates the account's last change, then issues a token two minutes old (still valid)."""
        await api.sql("UPDATE users SET updated_at = now() - interval '10 minutes' WHERE username = %s",
                      ["field-7"])
        directory.forget("field-7")
        return issue_token(Principal("field-7", "officer"), secret=secret, ttl_s=3600, now=time.time() - 120)

    async with api.client() as client:
        old = await token_from_two_minutes_ago()
        assert await _me(client, old) == 200
        await _set_password(api, "field-7", "a-new-password-1")
        assert await _me(client, old) == 401
        fresh = (await _login(client, "field-7", "a-new-password-1")).json()["access_token"]
        assert await _me(client, fresh) == 200

        before = await token_from_two_minutes_ago()
        assert await _me(client, before) == 200
        headers = {"Authorization": f"Bearer {admin}"}
        for step in ("deactivate", "activate"):
            assert (await client.post(f"/api/users/field-7/{step}", headers=headers)).status_code == 204
        assert await _me(client, before) == 401


async def test_a_token_issued_just_before_a_password_reset_or_a_deactivation_no_longer_holds(
    api: ApiServer,
) -> None:
    """Tokens were judged by their issue time against the account's last change, less 30 s of
    clock leeway: a token signed in for with a stolen password seconds before the reset outlived
    it (and one from before a deactivation, once reactivated). Now a token holds only in the
    user's token generation, which those changes move on."""
    admin = await api.token("admin")
    await api.user("field-8", "officer")
    async with api.client() as client:
        async def signed_in(password: str = PASSWORD) -> str:
            return (await _login(client, "field-8", password)).json()["access_token"]

        stolen = await signed_in()
        assert await _me(client, stolen) == 200
        await _set_password(api, "field-8", "a-new-password-1")
        assert await _me(client, stolen) == 401
        fresh = await signed_in("a-new-password-1")
        assert await _me(client, fresh) == 200

        headers = {"Authorization": f"Bearer {admin}"}
        for step in ("deactivate", "activate"):
            assert (await client.post(f"/api/users/field-8/{step}", headers=headers)).status_code == 204
        assert await _me(client, fresh) == 401
        assert await _me(client, await signed_in("a-new-password-1")) == 200


async def test_a_signed_out_token_no_longer_holds_in_any_api_process(api_factory) -> None:
    """Signing out forgot the token in the page only: a copy (a shared PC's restored tab, a proxy's
    log, a lost handheld's storage) held for the rest of its 8 hours. Now the token is refused,
    at once by the process that signed it out and within the user cache time by the others; the
    user's other sessions go on."""
    api: ApiServer = await api_factory()
    other = await api_factory(auth_secret=api.settings.auth_secret.get_secret_value())  # a replica
    other.app.state.users = UserDirectory(other.app.state.pool, ttl_s=0)  # its cache time: none
    await api.user("field-9", "officer")
    async with api.client() as client, other.client() as elsewhere:
        async def signed_in() -> str:
            return (await _login(client, "field-9", PASSWORD)).json()["access_token"]

        console, handheld = await signed_in(), await signed_in()
        assert [await _me(c, console) for c in (client, elsewhere)] == [200, 200]
        signed_out = await client.post("/api/auth/sign-out", headers={"Authorization": f"Bearer {console}"})
        assert signed_out.status_code == 204, signed_out.text
        assert [await _me(c, console) for c in (client, elsewhere)] == [401, 401]
        assert [await _me(c, handheld) for c in (client, elsewhere)] == [200, 200]
        again = await elsewhere.post("/api/auth/sign-out", headers={"Authorization": f"Bearer {console}"})
        assert again.status_code == 401
        assert (await client.post("/api/auth/sign-out")).status_code == 401
        secret = api.settings.auth_secret.get_secret_value()
        foreign = issue_token(Principal("field-9", "officer"), secret=secret, ttl_s=600)
        assert await _me(client, foreign) == 200
    rows = await api.sql("SELECT username, expires_at > now() FROM signed_out_tokens")
    assert rows == [("field-9", True)]


async def test_signing_out_everywhere_ends_every_session_of_the_user(api_factory) -> None:
    """A lost handheld's token held for the rest of its 8 hours unless an admin deactivated the
    whole account. Now the officer (from any device) or an admin ends every session of the user at
    once, in every API process within the user cache time; a new sign-in holds again, and other
    users' sessions go on. Both are in the audit log."""
    api: ApiServer = await api_factory()
    other = await api_factory(auth_secret=api.settings.auth_secret.get_secret_value())  # a replica
    other.app.state.users = UserDirectory(other.app.state.pool, ttl_s=0)
    await api.user("field-7", "officer")
    await api.user("field-8", "officer")
    await api.token("admin")
    async with api.client() as client, other.client() as elsewhere, api.client("admin") as admin:
        async def signed_in(username: str) -> str:
            return (await _login(client, username, PASSWORD)).json()["access_token"]

        desk, handheld = await signed_in("field-7"), await signed_in("field-7")
        colleague = await signed_in("field-8")
        ended = await client.post("/api/auth/sign-out", params={"everywhere": "true"},
                                  headers={"Authorization": f"Bearer {desk}"})
        assert ended.status_code == 204, ended.text
        assert [await _me(c, t) for c in (client, elsewhere) for t in (desk, handheld)] == [401] * 4
        assert [await _me(c, colleague) for c in (client, elsewhere)] == [200, 200]
        fresh = await signed_in("field-7")
        assert [await _me(c, fresh) for c in (client, elsewhere)] == [200, 200]

        by_admin = await admin.post("/api/users/field-7/sign-out")
        assert by_admin.status_code == 204, by_admin.text
        assert [await _me(c, fresh) for c in (client, elsewhere)] == [401, 401]
        assert (await admin.post("/api/users/nobody-here/sign-out")).status_code == 404
        assert [await _me(c, colleague) for c in (client, elsewhere)] == [200, 200]
    rows = await api.sql("SELECT actor, action, query->>'username' FROM audit_log "
                         "WHERE action IN ('auth.sign_out_everywhere', 'user.sign_out') ORDER BY audit_id")
    assert rows == [("field-7", "auth.sign_out_everywhere", "field-7"), ("admin", "user.sign_out", "field-7")]


async def test_a_session_is_renewed_without_a_password_until_its_longest(api_factory) -> None:
    """A token held 8 hours and could not be renewed: a video wall signed in for a 12-hour shift
    was signed out at hour 8, its queue emptied, until someone typed a password again. A token
    now gets a fresh one while it holds, for as long as the session may last from its sign-in
    (IOC_SESSION_MAX_SECONDS); a token that no longer holds gets none."""
    api: ApiServer = await api_factory(token_ttl_seconds=600, session_max_seconds=900)
    await api.user("wall-7", "operator")
    async with api.client() as client:
        first = (await _login(client, "wall-7", PASSWORD)).json()["access_token"]
        renewed = await client.post("/api/auth/renew", headers={"Authorization": f"Bearer {first}"})
        assert renewed.status_code == 200, renewed.text
        body = renewed.json()
        assert body["username"] == "wall-7" and body["role"] == "operator" and 0 < body["expires_in"] <= 600
        second = body["access_token"]
        assert second != first and await _me(client, second) == 200
        secret = api.settings.auth_secret.get_secret_value()
        assert verify_token(second, secret=secret).signed_in == verify_token(first, secret=secret).signed_in
        # the session's end caps the new token: signed in 800 s ago, 100 s are left of 900
        late = verify_token(second, secret=secret)
        old = issue_token(Principal("wall-7", "operator", generation=late.generation,
                                    signed_in=time.time() - 800), secret=secret, ttl_s=600)
        capped = await client.post("/api/auth/renew", headers={"Authorization": f"Bearer {old}"})
        assert capped.status_code == 200 and 90 <= capped.json()["expires_in"] <= 100, capped.text
        over = issue_token(Principal("wall-7", "operator", generation=late.generation,
                                     signed_in=time.time() - 901), secret=secret, ttl_s=600)
        refused = await client.post("/api/auth/renew", headers={"Authorization": f"Bearer {over}"})
        assert refused.status_code == 401 and "sign in again" in refused.text
        await client.post("/api/auth/sign-out", headers={"Authorization": f"Bearer {second}"})
        gone = await client.post("/api/auth/renew", headers={"Authorization": f"Bearer {second}"})
        assert gone.status_code == 401


async def test_a_renewed_token_is_of_its_session_and_no_longer_than_the_one_renewed(api_factory) -> None:
    """A renewal gave a token of its own id: signing out the owner's token left a thief's renewed
    copy holding for the rest of the session; a 60 s script token came back as an 8-hour one; a
    token without a generation (another issuer's, or one from before generations) was renewed
    again and again past a password reset; and sessions longer than IOC_SESSION_MAX_SECONDS began
    at sign-in. Now a session's tokens share its id (sid) and go together, a renewal is no longer
    than the token renewed nor audited less, and one without a generation is not renewed."""
    api: ApiServer = await api_factory(session_max_seconds=1800)
    await api.user("wall-8", "operator")
    secret = api.settings.auth_secret.get_secret_value()
    async with api.client() as client:
        signed_in = await _login(client, "wall-8", PASSWORD)
        assert signed_in.json()["expires_in"] == 1800  # the session's longest, under the token's 8 hours
        owner = signed_in.json()["access_token"]

        async def renewed(token: str) -> httpx.Response:
            return await client.post("/api/auth/renew", headers={"Authorization": f"Bearer {token}"})

        thief = (await renewed(owner)).json()["access_token"]
        assert verify_token(thief, secret=secret).session_id == verify_token(owner, secret=secret).session_id
        signed_out = await client.post("/api/auth/sign-out", headers={"Authorization": f"Bearer {owner}"})
        assert signed_out.status_code == 204
        assert [await _me(client, owner), await _me(client, thief)] == [401, 401]
        assert (await renewed(thief)).status_code == 401

        generation = verify_token(owner, secret=secret).generation
        script = issue_token(Principal("wall-8", "operator", generation=generation), secret=secret, ttl_s=60)
        short = await renewed(script)
        assert short.status_code == 200 and short.json()["expires_in"] <= 60, short.text
        foreign = issue_token(Principal("wall-8", "operator"), secret=secret, ttl_s=600)
        refused = await renewed(foreign)
        assert refused.status_code == 401 and "sign in again" in refused.text
    rows = await api.sql("SELECT actor, action FROM audit_log WHERE action = 'auth.renew' ORDER BY audit_id")
    assert rows == [("wall-8", "auth.renew")] * 2
