"""Who is active, and in which role, as the database says: cached briefly.

Tokens live for hours; looking the user up on every request would cost a query
per call. A short cache bounds both: a deactivation or role change takes
effect within ``ttl_s``.
"""

from __future__ import annotations

import time

from psycopg_pool import AsyncConnectionPool

from ioc.api.security import Principal
from ioc.storage.users import get_user

__all__ = ["UserDirectory"]


class UserDirectory:
    def __init__(self, pool: AsyncConnectionPool, *, ttl_s: float = 30.0, max_entries: int = 10_000) -> None:
        self._pool = pool
        self._ttl = ttl_s
        self._max = max_entries
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    async def lookup(self, username: str) -> Principal | None:
        """The active user's principal (their current role), or None."""
        now = time.monotonic()
        cached = self._cache.get(username)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        async with self._pool.connection() as conn:
            user = await get_user(conn, username)
        principal = Principal(user.username, user.role) if user is not None and user.active else None
        if len(self._cache) >= self._max:
            self._cache.clear()
        self._cache[username] = (now, principal)
        return principal

    def forget(self, username: str) -> None:
        """Drop a cached answer (after this process changed the user)."""
        self._cache.pop(username, None)
