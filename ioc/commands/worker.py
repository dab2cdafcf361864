"""``ioc worker``: one Faust stream-processing worker."""

from __future__ import annotations

import argparse

from ioc.commands._arguments import tcp_port
from ioc.config import get_settings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("worker", help="run a stream-processing worker (Faust)")
    parser.add_argument("--web-port", type=tcp_port, default=None, help="Faust web port (per worker)")
    parser.add_argument("--metrics-port", type=tcp_port, default=None, help="Prometheus port")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from streams.topics import create_topics
    from streams.worker import run_worker

    settings = get_settings()
    if args.metrics_port is not None:
        settings = settings.model_copy(update={"worker_metrics_port": args.metrics_port})
    create_topics(settings)
    run_worker(settings, web_port=args.web_port, loglevel="debug" if args.verbose else "info")
    return 0
