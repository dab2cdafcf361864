"""``ioc topics``: create the Kafka topics with their partition counts."""

from __future__ import annotations

import argparse

from ioc.config import get_settings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("topics", help="create Kafka topics up front (idempotent)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:  # noqa: ARG001
    from streams.topics import create_topics, topic_specs

    settings = get_settings()
    created = set(create_topics(settings))
    for spec in topic_specs(settings):
        state = "created" if spec.name in created else "exists"
        print(f"{spec.name}\tpartitions={spec.partitions}\tcompacted={spec.compacted}\t{state}")
    return 0
