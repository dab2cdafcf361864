"""Who is active, and in which role, as the database says: cached briefly.

Tokens live for hours; looking the user up on every request would cost a query
per call. A short cache bounds both: a deactivation or role change takes
effect within ``ttl_s``. A token issued before the account's password was set or the account
deactivated (and reactivated) no longer holds: a stolen token dies with a password reset. The
token says the user's token generation it was issued in, which those changes move on
(migration 0014): exact, whatever the clocks. A token without one (issued before generations,
or by another issuer) is judged by its issue time against the account's last change instead,
less the clock leeway between this process and the database. A token its holder signed out
(``POST /api/auth/sign-out``) no longer holds either: at once in the process that signed it out,
within ``ttl_s`` in the others.
"""

from __future__ import annotations

import time

from psycopg_pool import AsyncConnectionPool

from ioc.api.security import CLOCK_LEEWAY_S, Principal
from ioc.storage.signed_out_tokens import signed_out_tokens
from ioc.storage.users import get_user

__all__ = ["UserDirectory"]


class UserDirectory:
    def __init__(self, pool: AsyncConnectionPool, *, ttl_s: float = 30.0, max_entries: int = 10_000) -> None:
        self._pool = pool
        self._ttl = ttl_s
        self._max = max_entries
        # username -> (when looked up, the active user's principal (with their token generation)
        # or None, when their account changed, their signed-out sessions' ids)
        self._cache: dict[str, tuple[float, Principal | None, float, frozenset[str]]] = {}

    async def lookup(
        self,
        username: str,
        *,
        issued_at: float | None = None,
        generation: int | None = None,
        session_id: str | None = None,
    ) -> Principal | None:
        """The active user's principal (their current role), or None; None too for a token of a
        signed-out ``session_id``, for a token of another token ``generation`` than the user's, or, where the
        token has none, one issued at ``issued_at`` (Unix time) before the account last changed, by
        more than the clock leeway."""
        now = time.monotonic()
        cached = self._cache.get(username)
        if cached is None or now - cached[0] >= self._ttl:
            async with self._pool.connection() as conn:
                user = await get_user(conn, username)
                active = user is not None and user.active
                signed_out = await signed_out_tokens(conn, username) if active else frozenset()
            cached = (now, Principal(user.username, user.role, generation=user.token_generation) if active
                      else None, user.updated_at.timestamp() if active else 0.0, signed_out)  # fmt: skip
            if len(self._cache) >= self._max:
                self._cache.clear()
            self._cache[username] = cached
        _, principal, changed_at, signed_out = cached
        if principal is None or session_id in signed_out:
            return None
        if generation is not None:
            return principal if generation == principal.generation else None
        if issued_at is not None and issued_at + CLOCK_LEEWAY_S < changed_at:
            return None
        return principal

    def forget(self, username: str) -> None:
        """Drop a cached answer (after this process changed the user)."""
        self._cache.pop(username, None)
