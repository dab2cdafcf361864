"""``ioc users``: accounts for the API (passwords from stdin, never the command line)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from ioc.storage.users import ROLES


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("users", help="manage API accounts")
    users = parser.add_subparsers(dest="action", required=True)
    add = users.add_parser("add", help="create a user (password read from stdin or prompted)")
    add.add_argument("username")
    add.add_argument("--role", choices=ROLES, required=True)
    add.set_defaults(func=run_add)
    listing = users.add_parser("list", help="list users and roles")
    listing.set_defaults(func=run_list)


def _password() -> str:
    if sys.stdin.isatty():
        first, second = getpass.getpass("Password: "), getpass.getpass("Again: ")
        if first != second:
            raise SystemExit("passwords differ")
        return first
    return sys.stdin.readline().rstrip("\n")


def run_add(args: argparse.Namespace) -> int:
    from ioc.config import get_settings
    from ioc.storage.database import connect
    from ioc.storage.users import create_user

    password = _password()

    async def add() -> None:
        conn = await connect(get_settings().database_conninfo())
        try:
            await create_user(conn, args.username, args.role, password)
            await conn.commit()
        finally:
            await conn.close()

    asyncio.run(add())
    print(f"created {args.username} ({args.role})")
    return 0


def run_list(args: argparse.Namespace) -> int:  # noqa: ARG001
    from ioc.config import get_settings
    from ioc.storage.database import connect
    from ioc.storage.users import list_users

    async def show() -> None:
        conn = await connect(get_settings().database_conninfo())
        try:
            for user in await list_users(conn):
                print(f"{user.username}\t{user.role}\t{'active' if user.active else 'disabled'}")
        finally:
            await conn.close()

    asyncio.run(show())
    return 0
