"""``ioc topics`` against the real broker: it creates what is missing and reports each topic as the
broker has it, warning where one has fewer partitions than configured."""

from __future__ import annotations

import os

from kafka.admin import KafkaAdminClient, NewTopic
from pipeline_helpers import run_ioc

from ioc.config import Settings


def test_a_topic_with_fewer_partitions_than_configured_fails(kafka_bootstrap: str, topic_prefix: str) -> None:
    """A client had the broker auto-create the plate-reads topic with one partition: the command
    printed the configured count, and the workers' parallelism stayed capped unnoticed. (A watchlist
    topic that is not compacted fails it; Tansu, the test broker, does not say.)"""
    settings = Settings(kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix, topic_partitions=3)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        admin.create_topics([NewTopic(settings.topics.plate_reads, 1, 1)])
    finally:
        admin.close()
    env = {**os.environ, "IOC_KAFKA_BOOTSTRAP": kafka_bootstrap, "IOC_TOPIC_PREFIX": topic_prefix,
           "IOC_TOPIC_PARTITIONS": "3"}  # fmt: skip
    for run in range(2):  # creating the others, then only checking
        checked = run_ioc(env, "topics")
        assert checked.returncode == 0, checked.stderr
        lines = dict(line.split("\t", 1) for line in checked.stdout.splitlines())
        assert lines[settings.topics.plate_reads].startswith("partitions=1\t")
        assert lines[settings.topics.alerts].startswith("partitions=3\t")
        assert lines[settings.topics.alerts].endswith("created" if run == 0 else "exists")
        problems = [line for line in checked.stderr.splitlines() if line.startswith("ioc topics: ")]
        [problem] = problems
        assert f"warning: {settings.topics.plate_reads}: 1 partitions, 3 configured" in problem
