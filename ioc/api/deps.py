"""Request dependencies: settings, database, the caller and their role."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg import AsyncConnection

from ioc.api.security import InvalidTokenError, Principal, verify_token
from ioc.config import Settings

_bearer = HTTPBearer(auto_error=False, description="Token from POST /api/auth/token")


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


async def get_conn(request: Request) -> AsyncIterator[AsyncConnection]:
    """One pooled connection per request; committed on success, rolled back on error."""
    async with request.app.state.pool.connection() as conn:
        yield conn


ConnDep = Annotated[AsyncConnection, Depends(get_conn)]


def current_user(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "not authenticated",
                            headers={"WWW-Authenticate": "Bearer"})
    try:
        return verify_token(credentials.credentials, secret=settings.auth_secret.get_secret_value())
    except InvalidTokenError as exc:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc),
                            headers={"WWW-Authenticate": "Bearer"}) from exc


CurrentUser = Annotated[Principal, Depends(current_user)]


def require_roles(*roles: str) -> Callable[[Principal], Principal]:
    """A dependency that lets only ``roles`` through (403 for other signed-in users)."""

    def check(user: CurrentUser) -> Principal:
        if user.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"requires one of: {', '.join(roles)}")
        return user

    check.roles = roles  # type: ignore[attr-defined] - read by the role-matrix test
    return check


# Who may do what: one place, so the role matrix is reviewable.
ALERT_READERS = ("officer", "operator", "supervisor", "admin")
ALERT_HANDLERS = ("operator", "supervisor", "admin")
HIT_DECIDERS = ("officer", "supervisor")
PLATE_SEARCHERS = ("officer", "operator", "supervisor")
WATCHLIST_READERS = ("operator", "supervisor", "admin")
WATCHLIST_EDITORS = ("supervisor", "admin")
DASHBOARD_READERS = ("operator", "supervisor", "admin")
AUDIT_READERS = ("auditor", "admin")
SELF_AUDIT_READERS = ("officer", "operator", "supervisor", "auditor", "admin")
