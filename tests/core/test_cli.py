"""The ``ioc`` command line imports only the command it runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

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
