"""Sign-in: an OAuth2 password grant that returns a bearer token."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, Field, ValidationError

from ioc import metrics
from ioc.api.deps import AnyRole, PoolDep, SettingsDep
from ioc.api.security import LoginThrottle, Principal, issue_token
from ioc.storage.audit import append_audit
from ioc.storage.signed_out_tokens import sign_out_token
from ioc.storage.users import check_password, end_sessions, sign_in_record

router = APIRouter(prefix="/api/auth", tags=["auth"])


class LoginRequest(BaseModel):
    grant_type: str = Field("password", pattern="^password$")
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class TokenPublic(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    username: str
    role: str
    timezone: str = Field(description="IANA time zone the page shows times in (IOC_DISPLAY_TIMEZONE)")


class Me(BaseModel):
    username: str
    role: str


_LOGIN_SCHEMA = LoginRequest.model_json_schema()
_TOKEN_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {"schema": _LOGIN_SCHEMA},
            "application/json": {"schema": _LOGIN_SCHEMA},
        },
    }
}


async def _login_request(request: Request) -> LoginRequest:
    """The form (OAuth2 clients) or JSON (the operator page) body, validated."""
    raw = await request.body()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if content_type == "application/json":
            fields = json.loads(raw or b"{}")
        elif content_type in ("application/x-www-form-urlencoded", ""):
            fields = {k: v[0] for k, v in parse_qs(raw.decode("utf-8"), keep_blank_values=True).items()}
        else:
            raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "send a form or JSON")
        if not isinstance(fields, dict):
            raise ValueError("not an object")
        return LoginRequest.model_validate(fields)
    except (ValueError, UnicodeDecodeError, ValidationError, RecursionError) as exc:  # deep JSON: Recursion
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "username and password required") from exc


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/token", response_model=TokenPublic, openapi_extra=_TOKEN_BODY,
             summary="Password grant (public; failed attempts are throttled per user and client)",
             responses={401: {"description": "wrong username or password"},
                        429: {"description": "too many failed attempts; see Retry-After"}})
async def token(request: Request, pool: PoolDep, settings: SettingsDep) -> TokenPublic:
    # The body is read before a database connection is taken, and the connection is handed back
    # before the password is checked: a slow body or a flood of sign-ins holds no connection that
    # plate look-ups need.
    login = await _login_request(request)
    throttle: LoginThrottle = request.app.state.login_throttle
    client = _client(request)
    wait = throttle.retry_after(login.username, client)
    if wait > 0:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many failed sign-ins",
                            headers={"Retry-After": str(int(wait) + 1)})
    # counted as failed until it succeeds: attempts sent all at once are throttled like ones in turn
    throttle.failed(login.username, client)
    async with pool.connection() as conn:
        record = await sign_in_record(conn, login.username)
    user = await check_password(record, login.password)
    if user is None:
        metrics.LOGIN_FAILURES.inc()
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password",
                            headers={"WWW-Authenticate": "Bearer"})
    throttle.succeeded(login.username, client)
    ttl = min(settings.token_ttl_seconds, settings.session_max_seconds)
    access = issue_token(Principal(user.username, user.role, generation=user.token_generation),
                         secret=settings.auth_secret.get_secret_value(), ttl_s=ttl)
    return TokenPublic(access_token=access, expires_in=ttl, username=user.username, role=user.role,
                       timezone=settings.display_timezone)


_RENEW_REFUSED = {401: {"description": "the token does not hold, has no generation (another issuer's), or "
                               "its session began more than IOC_SESSION_MAX_SECONDS ago (sign in again)"}}


@router.post("/renew", response_model=TokenPublic, responses=_RENEW_REFUSED,
             summary="A fresh token for this session, without the password")
async def renew(user: AnyRole, settings: SettingsDep, pool: PoolDep) -> TokenPublic:
    """A video wall's shift (12 hours) outlasts a token (8): renewed while it holds, a session goes on
    until ``session_max_seconds`` after its sign-in. The new token is of the same session (signing
    out one ends them all), no longer than the one renewed (a 60 s script token stays one), and
    audited (``auth.renew``). A token without a generation is not renewed: a password reset ends
    it only by its issue time, which a renewal would move on."""
    now = time.time()
    signed_in = user.signed_in if user.signed_in is not None else now
    left = int(signed_in + settings.session_max_seconds - now)
    if left <= 0 or user.generation is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "this token cannot be renewed: sign in again",
                            headers={"WWW-Authenticate": "Bearer"})
    lifetime = int(user.expires - user.issued) if user.expires and user.issued else settings.token_ttl_seconds
    ttl = max(min(settings.token_ttl_seconds, left, lifetime), 1)
    principal = Principal(user.username, user.role, generation=user.generation, signed_in=signed_in,
                          session_id=user.session_id)
    access = issue_token(principal, secret=settings.auth_secret.get_secret_value(), ttl_s=ttl)
    async with pool.connection() as conn:
        await append_audit(conn, actor=user.username, role=user.role, action="auth.renew",
                           query={"expires_in": ttl}, purpose="session renewal", result_count=1)
    return TokenPublic(access_token=access, expires_in=ttl, username=user.username, role=user.role,
                       timezone=settings.display_timezone)


@router.get("/me", response_model=Me, summary="Who the token belongs to")
async def me(user: AnyRole) -> Me:
    return Me(username=user.username, role=user.role)


_SIGN_OUT_ANSWERS = {
    204: {"description": "the token and those renewed from the same sign-in (with `everywhere`, every "
                         "token of the user) are refused from now on (by other API processes within "
                         "their user cache time, 30 s)"},
    422: {"description": "a token without an id (jti) cannot be signed out alone"},
}


@router.post("/sign-out", status_code=status.HTTP_204_NO_CONTENT, responses=_SIGN_OUT_ANSWERS,
             summary="Sign this token out, or every session")
async def sign_out(
    request: Request,
    pool: PoolDep,
    settings: SettingsDep,
    user: AnyRole,
    everywhere: bool = Query(False, description="end every session of the user (a lost handheld), this one "
                                                "too; audited as `auth.sign_out_everywhere`"),
) -> Response:
    # a token forgotten by the page alone would still hold, for hours, wherever a copy of it is
    async with pool.connection() as conn:
        if everywhere:
            async with conn.transaction():
                await end_sessions(conn, user.username)
                await append_audit(conn, actor=user.username, role=user.role,
                                   action="auth.sign_out_everywhere", query={"username": user.username},
                                   purpose="sign-out", result_count=1)
        elif user.session_id is None or user.expires is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "this token has no id to sign out")
        else:  # kept until the last token the session could renew to would have expired
            ends = max(user.expires, (user.signed_in or 0) + settings.session_max_seconds)
            await sign_out_token(conn, user.username, user.session_id, datetime.fromtimestamp(ends, UTC))
    request.app.state.users.forget(user.username)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
