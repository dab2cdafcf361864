"""Tokens signed out before they expired: refused from then on (``ioc.api.accounts``)."""

from __future__ import annotations

from datetime import datetime

from psycopg import AsyncConnection

__all__ = ["sign_out_token", "signed_out_tokens"]


async def sign_out_token(conn: AsyncConnection, username: str, token_id: str, expires_at: datetime) -> None:
    """Record the token as signed out (idempotent), and forget the user's expired ones: they are
    refused anyway, so the table holds at most the user's tokens still in their lifetime."""
    await conn.execute("DELETE FROM signed_out_tokens WHERE username = %s AND expires_at < now()", [username])
    await conn.execute(
        "INSERT INTO signed_out_tokens (token_id, username, expires_at) VALUES (%s, %s, %s)"
        " ON CONFLICT (token_id) DO NOTHING",
        [token_id, username, expires_at],
    )


async def signed_out_tokens(conn: AsyncConnection, username: str) -> frozenset[str]:
    """The ids of the user's signed-out tokens that have not expired yet."""
    cur = await conn.execute(
        "SELECT token_id FROM signed_out_tokens WHERE username = %s AND expires_at >= now()", [username])
    return frozenset(token_id for (token_id,) in await cur.fetchall())
