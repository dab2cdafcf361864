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

from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
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


@dataclass(frozen=True)
class TopicState:
    """A topic as the broker has it: partitions, and compaction where the broker says (None: it did not)."""

    partitions: int
    compacted: bool | None


def describe_topics(settings: Settings) -> dict[str, TopicState]:
    """The broker's own state of this deployment's topics that exist (what ``ioc topics`` checks
    against :func:`topic_specs`: a topic a client had auto-created has the broker's defaults)."""
    names = [spec.name for spec in topic_specs(settings)]
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_servers(), client_id="ioc-admin", request_timeout_ms=15000
    )
    try:
        existing = set(admin.list_topics())
        topics = admin.describe_topics([n for n in names if n in existing]) if existing else []
        partitions = {t["name"]: len(t["partitions"]) for t in topics if not t.get("error_code")}
        compacted = _compaction(admin, list(partitions))
    finally:
        admin.close()
    return {name: TopicState(count, compacted.get(name)) for name, count in partitions.items()}


def _compaction(admin: KafkaAdminClient, names: list[str]) -> dict[str, bool]:
    """Whether each topic is compacted, as far as the broker answers DescribeConfigs."""
    if not names:
        return {}
    resources = [ConfigResource(ConfigResourceType.TOPIC, name, ["cleanup.policy"]) for name in names]
    client_log = logging.getLogger("kafka")  # a broker without DescribeConfigs (Tansu) drops the
    level = client_log.level                 # connection, and the client logs that as errors
    client_log.setLevel(logging.CRITICAL)
    try:
        described = admin.describe_configs(resources, config_filter="all")
    except KafkaError as exc:
        logger.info("the broker did not describe the topics' configuration: %s", exc)
        return {}
    finally:
        client_log.setLevel(level)
    found = {}
    for name, configs in described.get("topic", {}).items():
        policy = configs.get("cleanup.policy")
        value = policy.get("value") if isinstance(policy, dict) else policy
        if isinstance(value, str):
            found[name] = "compact" in value.split(",")
    return found


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
