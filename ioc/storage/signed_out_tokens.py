"""Sessions signed out before they ended: their tokens are refused from then on (``ioc.api.accounts``).
A session's id is its tokens' ``sid`` (a sign-in's first token's ``jti``, kept by renewals); the
column keeps its first name, ``token_id``."""

from __future__ import annotations

from datetime import datetime

from psycopg import AsyncConnection

__all__ = ["sign_out_token", "signed_out_tokens"]


async def sign_out_token(conn: AsyncConnection, username: str, token_id: str, expires_at: datetime) -> None:
    """Record the session ``token_id`` as signed out (idempotent) until ``expires_at``, and forget the
    user's ended ones: their tokens are refused anyway, so the table holds at most the user's sessions
    that could still hold a token."""
    await conn.execute("DELETE FROM signed_out_tokens WHERE username = %s AND expires_at < now()", [username])
    await conn.execute(
        "INSERT INTO signed_out_tokens (token_id, username, expires_at) VALUES (%s, %s, %s)"
        " ON CONFLICT (token_id) DO NOTHING",
        [token_id, username, expires_at],
    )


async def signed_out_tokens(conn: AsyncConnection, username: str) -> frozenset[str]:
    """The ids of the user's signed-out sessions that could still hold a token."""
    cur = await conn.execute(
        "SELECT token_id FROM signed_out_tokens WHERE username = %s AND expires_at >= now()", [username])
    return frozenset(token_id for (token_id,) in await cur.fetchall())
