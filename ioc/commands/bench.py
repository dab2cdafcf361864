"""``ioc bench <name>``: benchmarks, one module each under ``ioc/bench``.

Every benchmark prints human-readable lines and, as its last line of stdout,
one JSON object with its figures.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil

from ioc import bench


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("bench", help="run a benchmark")
    bench_sub = parser.add_subparsers(dest="benchmark", required=True)
    for info in sorted(pkgutil.iter_modules(bench.__path__), key=lambda m: m.name):
        importlib.import_module(f"{bench.__name__}.{info.name}").register(bench_sub)
