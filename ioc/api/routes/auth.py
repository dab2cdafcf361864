"""Sign-in: a password grant that returns a bearer token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, status
from pydantic import BaseModel

from ioc import metrics
from ioc.api.deps import ConnDep, CurrentUser, SettingsDep
from ioc.api.security import Principal, issue_token
from ioc.storage.users import authenticate

router = APIRouter(prefix="/api/auth", tags=["auth"])


class TokenPublic(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    role: str


class Me(BaseModel):
    username: str
    role: str


@router.post("/token", response_model=TokenPublic, summary="Password grant (public, throttled)")
async def token(
    request: Request,
    conn: ConnDep,
    settings: SettingsDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
) -> TokenPublic:
    throttle = request.app.state.login_throttle
    client = request.client.host if request.client else "?"
    wait = throttle.retry_after(username, client)
    if wait > 0:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many failed sign-ins",
                            headers={"Retry-After": str(int(wait) + 1)})
    user = await authenticate(conn, username, password)
    if user is None:
        throttle.failed(username, client)
        metrics.LOGIN_FAILURES.inc()
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password")
    throttle.succeeded(username, client)
    ttl = settings.token_ttl_seconds
    access = issue_token(Principal(user.username, user.role),
                         secret=settings.auth_secret.get_secret_value(), ttl_s=ttl)
    return TokenPublic(access_token=access, expires_in=ttl, role=user.role)


@router.get("/me", response_model=Me, summary="Who the token belongs to (any role)")
async def me(user: CurrentUser) -> Me:
    return Me(username=user.username, role=user.role)
