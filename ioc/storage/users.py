"""API users with salted scrypt password hashes (never the password itself).

Hashing takes a few hundred milliseconds on purpose (it is what makes a stolen
hash expensive to crack), so it runs in a thread, off the event loop. The
parameters travel inside each hash, so they can be raised later and old hashes
still verify.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

from psycopg import AsyncConnection
from psycopg.rows import class_row

from ioc.storage.database import connect

__all__ = [
    "ROLES",
    "Role",
    "SignInRecord",
    "User",
    "authenticate",
    "check_password",
    "create_user",
    "ensure_user",
    "get_user",
    "hash_password",
    "list_users",
    "set_active",
    "set_password",
    "sign_in_record",
    "verify_password",
]

Role = Literal["officer", "operator", "supervisor", "auditor", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)

# OWASP's scrypt equivalent of N=2^17, r=8, p=1, with a 16 MiB working set
_N, _R, _P = 2**14, 8, 5
_SALT_BYTES, _KEY_BYTES = 16, 32
_MAXMEM = 256 * 1024 * 1024
MIN_PASSWORD_LENGTH = 8


@dataclass(frozen=True, slots=True)
class User:
    username: str
    role: str
    active: bool
    created_at: datetime
    updated_at: datetime
    token_generation: int = 0  # tokens issued in another generation do not hold (migration 0014)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$key`` (base64 salt and key), with a fresh random salt."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"passwords need at least {MIN_PASSWORD_LENGTH} characters")
    salt = secrets.token_bytes(_SALT_BYTES)
    key = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, maxmem=_MAXMEM, dklen=_KEY_BYTES)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time comparison against a hash made by :func:`hash_password`."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(key)
        actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r),
                                p=int(p), maxmem=_MAXMEM, dklen=len(expected))
    except ValueError:
        return False
    return hmac.compare_digest(actual, expected)


# verified against when the user does not exist, so a wrong name costs as long as a wrong password
_DUMMY_HASH = f"scrypt${_N}${_R}${_P}${_b64(bytes(_SALT_BYTES))}${_b64(bytes(_KEY_BYTES))}"

_USER_COLUMNS = "username, role, active, created_at, updated_at, token_generation"


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")


async def create_user(conn: AsyncConnection, username: str, role: str, password: str) -> User:
    """Create a user; ``psycopg.errors.UniqueViolation`` if the name is taken."""
    _check_role(role)
    password_hash = await asyncio.to_thread(hash_password, password)
    async with conn.cursor(row_factory=class_row(User)) as cur:
        await cur.execute(
            "INSERT INTO users (username, role, password_hash) VALUES (%s, %s, %s)"
            f" RETURNING {_USER_COLUMNS}",
            [username, role, password_hash],
        )
        user = await cur.fetchone()
    assert user is not None
    return user


async def ensure_user(conninfo: str, username: str, role: str, password: str) -> None:
    """Create the user, or reset its role and password (for ``ioc demo`` and set-up scripts)."""
    _check_role(role)
    password_hash = await asyncio.to_thread(hash_password, password)
    async with await connect(conninfo) as conn:
        await conn.execute(
            "INSERT INTO users (username, role, password_hash) VALUES (%s, %s, %s)"
            " ON CONFLICT (username) DO UPDATE SET role = excluded.role,"
            " password_hash = excluded.password_hash, active = true, updated_at = now()",
            [username, role, password_hash],
        )
        await conn.commit()


async def get_user(conn: AsyncConnection, username: str) -> User | None:
    async with conn.cursor(row_factory=class_row(User)) as cur:
        await cur.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE username = %s", [username])
        return await cur.fetchone()


async def list_users(conn: AsyncConnection) -> list[User]:
    async with conn.cursor(row_factory=class_row(User)) as cur:
        await cur.execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY username")
        return await cur.fetchall()


async def authenticate(conn: AsyncConnection, username: str, password: str) -> User | None:
    """The active user with this name and password, else ``None`` (same cost either way)."""
    return await check_password(await sign_in_record(conn, username), password)


@dataclass(frozen=True, slots=True)
class SignInRecord:
    """What checking a sign-in needs from the database: the stored hash (a dummy one for a name
    that is not an active user, so that checking costs the same) and the user, if any."""

    stored_hash: str
    user: User | None


async def sign_in_record(conn: AsyncConnection, username: str) -> SignInRecord:
    cur = await conn.execute(
        f"SELECT password_hash, {_USER_COLUMNS} FROM users WHERE username = %s AND active", [username])
    row = await cur.fetchone()
    return SignInRecord(row[0], User(*row[1:])) if row else SignInRecord(_DUMMY_HASH, None)


async def check_password(record: SignInRecord, password: str) -> User | None:
    """The record's user if ``password`` is theirs, else ``None``. Needs no connection: the API
    holds none during the hash's work (a few hundred ms of scrypt in a thread)."""
    ok = await asyncio.to_thread(verify_password, password, record.stored_hash)
    return record.user if ok else None


async def set_password(conn: AsyncConnection, username: str, password: str) -> bool:
    password_hash = await asyncio.to_thread(hash_password, password)
    cur = await conn.execute(
        "UPDATE users SET password_hash = %s, updated_at = now() WHERE username = %s",
        [password_hash, username])
    return cur.rowcount == 1


async def set_active(conn: AsyncConnection, username: str, active: bool) -> bool:
    cur = await conn.execute(
        "UPDATE users SET active = %s, updated_at = now() WHERE username = %s", [active, username])
    return cur.rowcount == 1


async def end_sessions(conn: AsyncConnection, username: str) -> bool:
    """End every token of ``username``: tokens hold only in the generation they were issued in
    (migration 0014), and this moves it on; a new sign-in holds again. False for no such user."""
    cur = await conn.execute(
        "UPDATE users SET token_generation = token_generation + 1, updated_at = now() WHERE username = %s",
        [username])
    return cur.rowcount == 1
