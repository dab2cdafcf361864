"""Topic layout: created up front with explicit partition counts.

A producer writing to a missing topic would otherwise create it with one
partition (Tansu and Kafka's auto-create both do), which caps parallelism.
Keys: camera_id for camera topics (keeps per-camera order), sensor_id for
sensor readings, entry_id for the compacted watchlist.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from ioc.config import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    compacted: bool = False


def topic_specs(settings: Settings) -> list[TopicSpec]:
    t = settings.topics
    n = settings.topic_partitions
    return [
        TopicSpec(t.frames, n),
        TopicSpec(t.edge_plate_reads, n),
        TopicSpec(t.sensor_readings, n),
        TopicSpec(t.plate_reads, n),
        TopicSpec(t.alerts, n),
        TopicSpec(t.dead_letter, n),
        TopicSpec(t.watchlist, 1, compacted=True),
    ]


def create_topics(settings: Settings, *, replace: Collection[str] = ()) -> list[str]:
    """Create missing topics; returns the names created. Safe to run repeatedly.

    Topics named in ``replace`` are deleted first where they exist: one a client had
    the broker create with its defaults (auto-created, not compacted, the broker's
    partition count) is made again as specified.
    """
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_servers(), client_id="ioc-admin", request_timeout_ms=15000
    )
    try:
        existing = set(admin.list_topics())
        stale = sorted(existing.intersection(replace))
        if stale:
            try:
                admin.delete_topics(stale)
            except KafkaError as exc:  # e.g. already being deleted: a later call creates it
                logger.warning("could not delete topics %s: %s", stale, exc)
                return []
            existing.difference_update(stale)
            logger.warning("deleted topics %s to create them again as specified", stale)
        missing = [s for s in topic_specs(settings) if s.name not in existing]
        created = []
        for spec in missing:
            configs = {"cleanup.policy": "compact"} if spec.compacted else {}
            try:
                admin.create_topics(
                    [NewTopic(spec.name, spec.partitions, settings.topic_replication, topic_configs=configs)]
                )
                created.append(spec.name)
            except TopicAlreadyExistsError:
                pass
        if created:
            logger.info("created topics %s", created)
        return created
    finally:
        admin.close()
