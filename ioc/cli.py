"""The ``ioc`` command line.

Each sub-command lives in its own module under ``ioc/commands`` and exposes
``register(subparsers)``, which adds its parser with ``set_defaults(func=...)``;
``func(args) -> int`` is the exit status. Modules are imported only when the CLI
runs, so importing ``ioc`` stays cheap.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from ioc import commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ioc", description="IOC stream processor")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("kafka", "aiokafka", "httpx"):  # connection chatter, a line per request, at INFO
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
