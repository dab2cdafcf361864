"""``ioc demo``: everything on one machine, embedded broker and database by default."""

from __future__ import annotations

import argparse

from ioc.commands._arguments import positive


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("demo", help="run the whole system locally (Ctrl-C stops it)")
    parser.add_argument("--duration", type=float, default=None,
                        help="run unattended for SECONDS, then print a JSON summary")
    parser.add_argument("--workers", type=positive, default=1, help="Faust worker processes")
    parser.add_argument("--seed", type=int, default=None, help="simulator random seed")
    parser.add_argument("--use-configured-services", action="store_true",
                        help="run on IOC_DATABASE_URL / IOC_KAFKA_BOOTSTRAP where set (the demo seeds "
                        "made-up watchlist entries, cameras and an 'operator' account there)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ioc.demo import run_demo

    try:
        return run_demo(duration=args.duration, workers=args.workers, seed=args.seed,
                        configured_services=args.use_configured_services)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM while starting: what had started is stopped
        return 130
