"""``ioc users``, ``ioc cameras`` and ``ioc api`` as an operator runs them: real processes, real database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from pipeline_helpers import run_ioc
from served_api import wait_until_serving

from ioc.api.security import verify_token
from ioc.embedded.ports import free_port
from ioc.storage.database import connect
from ioc.storage.migrations import migrate

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


async def test_users_add_reads_the_password_from_stdin_and_the_api_accepts_it(database_url: str) -> None:
    await migrate(database_url)
    env = {**os.environ, "IOC_DATABASE_URL": database_url, "IOC_AUTH_SECRET": "command-test-secret",
           "IOC_API_PORT": str(free_port())}
    env.pop("IOC_KAFKA_BOOTSTRAP", None)
    added = run_ioc(env, "users", "add", "cli-officer", "--role", "officer", stdin="a long passphrase\n")
    assert added.returncode == 0, added.stderr
    assert "a long passphrase" not in added.stdout + added.stderr
    assert "no terminal: reading the password from standard input" in added.stderr
    again = run_ioc(env, "users", "add", "cli-officer", "--role", "officer", stdin="a long passphrase\n")
    assert again.returncode == 1 and "not created" in again.stderr
    short = run_ioc(env, "users", "add", "cli-short", "--role", "officer", stdin="short\n")
    assert short.returncode == 1
    listing = run_ioc(env, "users", "list")
    assert "cli-officer\tofficer\tactive" in listing.stdout
    assert run_ioc(env, "users", "token", "cli-officer").returncode == 2  # no --purpose: refused
    token = run_ioc(env, "users", "token", "cli-officer", "--purpose", "ANPR gateway script").stdout.strip()
    assert token.count(".") == 2

    api = subprocess.Popen([sys.executable, "-m", "ioc", "api"], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{env['IOC_API_PORT']}"
    try:
        await wait_until_serving(url, api)
        async with httpx.AsyncClient(base_url=url) as client:
            login = await client.post("/api/auth/token", data={"username": "cli-officer",
                                                               "password": "a long passphrase"})
            assert login.status_code == 200, login.text
            me = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
            assert me.json() == {"username": "cli-officer", "role": "officer"}
            assert run_ioc(env, "users", "sign-out", "cli-officer").returncode == 0
            assert run_ioc(env, "users", "sign-out", "cli-nobody").returncode == 1
            assert run_ioc(env, "users", "deactivate", "cli-officer").returncode == 0
            refused = await client.post("/api/auth/token", data={"username": "cli-officer",
                                                                 "password": "a long passphrase"})
            assert refused.status_code == 401
    finally:
        api.send_signal(signal.SIGTERM)
        api.wait(20)
    assert api.returncode == 0
    # every change made from the command line is in the audit trail, a token issued too
    audit = await _audit(database_url)
    assert [(action, query["username"], purpose) for action, query, purpose in audit] == [
        ("user.create", "cli-officer", "command line administration"),
        ("user.token", "cli-officer", "ANPR gateway script"),
        ("user.sign_out", "cli-officer", "command line administration"),
        ("user.deactivate", "cli-officer", "command line administration"),
    ]


async def test_cameras_add_change_list_and_remove(database_url: str) -> None:
    """A province registers its cameras (frames from others are dead-lettered): a street camera
    that looks closer at every frame, a checkpoint camera that follows the worker's setting;
    adding a registered camera again changes it; a decommissioned one is removed."""
    await migrate(database_url)
    env = {**os.environ, "IOC_DATABASE_URL": database_url}
    env.pop("IOC_KAFKA_BOOTSTRAP", None)
    street = run_ioc(env, "cameras", "add", "ST01-CAM1", "--checkpoint", "ST01", "--look-closer", "always")
    assert street.returncode == 0, street.stderr
    checkpoint = run_ioc(env, "cameras", "add", "CP01-CAM1", "--checkpoint", "CP01", "--interval", "30")
    assert checkpoint.returncode == 0, checkpoint.stderr
    listing = run_ioc(env, "cameras", "list").stdout.splitlines()
    assert listing == ["camera_id\tcheckpoint_id\tinterval_s\tlook_closer\tlast_seen",
                       "CP01-CAM1\tCP01\t30\tdefault\tnever", "ST01-CAM1\tST01\t60\talways\tnever"]
    changed = run_ioc(env, "cameras", "add", "ST01-CAM1", "--checkpoint", "ST01", "--look-closer", "never")
    assert changed.returncode == 0, changed.stderr
    only = run_ioc(env, "cameras", "list", "--checkpoint", "ST01").stdout.splitlines()
    assert only[1:] == ["ST01-CAM1\tST01\t60\tnever\tnever"]
    refused = run_ioc(env, "cameras", "add", "ST01-CAM2", "--checkpoint", "ST01",
                      "--look-closer", "sometimes")
    assert refused.returncode == 2 and "invalid choice" in refused.stderr
    zero = run_ioc(env, "cameras", "add", "ST01-CAM2", "--checkpoint", "ST01", "--interval", "0")
    assert zero.returncode == 1
    assert len(run_ioc(env, "cameras", "list").stdout.splitlines()) == 3  # nothing registered by the refusals
    assert run_ioc(env, "cameras", "remove", "CP01-CAM1").returncode == 0
    assert run_ioc(env, "cameras", "remove", "CP01-CAM1").returncode == 1  # no longer there
    left = run_ioc(env, "cameras", "list").stdout.splitlines()[1:]
    assert [line.split("\t")[0] for line in left] == ["ST01-CAM1"]
    assert [(action, query["camera_id"]) for action, query, _ in await _audit(database_url)] == [
        ("camera.register", "ST01-CAM1"), ("camera.register", "CP01-CAM1"), ("camera.register", "ST01-CAM1"),
        ("camera.remove", "CP01-CAM1"),
    ]


async def _audit(database_url: str) -> list[tuple[str, dict, str]]:
    """The audit trail: action, query and purpose of each record, oldest first; all by a command."""
    async with await connect(database_url) as conn:
        cur = await conn.execute("SELECT action, query, purpose, actor, role FROM audit_log"
                                 " ORDER BY audit_id")
        rows = await cur.fetchall()
    assert all(actor.startswith("cli:") and role == "admin" for *_, actor, role in rows), rows
    return [(action, query, purpose) for action, query, purpose, *_ in rows]


async def test_cameras_import_registers_a_whole_file_or_nothing(database_url: str, tmp_path: Path) -> None:
    """A province registers hundreds of cameras from a file (CSV, or what ``list`` prints); a
    file with a bad line registers nothing and names every bad line."""
    await migrate(database_url)
    env = {**os.environ, "IOC_DATABASE_URL": database_url}
    env.pop("IOC_KAFKA_BOOTSTRAP", None)
    good = tmp_path / "cameras.csv"
    good.write_text("camera_id,checkpoint_id,interval_s,look_closer\n"
                    "CP01-CAM1,CP01,30,\nCP01-CAM2,CP01,,never\n\nST01-CAM1,ST01,,always\n")  # fmt: skip
    imported = run_ioc(env, "cameras", "import", str(good))
    assert imported.returncode == 0, imported.stderr
    listing = run_ioc(env, "cameras", "list").stdout
    assert listing.splitlines()[1:] == [
        "CP01-CAM1\tCP01\t30\tdefault\tnever",
        "CP01-CAM2\tCP01\t60\tnever\tnever",
        "ST01-CAM1\tST01\t60\talways\tnever",
    ]
    bad = tmp_path / "bad.csv"
    bad.write_text("camera_id,checkpoint_id,interval_s,look_closer\n"
                   "CP01-CAM1,CP01,soon,\nCP01-CAM3,CP01,30,sometimes\nCP01-CAM4,,30,\n"
                   "CP01-CAM5,CP01,30,\nCP01-CAM5,CP01,45,\n" + "C" * 65 + ",CP01,30,\n"
                   "CP01-CAM6,CP01,100000,\n")  # fmt: skip  (the last: over a day, refused as by the API)
    refused = run_ioc(env, "cameras", "import", str(bad))
    assert refused.returncode == 1 and "nothing registered" in refused.stderr
    assert [line.split(": ")[1] for line in refused.stderr.splitlines()[:-1]] == [
        "line 2", "line 3", "line 4", "line 6", "line 7", "line 8"]
    assert run_ioc(env, "cameras", "list").stdout == listing  # nothing changed
    assert run_ioc(env, "cameras", "import", str(tmp_path / "missing.csv")).returncode == 1
    changed = listing.replace("30\tdefault", "15\talways")  # a list, edited, goes back in through stdin
    assert run_ioc(env, "cameras", "import", "-", stdin=changed).returncode == 0
    assert "CP01-CAM1\tCP01\t15\talways\tnever" in run_ioc(env, "cameras", "list").stdout
    # --prune: the file is the whole registry; a refused file prunes nothing either
    assert run_ioc(env, "cameras", "import", "--prune", str(bad)).returncode == 1
    assert len(run_ioc(env, "cameras", "list").stdout.splitlines()) == 4
    only = "camera_id,checkpoint_id\nCP01-CAM2,CP01\nCP09-CAM1,CP09\n"
    pruned = run_ioc(env, "cameras", "import", "--prune", "-", stdin=only)
    assert pruned.returncode == 0, pruned.stderr
    assert pruned.stdout.splitlines()[1:] == ["removed 2 cameras not listed", "  CP01-CAM1", "  ST01-CAM1"]
    assert [line.split("\t")[:2] for line in run_ioc(env, "cameras", "list").stdout.splitlines()[1:]] == [
        ["CP01-CAM2", "CP01"], ["CP09-CAM1", "CP09"]]


@pytest.mark.parametrize(("trusted", "shared"), [("127.0.0.1", False), ("", True), ("10.0.0.0/8", True)],
                         ids=["proxy-trusted", "no-proxy-configured", "another-proxy"])
async def test_sign_in_throttling_sees_the_client_behind_a_trusted_proxy(
    database_url: str, trusted: str, shared: bool
) -> None:
    """Behind an Ingress every request comes from the controller's address. Where it is trusted
    (IOC_API_TRUSTED_PROXIES) the throttle keys on the client its X-Forwarded-For names, so one
    client's guesses do not lock the user out for every other; elsewhere the header is ignored
    (anyone can write it), so changing it does not escape the throttle."""
    await migrate(database_url)
    env = {**os.environ, "IOC_DATABASE_URL": database_url, "IOC_AUTH_SECRET": "command-test-secret",
           "IOC_API_PORT": str(free_port()), "IOC_API_TRUSTED_PROXIES": trusted}
    env.pop("IOC_KAFKA_BOOTSTRAP", None)
    added = run_ioc(env, "users", "add", "proxied", "--role", "officer", stdin="a long passphrase\n")
    assert added.returncode == 0, added.stderr
    api = subprocess.Popen([sys.executable, "-m", "ioc", "api"], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{env['IOC_API_PORT']}"
        await wait_until_serving(url, api)
        async with httpx.AsyncClient(base_url=url) as client:

            async def sign_in(password: str, client_address: str) -> int:
                answer = await client.post("/api/auth/token", headers={"X-Forwarded-For": client_address},
                                           data={"username": "proxied", "password": password})
                return answer.status_code

            assert [await sign_in("a guess", "203.0.113.5") for _ in range(5)] == [401] * 5
            assert await sign_in("a long passphrase", "203.0.113.5") == 429
            assert await sign_in("a long passphrase", "203.0.113.6") == (429 if shared else 200)
    finally:
        api.send_signal(signal.SIGTERM)
        api.wait(20)


async def test_users_token_lives_at_most_the_configured_token_lifetime(database_url: str) -> None:
    """``--ttl 315360000`` issued a ten-year token, ``--ttl -5`` an expired one (both audited), and
    ``--ttl 0`` one of the default lifetime."""
    await migrate(database_url)
    env = {**os.environ, "IOC_DATABASE_URL": database_url, "IOC_AUTH_SECRET": "command-test-secret",
           "IOC_TOKEN_TTL_SECONDS": "3600"}
    env.pop("IOC_KAFKA_BOOTSTRAP", None)
    assert run_ioc(env, "users", "add", "scripted", "--role", "officer", stdin="a long passphrase\n"
                   ).returncode == 0  # fmt: skip
    for ttl, status in (("315360000", 1), ("3601", 1), ("-5", 2), ("0", 2)):
        refused = run_ioc(env, "users", "token", "scripted", "--purpose", "a script", "--ttl", ttl)
        assert (refused.returncode, refused.stdout) == (status, ""), refused.stderr
        assert len(refused.stderr.splitlines()) <= 3 and "Traceback" not in refused.stderr, refused.stderr
    token = run_ioc(env, "users", "token", "scripted", "--purpose", "a script", "--ttl", "3600").stdout
    principal = verify_token(token.strip(), secret="command-test-secret")
    assert principal.expires - principal.issued == 3600
    assert [(action, query.get("ttl_s")) for action, query, _ in await _audit(database_url)] == [
        ("user.create", None), ("user.token", 3600)]


async def test_migrate_explains_a_layout_the_database_cannot_have(database_url: str) -> None:
    """A MigrationError (an operator's choice the server cannot meet) was a traceback."""
    env = {**os.environ, "IOC_DATABASE_URL": database_url}
    for expected in ("ioc migrate: TimescaleDB requested but not installed",
                     "ioc migrate: database already uses the 'postgres' layout, not 'timescaledb'"):
        done = run_ioc(env, "migrate", "--layout", "timescaledb")
        assert done.returncode == 2 and done.stdout == "", done.stderr
        assert "Traceback" not in done.stderr, done.stderr
        assert done.stderr.splitlines()[-1].startswith(expected), done.stderr
        await migrate(database_url)  # the postgres layout, this server having no TimescaleDB
