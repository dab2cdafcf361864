"""``ioc bench <name>``: benchmarks, one module each under ``ioc/bench``.

Every benchmark prints human-readable lines and, as its last line of stdout,
one JSON object with its figures.
"""

from __future__ import annotations

import argparse

from ioc import bench

SUBCOMMANDS = bench  # the benchmarks: ioc.cli registers them under the parser returned below


def register(sub: argparse._SubParsersAction) -> argparse._SubParsersAction:
    parser = sub.add_parser("bench", help="run a benchmark")
    return parser.add_subparsers(dest="benchmark", required=True)
