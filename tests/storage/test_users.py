"""Users: salted scrypt hashes, never plain text; authentication."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import AsyncConnection

from ioc.storage.users import authenticate, create_user, ensure_user, hash_password, verify_password


def test_hash_is_salted_and_verifies() -> None:
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first != second and "correct horse" not in first
    assert verify_password("correct horse", first) and verify_password("correct horse", second)
    assert not verify_password("wrong horse", first)
    assert not verify_password("correct horse", "garbage")
    with pytest.raises(ValueError):
        hash_password("short")


async def test_create_and_authenticate(conn: AsyncConnection, migrated_url: str) -> None:
    user = await create_user(conn, "officer1", "officer", "s3cret-pass")
    assert user.role == "officer" and user.active
    await conn.commit()
    cur = await conn.execute("SELECT password_hash FROM users WHERE username = 'officer1'")
    stored = await cur.fetchone()
    assert stored[0].startswith("scrypt$") and "s3cret-pass" not in stored[0]
    assert (await authenticate(conn, "officer1", "s3cret-pass")) == user
    assert await authenticate(conn, "officer1", "wrong-pass") is None
    assert await authenticate(conn, "nobody", "s3cret-pass") is None
    with pytest.raises(psycopg.errors.UniqueViolation):
        await create_user(conn, "officer1", "officer", "another-pass")
    await conn.rollback()
    with pytest.raises(ValueError):
        await create_user(conn, "x", "superhero", "whatever-pass")
    # ensure_user resets role and password (the demo prints a fresh one each run)
    await ensure_user(migrated_url, "officer1", "supervisor", "new-password")
    renewed = await authenticate(conn, "officer1", "new-password")
    assert renewed is not None and renewed.role == "supervisor"
    assert await authenticate(conn, "officer1", "s3cret-pass") is None


async def test_database_refuses_a_plain_text_password(conn: AsyncConnection) -> None:
    with pytest.raises(psycopg.errors.CheckViolation):
        await conn.execute(
            "INSERT INTO users (username, role, password_hash) VALUES ('x', 'admin', 'hunter2')")
