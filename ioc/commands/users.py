"""``ioc users``: API accounts and tokens.

Passwords come from stdin or a prompt, never the command line (where ``ps`` and
shell history would keep them), and are stored only as scrypt hashes. Every change,
and every token issued, is in the audit trail (:mod:`ioc.commands._audit`).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TYPE_CHECKING

from ioc.commands._arguments import positive
from ioc.storage.users import ROLES

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from psycopg import AsyncConnection

    from ioc.storage.users import User


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("users", help="manage API accounts and tokens")
    users = parser.add_subparsers(dest="action", required=True)
    add = users.add_parser("add", help="create a user (password read from stdin or prompted)")
    add.add_argument("username")
    add.add_argument("--role", choices=ROLES, required=True)
    add.set_defaults(func=run_add)
    passwd = users.add_parser("passwd", help="set a user's password (stdin or prompt)")
    passwd.add_argument("username")
    passwd.set_defaults(func=run_passwd)
    for name, active, note in (("deactivate", False, "sign-in and tokens stop working within 30 s"),
                               ("activate", True, "allow sign-in again")):
        toggle = users.add_parser(name, help=f"{name} a user ({note})")
        toggle.add_argument("username")
        toggle.set_defaults(func=run_set_active, active=active)
    ending = users.add_parser("sign-out", help="end every session of a user, who may sign in again "
                                               "(a lost handheld; tokens stop working within 30 s)")
    ending.add_argument("username")
    ending.set_defaults(func=run_sign_out)
    listing = users.add_parser("list", help="list users and roles")
    listing.set_defaults(func=run_list)
    token = users.add_parser("token", help="print a bearer token for an active user (for scripts)")
    token.add_argument("username")
    token.add_argument("--purpose", required=True,
                       help="why the token is issued (audited: the user's plate look-ups with it are theirs)")
    token.add_argument("--ttl", type=positive, default=None,
                       help="seconds, at most IOC_TOKEN_TTL_SECONDS (the default)")
    token.set_defaults(func=run_token)


def _password() -> str:
    if sys.stdin.isatty():
        first, second = getpass.getpass("Password: "), getpass.getpass("Again: ")
        if first != second:
            raise SystemExit("passwords differ")
        return first
    # a script's pipe, or `kubectl exec -i` without -t, where what is typed shows: say which
    print("no terminal: reading the password from standard input, one line (use -t to type it "
          "unseen)", file=sys.stderr, flush=True)
    return sys.stdin.readline().rstrip("\r\n")


def _conninfo() -> str:
    from ioc.config import get_settings

    return get_settings().database_conninfo()


def run_add(args: argparse.Namespace) -> int:
    from psycopg import errors

    from ioc.commands._audit import audit_command
    from ioc.storage.database import run_committed
    from ioc.storage.users import create_user

    password = _password()

    async def create(conn: AsyncConnection) -> None:
        await create_user(conn, args.username, args.role, password)
        await audit_command(conn, "user.create", {"username": args.username, "role": args.role})

    try:
        run_committed(_conninfo(), create)
    except (ValueError, errors.UniqueViolation, errors.CheckViolation) as exc:
        print(f"not created: {exc}", file=sys.stderr)
        return 1
    print(f"created {args.username} ({args.role})")
    return 0


def run_passwd(args: argparse.Namespace) -> int:
    from ioc.commands._audit import audit_command
    from ioc.storage.database import run_committed
    from ioc.storage.users import set_password

    password = _password()

    async def change(conn: AsyncConnection) -> bool:
        changed = await set_password(conn, args.username, password)
        if changed:
            await audit_command(conn, "user.password", {"username": args.username})
        return changed

    try:
        changed = run_committed(_conninfo(), change)
    except ValueError as exc:
        print(f"not changed: {exc}", file=sys.stderr)
        return 1
    if not changed:
        print(f"no user {args.username}", file=sys.stderr)
        return 1
    print(f"password of {args.username} changed")
    return 0


def run_set_active(args: argparse.Namespace) -> int:
    from ioc.storage.users import set_active

    async def change(conn: AsyncConnection, username: str) -> bool:
        return await set_active(conn, username, args.active)

    return _audited_change(args.username, change, "user.activate" if args.active else "user.deactivate",
                           f"{args.username} {'activated' if args.active else 'deactivated'}")


def run_sign_out(args: argparse.Namespace) -> int:
    from ioc.storage.users import end_sessions

    return _audited_change(args.username, end_sessions, "user.sign_out",
                           f"{args.username}: every session ended")


def _audited_change(
    username: str, change: Callable[[AsyncConnection, str], Awaitable[bool]], action: str, done: str
) -> int:
    """``change`` the user and record ``action`` in the audit log, in one transaction; 1 for no such user."""
    from ioc.commands._audit import audit_command
    from ioc.storage.database import run_committed

    async def audited(conn: AsyncConnection) -> bool:
        if not await change(conn, username):
            return False
        await audit_command(conn, action, {"username": username})
        return True

    if not run_committed(_conninfo(), audited):
        print(f"no user {username}", file=sys.stderr)
        return 1
    print(done)
    return 0


def run_list(args: argparse.Namespace) -> int:  # noqa: ARG001
    from ioc.storage.database import run_committed
    from ioc.storage.users import list_users

    for user in run_committed(_conninfo(), list_users):
        print(f"{user.username}\t{user.role}\t{'active' if user.active else 'deactivated'}")
    return 0


def run_token(args: argparse.Namespace) -> int:
    from ioc.api.security import Principal, issue_token
    from ioc.commands._audit import audit_command
    from ioc.config import get_settings
    from ioc.storage.database import run_committed
    from ioc.storage.users import get_user

    settings = get_settings()
    ttl = args.ttl if args.ttl is not None else settings.token_ttl_seconds
    if not args.purpose.strip():
        print("--purpose must say why the token is issued", file=sys.stderr)
        return 1
    if ttl > settings.token_ttl_seconds:
        # the deployment's bound on a token's life, which sign-in and renewal keep to as well
        print(f"ioc users: --ttl {ttl}: at most IOC_TOKEN_TTL_SECONDS ({settings.token_ttl_seconds})",
              file=sys.stderr)
        return 1

    async def audited_user(conn: AsyncConnection) -> User | None:
        user = await get_user(conn, args.username)
        if user is not None and user.active:
            query = {"username": user.username, "role": user.role, "ttl_s": ttl}
            await audit_command(conn, "user.token", query, purpose=args.purpose.strip())
        return user

    user = run_committed(settings.database_conninfo(), audited_user)
    if user is None or not user.active:
        print(f"no active user {args.username}", file=sys.stderr)
        return 1
    principal = Principal(user.username, user.role, generation=user.token_generation)
    print(issue_token(principal, secret=settings.auth_secret.get_secret_value(), ttl_s=ttl))
    return 0
