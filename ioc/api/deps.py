"""Request dependencies: settings, database, the caller and their role.

Every ``/api`` endpoint names the roles it admits with :func:`require_roles`;
the groups below are the whole role policy in one reviewable place.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from ioc.api.accounts import UserDirectory
from ioc.api.security import InvalidTokenError, Principal, verify_token
from ioc.config import Settings

__all__ = [
    "ALERT_HANDLERS",
    "ALERT_READERS",
    "AUDIT_READERS",
    "CAMERA_ADMINS",
    "COUNTS_READERS",
    "DECISION_REPORTERS",
    "EVERYONE",
    "HIT_DECIDERS",
    "PLATE_SEARCHERS",
    "USER_ADMINS",
    "WATCHLIST_EDITORS",
    "WATCHLIST_READERS",
    "AlertHandler",
    "AlertReader",
    "AnyRole",
    "AuditReader",
    "CameraAdmin",
    "ConnDep",
    "CountsReader",
    "DecisionReporter",
    "HitDecider",
    "PlateSearcher",
    "PoolDep",
    "SettingsDep",
    "UserAdmin",
    "WatchlistEditor",
    "WatchlistReader",
    "require_roles",
    "roles_of",
]

# --- who may do what ---
EVERYONE = ("officer", "operator", "supervisor", "auditor", "admin")
PLATE_SEARCHERS = ("officer", "operator", "supervisor")      # sightings, "is it wanted?", crops
ALERT_READERS = ("officer", "operator", "supervisor")        # queue, live stream, one alert
ALERT_HANDLERS = ("operator", "supervisor")                  # acknowledge / escalate / resolve
HIT_DECIDERS = ("officer", "supervisor")                     # accept / reject a hit in the field
DECISION_REPORTERS = ("supervisor", "auditor")               # decisions report
WATCHLIST_READERS = ("operator", "supervisor", "auditor")
WATCHLIST_EDITORS = ("operator", "supervisor")
COUNTS_READERS = ("operator", "supervisor", "admin")          # counts, camera health
AUDIT_READERS = ("auditor",)                                  # everyone's audit trail
USER_ADMINS = ("admin",)
CAMERA_ADMINS = ("admin",)                                    # register and remove cameras

_bearer = HTTPBearer(auto_error=False, description="Token from POST /api/auth/token")


# dependencies are async (even trivial ones): FastAPI runs sync ones in a thread pool
async def _settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(_settings)]


async def _pool(request: Request) -> AsyncConnectionPool:
    return request.app.state.pool


PoolDep = Annotated[AsyncConnectionPool, Depends(_pool)]




def _unauthorised(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


async def _caller(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The token's user, as the database knows them now (a deactivated user or a changed
    role takes effect within the directory's cache time, not at token expiry); looked up once
    per request, by whichever of the role check and the connection asks first."""
    known: Principal | None = getattr(request.state, "principal", None)
    if known is not None:
        return known
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorised("not authenticated")
    settings: Settings = request.app.state.settings
    try:
        claimed = verify_token(credentials.credentials, secret=settings.auth_secret.get_secret_value())
    except InvalidTokenError as exc:
        raise _unauthorised(str(exc)) from exc
    directory: UserDirectory = request.app.state.users
    current = await directory.lookup(claimed.username, issued_at=claimed.issued,
                                     generation=claimed.generation, session_id=claimed.session_id)
    if current is None:
        raise _unauthorised("user unknown or deactivated, the token signed out, or older than the account's "
                            "last change")
    current = dataclasses.replace(current, expires=claimed.expires, issued=claimed.issued,
                                  generation=claimed.generation, token_id=claimed.token_id,
                                  signed_in=claimed.signed_in, session_id=claimed.session_id)
    request.state.principal = current
    return current


async def _conn(
    request: Request, _: Annotated[Principal, Depends(_caller)]
) -> AsyncIterator[AsyncConnection]:
    """One pooled connection for the endpoint call; committed on success, rolled back on error.

    Taken only once the caller is known: the user directory's look-up takes a connection of
    the same pool, and requests holding theirs while waiting for another (as many as the pool
    holds, of a user whose cached entry had just expired: a console fetching its alerts' crops)
    stalled the pod until the pool's timeout, then failed with 500. A caller without a valid
    token gets its 401 without taking one. ``scope="function"`` hands it back before the
    response is sent, so a slow client never holds a database connection.
    """
    pool: AsyncConnectionPool = request.app.state.pool
    async with pool.connection() as conn:
        yield conn


ConnDep = Annotated[AsyncConnection, Depends(_conn, scope="function")]


def require_roles(*roles: str) -> Callable[..., Any]:
    """A dependency admitting only ``roles`` (401 without a valid token, 403 for other roles)."""
    unknown = set(roles) - set(EVERYONE)
    if unknown or not roles:
        raise ValueError(f"unknown roles {sorted(unknown)}")

    # one level of dependencies, not a chain: FastAPI's cost per request grows with each
    async def check(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> Principal:
        user = await _caller(request, credentials)
        if user.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"requires one of: {', '.join(roles)}")
        return user

    check.roles = tuple(roles)  # type: ignore[attr-defined] - read by roles_of()
    return check


def roles_of(dependant: Any) -> tuple[str, ...] | None:
    """The roles a route admits (walking its dependency tree), or None if it checks none."""
    stack: list[Any] = [dependant]
    while stack:
        node = stack.pop()
        found: Sequence[str] | None = getattr(node.call, "roles", None) if node.call else None
        if found is not None:
            return tuple(found)
        stack.extend(node.dependencies)
    return None


# --- the callers each endpoint admits, as dependencies ---
AnyRole = Annotated[Principal, Depends(require_roles(*EVERYONE))]
PlateSearcher = Annotated[Principal, Depends(require_roles(*PLATE_SEARCHERS))]
AlertReader = Annotated[Principal, Depends(require_roles(*ALERT_READERS))]
AlertHandler = Annotated[Principal, Depends(require_roles(*ALERT_HANDLERS))]
HitDecider = Annotated[Principal, Depends(require_roles(*HIT_DECIDERS))]
DecisionReporter = Annotated[Principal, Depends(require_roles(*DECISION_REPORTERS))]
WatchlistReader = Annotated[Principal, Depends(require_roles(*WATCHLIST_READERS))]
WatchlistEditor = Annotated[Principal, Depends(require_roles(*WATCHLIST_EDITORS))]
CountsReader = Annotated[Principal, Depends(require_roles(*COUNTS_READERS))]
AuditReader = Annotated[Principal, Depends(require_roles(*AUDIT_READERS))]
UserAdmin = Annotated[Principal, Depends(require_roles(*USER_ADMINS))]
CameraAdmin = Annotated[Principal, Depends(require_roles(*CAMERA_ADMINS))]
