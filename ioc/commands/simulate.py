"""``ioc simulate``: send realistic checkpoint traffic to the configured broker."""

from __future__ import annotations

import argparse
import asyncio
import json


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("simulate", help="send simulated camera, edge and sensor traffic")
    parser.add_argument("--duration", type=float, default=None, help="seconds (default: forever)")
    parser.add_argument("--frames-per-s", type=float, default=None)
    parser.add_argument("--edge-reads-per-s", type=float, default=None)
    parser.add_argument("--sensor-per-s", type=float, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ioc.config import get_settings
    from ioc.simulator import TrafficSimulator
    from streams.topics import create_topics

    updates = {
        key: value
        for key, value in {
            "simulator_frames_per_s": args.frames_per_s,
            "simulator_edge_reads_per_s": args.edge_reads_per_s,
            "simulator_sensor_per_s": args.sensor_per_s,
        }.items()
        if value is not None
    }
    settings = get_settings().model_copy(update=updates)
    create_topics(settings)
    stats = asyncio.run(TrafficSimulator(settings, seed=args.seed).run(duration=args.duration))
    print(json.dumps(dict(stats.sent)))
    return 0
