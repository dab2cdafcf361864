"""``ioc topics``: create the Kafka topics with their partition counts, and check them."""

from __future__ import annotations

import argparse
import sys

from ioc.config import get_settings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("topics", help="create Kafka topics up front (idempotent) and check them: "
                                           "warn of fewer partitions than configured, exit 1 for a "
                                           "watchlist topic that is not compacted")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:  # noqa: ARG001
    """Print each topic as the broker has it. A topic a client had auto-created has the broker's
    defaults: fewer partitions than configured cap the workers that share its load, and a watchlist
    topic that is not compacted loses entries with its retention (those wanted vehicles are no longer
    matched after a worker restarts). Printing what was configured hid both. The first is a warning
    (the workers run, with less parallelism; compose starts them after this command), the second
    fails the command."""
    from streams.topics import create_topics, describe_topics, topic_specs

    settings = get_settings()
    created = set(create_topics(settings))
    actual = describe_topics(settings)
    warnings, problems = [], []
    for spec in topic_specs(settings):
        state = actual.get(spec.name)
        if state is None:
            print(f"{spec.name}\tmissing")
            problems.append(f"{spec.name}: missing after creating it")
            continue
        compacted = "unknown" if state.compacted is None else state.compacted
        origin = "created" if spec.name in created else "exists"
        print(f"{spec.name}\tpartitions={state.partitions}\tcompacted={compacted}\t{origin}")
        if state.partitions < spec.partitions:
            warnings.append(f"{spec.name}: {state.partitions} partitions, {spec.partitions} configured "
                            "(IOC_TOPIC_PARTITIONS): recreate it, or add partitions where the broker can")
        if spec.compacted and state.compacted is False:
            problems.append(f"{spec.name}: not compacted: set cleanup.policy=compact, or delete it and run "
                            "ioc topics again (the workers republish every active entry once it is back)")
    for warning in warnings:
        print(f"ioc topics: warning: {warning}", file=sys.stderr)
    for problem in problems:
        print(f"ioc topics: error: {problem}", file=sys.stderr)
    return 1 if problems else 0
