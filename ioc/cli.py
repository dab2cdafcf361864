"""The ``ioc`` command line.

Each sub-command lives in its own module under ``ioc/commands`` and exposes
``register(subparsers)``, which adds its parser with ``set_defaults(func=...)``;
``func(args) -> int`` is the exit status. A command with commands of its own
(``ioc bench NAME``) names their package in ``SUBCOMMANDS`` and returns its
subparsers from ``register``. Modules are imported only when the CLI runs, and
then only the named command's: the others import what they run on (Kafka and
PostgreSQL clients, an HTTP client), which ``ioc anpr`` need not carry.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

from ioc import commands
from ioc.command_errors import describe


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser of the command that ``argv`` names, or of them all (help, a mistyped name)."""
    parser = argparse.ArgumentParser(prog="ioc", description="IOC stream processor")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    _register(sub, commands, [word for word in argv if not word.startswith("-")])
    return parser


def _register(sub: argparse._SubParsersAction, package: ModuleType, words: Sequence[str]) -> None:
    """Register the modules of ``package``: only the one named ``words[0]`` if there is one
    (``dead-letters`` is the module ``dead_letters``). A module named ``_...`` is a part of
    the others, not a command."""
    modules = pkgutil.iter_modules(package.__path__)
    names = sorted(info.name for info in modules if not info.name.startswith("_"))
    named = words[0].replace("-", "_") if words else None
    for name in [named] if named in names else names:
        module = importlib.import_module(f"{package.__name__}.{name}")
        nested = module.register(sub)
        if hasattr(module, "SUBCOMMANDS"):
            _register(nested, module.SUBCOMMANDS, words[1:])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("kafka", "aiokafka", "httpx"):  # connection chatter, a line per request, at INFO
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except Exception as exc:
        reason = describe(exc)
        if reason is None:
            raise
        print(f"ioc {args.command}: {reason}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
