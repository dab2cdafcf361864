"""The ``ioc`` command line imports only the command it runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from ioc.embedded.ports import free_port

SERVICE_CLIENTS = ("aiohttp", "aiokafka", "httpx", "psycopg")


def _imported_after_parsing(argv: list[str]) -> dict[str, object]:
    """Parse ``argv`` in a fresh interpreter; which service clients it imported, and the commands."""
    script = (
        "import json, sys\n"
        "from ioc.cli import build_parser\n"
        f"parser = build_parser({argv!r})\n"
        "choices = parser._subparsers._group_actions[0].choices\n"  # argparse has no public accessor
        f"print(json.dumps({{'clients': [m for m in {SERVICE_CLIENTS!r} if m in sys.modules],\n"
        "                   'commands': sorted(choices)}))\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                               check=True)  # fmt: skip
    return json.loads(completed.stdout)


@pytest.mark.parametrize(
    "argv", [["anpr", "photo.jpg"], ["-v", "anpr", "--json", "a.jpg"], ["bench", "anpr"]]
)
def test_the_recogniser_commands_carry_no_service_clients(argv: list[str]) -> None:
    """``ioc anpr`` is a recogniser process: Kafka, PostgreSQL and HTTP clients cost it about 35 MB."""
    found = _imported_after_parsing(argv)
    assert found["clients"] == []
    assert found["commands"] == [argv[0] if argv[0] != "-v" else argv[1]]


def test_help_and_unknown_commands_see_every_command() -> None:
    for argv in ([], ["--help"], ["nonesuch"]):
        commands = _imported_after_parsing(argv)["commands"]
        assert {"anpr", "api", "bench", "demo", "migrate", "worker"} <= set(commands)


def test_a_benchmark_parses_with_only_its_own_module() -> None:
    from ioc.cli import build_parser

    argv = ["bench", "pipeline", "--events", "10"]
    args = build_parser(argv).parse_args(argv)
    assert args.command == "bench" and args.benchmark == "pipeline" and args.events == 10


def _ioc(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    return subprocess.run([sys.executable, "-m", "ioc", *argv], capture_output=True, text=True,
                          timeout=120, env={**clean, **env}, check=False)  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (["users", "list"], {}, "IOC_DATABASE_URL is not set"),
        (["topics"], {}, "IOC_KAFKA_BOOTSTRAP is not set"),
        (["users", "list"], {"IOC_DATABASE_URL": "postgresql://ioc:s3cret-pw@127.0.0.1:1/ioc"}, "database:"),
        # a SQLAlchemy-style URL, which libpq quotes whole in its error
        (["users", "list"], {"IOC_DATABASE_URL": "postgresql+psycopg://ioc:s3cret-pw@db/ioc"}, "database:"),
        (["users", "list"], {"IOC_ENV": "prod", "IOC_AUTH_SECRET": "s3cret-pw",
                             "IOC_DATABASE_URL": "postgresql://127.0.0.1:1/ioc"}, "IOC_AUTH_SECRET"),
        # an unencoded @ in the password: libpq took the rest of it for the host, and quoted that
        (["users", "list"], {"IOC_DATABASE_URL": "postgresql://ioc:s3cret-pw@s3cret-pw@127.0.0.1:1/ioc"},
         "%40"),
        # an unencoded / in the password: libpq took what came before it for the host and port, the
        # rest for the database name (and psycopg a bit of it for the port)
        (["users", "list"], {"IOC_DATABASE_URL": "postgresql://ioc:s3cret-pw/x@127.0.0.1:1/ioc"}, "%2F"),
        (["users", "list"], {"IOC_DATABASE_URL": "postgresql://ioc:s3cret-pw@x/s3cret-pw@127.0.0.1:1/ioc"},
         "%2F"),
        # the API failed inside uvicorn's start-up: a traceback, exit 3 (after 30 s for the database)
        (["api"], {}, "IOC_DATABASE_URL is not set"),
        (["api"], {"IOC_DATABASE_URL": "postgresql://ioc:s3cret-pw@127.0.0.1:1/ioc"}, "database:"),
    ],
)
def test_errors_around_a_command_are_one_line_without_secrets(
    argv: list[str], env: dict[str, str], expected: str
) -> None:
    """Settings, database and broker errors gave tracebacks, one with the database password."""
    done = _ioc(*argv, **env)
    assert done.returncode == 2, done.stderr
    assert expected in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert "s3cret-pw" not in done.stdout + done.stderr


def test_the_api_refuses_an_unreachable_database_at_once() -> None:
    """Its pool retried for 30 s, then uvicorn printed the PoolTimeout's traceback."""
    started = time.monotonic()
    done = _ioc("api", IOC_DATABASE_URL="postgresql://ioc@127.0.0.1:1/ioc")
    assert done.returncode == 2 and time.monotonic() - started < 15, done.stderr
    assert done.stderr.splitlines() == [done.stderr.splitlines()[0]], done.stderr
    assert done.stderr.startswith("ioc api: database:"), done.stderr


def test_an_api_start_up_failure_is_one_line() -> None:
    """A failure in the app's start-up (past the command's own checks) ended in uvicorn's traceback
    and exit 3, not the one line and exit status of every other command."""
    script = (
        "import sys\n"
        "from contextlib import asynccontextmanager\n"
        "from fastapi import FastAPI\n"
        "from psycopg_pool import PoolTimeout\n"
        "import ioc.api.main, ioc.commands.api\n"
        "@asynccontextmanager\n"
        "async def lifespan(app):\n"
        "    raise PoolTimeout(\"couldn't get a connection after 30.00 sec\")\n"
        "    yield\n"
        "ioc.api.main.create_app = lambda settings: FastAPI(lifespan=lifespan)\n"
        "ioc.commands.api._check_database = lambda conninfo: None\n"
        "from ioc.cli import main\n"
        "sys.exit(main(['api', '--port', sys.argv[1]]))\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("IOC_")}
    done = subprocess.run([sys.executable, "-c", script, str(free_port())], capture_output=True, text=True,
                          timeout=60, env={**clean, "IOC_DATABASE_URL": "postgresql://ioc@127.0.0.1:1/ioc"},
                          check=False)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.splitlines()[-1] == "ioc api: database: couldn't get a connection after 30.00 sec"


@pytest.mark.parametrize("env", [{}, {"IOC_KAFKA_BOOTSTRAP": "127.0.0.1:1"}])
@pytest.mark.parametrize("argv", [["dead-letters", "list"],
                                  ["dead-letters", "replay", "--reason", "unknown_camera"]])
def test_dead_letters_print_nothing_before_failing_to_connect(argv: list[str], env: dict[str, str]) -> None:
    """``list`` printed its header, then failed; its consumer (``replay``'s producer) was left unclosed."""
    done = _ioc(*argv, **env)
    assert done.returncode == 2, done.stderr
    assert done.stdout == "", done.stdout
    assert "Unclosed" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.splitlines()[-1].startswith("ioc dead-letters: "), done.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["api", "--port", "99999"],  # uvicorn said it ran on 99999 and listened on 34463
        ["api", "--port", "0"],
        ["api", "--port", "http"],
        ["api", "--workers", "0"],
        ["worker", "--web-port", "65536"],
        ["worker", "--metrics-port", "0"],
        ["worker", "--metrics-port", "-9108"],
        ["demo", "--workers", "0"],
        ["demo", "--workers", "-2"],
        ["bench", "pipeline", "--events", "0"],
        ["bench", "pipeline", "--envelope", "0"],
        ["users", "token", "someone", "--purpose", "a script", "--ttl", "0"],  # fell back to the default
        ["users", "token", "someone", "--purpose", "a script", "--ttl", "-5"],  # an expired token, audited
    ],
)
def test_ports_and_counts_out_of_range_are_refused(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from ioc.cli import build_parser

    with pytest.raises(SystemExit) as refused:
        build_parser(argv).parse_args(argv)
    assert refused.value.code == 2
    assert argv[-1] in capsys.readouterr().err


def test_ports_and_counts_in_range_are_taken() -> None:
    from ioc.cli import build_parser

    argv = ["api", "--port", "65535", "--workers", "2"]
    args = build_parser(argv).parse_args(argv)
    assert (args.port, args.workers) == (65535, 2)
    argv = ["worker", "--web-port", "1", "--metrics-port", "9108"]
    args = build_parser(argv).parse_args(argv)
    assert (args.web_port, args.metrics_port) == (1, 9108)


def test_a_too_long_token_is_refused_before_the_database() -> None:
    """``--ttl 315360000`` issued a ten-year token (and audited it)."""
    done = _ioc("users", "token", "someone", "--purpose", "a script", "--ttl", "315360000",
                IOC_DATABASE_URL="postgresql://ioc@127.0.0.1:1/ioc", IOC_TOKEN_TTL_SECONDS="3600")
    assert done.returncode == 1 and done.stdout == "", done.stderr
    assert done.stderr.splitlines() == ["ioc users: --ttl 315360000: at most IOC_TOKEN_TTL_SECONDS (3600)"]


def test_migration_errors_and_masked_urls_are_one_line() -> None:
    from ioc.command_errors import describe, masked
    from ioc.storage.migrations import MigrationError

    assert describe(MigrationError("PostgreSQL >= 15 required, server is 140011")) == (
        "PostgreSQL >= 15 required, server is 140011")
    assert "ter2" not in masked("invalid URI: postgresql://u:hun@ter2@db/ioc")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://ioc:pa/ss@db/ioc", "postgresql://ioc:***@db/ioc"),
        # the text after the URL is kept, a password with both / and @ starred out whole
        ("cannot reach postgresql://ioc:p@ss/w0rd@db:5432/ioc?sslmode=require: refused by db, see x@y",
         "cannot reach postgresql://ioc:***@db:5432/ioc?sslmode=require: refused by db, see x@y"),
        ('missing "=" after "postgresql://ioc:pa/ss@db/ioc" in connection info string',
         'missing "=" after "postgresql://ioc:***@db/ioc" in connection info string'),
        # two URLs, with and without a space between them
        ("primary postgresql://a:x/1@h1/d and standby kafka+ssl://b:y@2@h2:9093 failed",
         "primary postgresql://a:***@h1/d and standby kafka+ssl://b:***@h2:9093 failed"),
        ("hosts postgresql://a:x/1@h1/d,postgresql://b:y/2@h2/d down",
         "hosts postgresql://a:***@h1/d,postgresql://b:***@h2/d down"),
        ("postgresql://ioc@db/ioc and postgresql://db:5432/ioc have none", None),
    ],
)
def test_masked_urls_lose_a_password_with_a_slash(text: str, expected: str | None) -> None:
    """``[^\\s/]*@`` stopped at the password's / and showed ``postgresql://ioc:pa/ss@db/ioc`` whole."""
    from ioc.command_errors import masked

    assert masked(text) == (text if expected is None else expected)


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("postgresql://ioc:hun/ter2@db/ioc", "%2F"),
        ("postgresql://ioc:hun/ter2@db", "%2F"),
        ("postgresql://ioc:hun@ter/2@db/ioc", "%2F"),
        ("postgresql://ioc:hun@ter2@db/ioc", "%40"),
        ("postgresql://ioc:hun%2Fter2@db/ioc?sslmode=require", None),
        ("postgresql://ioc:hun%40ter2@db:5432/ioc", None),
        ("postgresql:///ioc?host=/var/run/postgresql", None),
    ],
)
def test_a_database_url_with_a_slash_in_its_password_is_refused(url: str, refused: str | None) -> None:
    """libpq reads ``ioc:hun/ter2@db/ioc`` as host ioc, port hun, database ter2@db/ioc: let through."""
    from pydantic import ValidationError

    from ioc.command_errors import describe
    from ioc.config import Settings

    if refused is None:
        assert Settings(database_url=url).database_conninfo() == url
        return
    with pytest.raises(ValidationError) as raised:
        Settings(database_url=url)
    line = describe(raised.value)
    assert line is not None and refused in line and "IOC_DATABASE_URL" in line, line
    assert not any(part in line for part in ("hun", "ter2", "ter/2", "@db", "db/ioc")), line
