"""Role x endpoint matrix: every route admits exactly the roles of the reviewed policy
below; other signed-in roles get 403, no or a bad token 401."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from served_api import PASSWORD, ROLES, ApiServer

from ioc.api.deps import roles_of
from ioc.api.security import Principal, issue_token

pytestmark = pytest.mark.parametrize("database_url", ["timescaledb"], indirect=True)

OFFICER, OPERATOR, SUPERVISOR, AUDITOR, ADMIN = ROLES
PUBLIC = None
EVERYONE = set(ROLES)

# (method, path) -> roles admitted; the policy as reviewed, independent of the code
POLICY: dict[tuple[str, str], set[str] | None] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/livez"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("POST", "/api/auth/token"): PUBLIC,
    ("GET", "/api/auth/me"): EVERYONE,
    ("POST", "/api/auth/renew"): EVERYONE,
    ("GET", "/api/plates/sightings"): {OFFICER, OPERATOR, SUPERVISOR},
    ("GET", "/api/plates/wanted"): {OFFICER, OPERATOR, SUPERVISOR},
    ("GET", "/api/reads/{read_id}/crop.jpg"): {OFFICER, OPERATOR, SUPERVISOR},
    ("GET", "/api/alerts/stream"): {OFFICER, OPERATOR, SUPERVISOR},
    ("GET", "/api/alerts"): {OFFICER, OPERATOR, SUPERVISOR},
    ("GET", "/api/alerts/decision-reasons"): {OFFICER, SUPERVISOR},
    ("GET", "/api/alerts/decisions"): {SUPERVISOR, AUDITOR},
    ("GET", "/api/alerts/{alert_id}"): {OFFICER, OPERATOR, SUPERVISOR},
    ("GET", "/api/alerts/{alert_id}/crop.jpg"): {OFFICER, OPERATOR, SUPERVISOR},
    ("GET", "/api/alerts/{alert_id}/sightings/{read_id}/crop.jpg"): {OFFICER, OPERATOR, SUPERVISOR},
    ("GET", "/api/alerts/{alert_id}/history"): {OFFICER, OPERATOR, SUPERVISOR},
    ("POST", "/api/alerts/{alert_id}/status"): {OPERATOR, SUPERVISOR},
    ("POST", "/api/alerts/{alert_id}/decision"): {OFFICER, SUPERVISOR},
    ("GET", "/api/watchlist"): {OPERATOR, SUPERVISOR, AUDITOR},
    ("GET", "/api/watchlist/export.csv"): {OPERATOR, SUPERVISOR, AUDITOR},
    ("POST", "/api/watchlist/import"): {OPERATOR, SUPERVISOR},
    ("POST", "/api/watchlist"): {OPERATOR, SUPERVISOR},
    ("GET", "/api/watchlist/{entry_id}"): {OPERATOR, SUPERVISOR, AUDITOR},
    ("PATCH", "/api/watchlist/{entry_id}"): {OPERATOR, SUPERVISOR},
    ("POST", "/api/watchlist/{entry_id}/expire"): {OPERATOR, SUPERVISOR},
    ("GET", "/api/counts"): {OPERATOR, SUPERVISOR, ADMIN},
    ("GET", "/api/cameras"): {OPERATOR, SUPERVISOR, ADMIN},
    ("PUT", "/api/cameras/{camera_id}"): {ADMIN},
    ("DELETE", "/api/cameras/{camera_id}"): {ADMIN},
    ("GET", "/api/audit"): {AUDITOR},
    ("GET", "/api/audit/mine"): EVERYONE,
    ("GET", "/api/users"): {ADMIN},
    ("POST", "/api/users"): {ADMIN},
    ("POST", "/api/users/{username}/deactivate"): {ADMIN},
    ("POST", "/api/users/{username}/activate"): {ADMIN},
    ("POST", "/api/users/{username}/sign-out"): {ADMIN},
    ("POST", "/api/auth/sign-out"): EVERYONE,  # last: the matrix's tokens are refused after it
}

# what a well-formed call sends, so an admitted role gets past validation
_PARAMS: dict[str, dict[str, Any]] = {
    "/api/plates/sightings": {"plate": "30A12345", "purpose": "case 42/2026"},
    "/api/plates/wanted": {"plate": "30A12345", "purpose": "case 42/2026"},
    "/api/alerts/decisions": {"since": "2026-01-01T00:00:00Z", "until": "2030-01-01T00:00:00Z"},
}
_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/alerts/{alert_id}/status"): {"json": {"status": "acknowledged"}},
    ("POST", "/api/alerts/{alert_id}/decision"): {"json": {"decision": "rejected",
                                                           "reason": "misread plate"}},
    ("POST", "/api/watchlist"): {"json": {"pattern": "51F86988", "reason": "matrix test"}},
    ("PATCH", "/api/watchlist/{entry_id}"): {"json": {"priority": 1}},
    ("POST", "/api/watchlist/import"): {"content": b"pattern,reason\n51G12345,matrix\n",
                                        "headers": {"content-type": "text/csv"}},
    ("POST", "/api/users"): {"json": {"username": "matrix-user", "role": "officer",
                                      "password": "long enough pass"}},
    ("POST", "/api/auth/token"): {"data": {"username": OFFICER, "password": PASSWORD}},
    ("PUT", "/api/cameras/{camera_id}"): {"json": {"checkpoint_id": "CP-MATRIX"}},
}


def _url(path: str) -> str:
    return (path.replace("{alert_id}", str(uuid.uuid4())).replace("{entry_id}", str(uuid.uuid4()))
            .replace("{read_id}", str(uuid.uuid4())).replace("{username}", "nobody")
            .replace("{camera_id}", "MATRIX-CAM1"))


async def _call(client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]) -> int:
    kwargs = dict(_BODIES.get((method, path), {}))
    kwargs["headers"] = {**kwargs.get("headers", {}), **headers}
    if path == "/api/alerts/stream":
        async with client.stream(method, _url(path), **kwargs) as response:
            return response.status_code
    response = await client.request(method, _url(path), params=_PARAMS.get(path), **kwargs)
    return response.status_code


def _api_routes(api: ApiServer) -> dict[tuple[str, str], APIRoute]:
    """Every endpoint of the app (routers included), static files and the page aside."""
    return {(method, ctx.path): ctx.original_route for ctx in iter_route_contexts(api.app.routes)
            if isinstance(ctx.original_route, APIRoute) and ctx.original_route.include_in_schema
            for method in ctx.methods}


async def test_every_route_declares_the_reviewed_roles(api: ApiServer) -> None:
    routes = _api_routes(api)
    assert set(routes) == set(POLICY), "a route was added or removed: review it and update POLICY"
    for key, route in routes.items():
        declared = roles_of(route.dependant)
        assert (set(declared) if declared is not None else None) == POLICY[key], key


async def test_role_matrix_over_http(api: ApiServer) -> None:
    tokens = await api.all_roles()
    # a renewal takes a token of the user's generation (as a sign-in gives): the matrix's have none
    renewable = {role: issue_token(Principal(role, role, generation=0), ttl_s=600,
                                   secret=api.settings.auth_secret.get_secret_value()) for role in ROLES}
    async with api.client() as client:
        for (method, path), admitted in POLICY.items():
            for role in ROLES:
                token = renewable[role] if path == "/api/auth/renew" else tokens[role]
                code = await _call(client, method, path, {"Authorization": f"Bearer {token}"})
                if admitted is None or role in admitted:
                    assert code not in (401, 403) and code < 500, (method, path, role, code)
                else:
                    assert code == 403, (method, path, role, code)
            no_token = await _call(client, method, path, {})
            if admitted is None:
                assert no_token not in (401, 403) and no_token < 500, (method, path, no_token)
            else:
                assert no_token == 401, (method, path, no_token)


async def test_bad_tokens_are_401_everywhere(api: ApiServer) -> None:
    await api.token(SUPERVISOR)
    secret = api.settings.auth_secret.get_secret_value()
    good = issue_token(Principal(SUPERVISOR, SUPERVISOR), secret=secret, ttl_s=60)
    header, claims, signature = good.split(".")
    bad_tokens = {
        "expired": issue_token(Principal(SUPERVISOR, SUPERVISOR), secret=secret, ttl_s=-1),
        "other secret": issue_token(Principal(SUPERVISOR, SUPERVISOR), secret="not-the-secret", ttl_s=60),
        "tampered": f"{header}.{claims}x.{signature}",
        "garbage": "not.a.token",
        "unknown user": issue_token(Principal("ghost", ADMIN), secret=secret, ttl_s=60),
    }
    async with api.client() as client:
        for name, token in bad_tokens.items():
            response = await client.get("/api/alerts", headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401, name
            assert response.headers["www-authenticate"] == "Bearer"
        response = await client.get("/api/alerts", headers={"Authorization": f"Basic {good}"})
        assert response.status_code == 401


async def test_role_comes_from_the_database_not_the_token(api: ApiServer) -> None:
    """A token claiming a higher role than the user has grants only the user's role."""
    await api.token(OFFICER, username="field-1")
    forged_role = issue_token(Principal("field-1", ADMIN), secret=api.settings.auth_secret.get_secret_value(),
                              ttl_s=60)
    async with api.client() as client:
        response = await client.get("/api/users", headers={"Authorization": f"Bearer {forged_role}"})
        assert response.status_code == 403


async def test_deactivated_user_is_locked_out_at_once(api: ApiServer) -> None:
    await api.token(ADMIN)
    await api.token(OFFICER, username="leaver")
    async with api.client("leaver") as leaver, api.client(ADMIN) as admin:
        assert (await leaver.get("/api/auth/me")).status_code == 200
        assert (await admin.post("/api/users/leaver/deactivate")).status_code == 204
        assert (await leaver.get("/api/auth/me")).status_code == 401
        assert (await admin.post("/api/users/leaver/activate")).status_code == 204
        assert (await leaver.get("/api/auth/me")).status_code == 200


async def test_openapi_lists_the_roles_of_every_operation(api: ApiServer) -> None:
    async with api.client() as client:
        document = (await client.get("/openapi.json")).json()
    operations = {(method.upper(), path): op for path, item in document["paths"].items()
                  for method, op in item.items()}
    assert set(operations) == set(POLICY)
    for key, op in operations.items():
        expected = sorted(POLICY[key]) if POLICY[key] is not None else ["public"]
        assert sorted(op["x-roles"]) == expected, key
