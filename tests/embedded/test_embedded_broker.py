"""The embedded Tansu broker: a real Kafka round trip, and a lifecycle that leaves nothing behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from ioc.embedded.broker import EmbeddedBroker, reap_orphaned_brokers
from ioc.embedded.ports import port_accepts


async def _consume(bootstrap: str, topic: str, *, expected: int) -> list[tuple[bytes, bytes]]:
    """Read ``topic`` from the start until ``expected`` records arrived (no group: no join wait)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    received: list[tuple[bytes, bytes]] = []
    try:
        deadline = time.monotonic() + 30
        while len(received) < expected and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                received.extend((r.key, r.value) for r in records)
    finally:
        await consumer.stop()
    return received


async def test_produce_consume_round_trip(kafka_bootstrap: str, topic_prefix: str) -> None:
    topic = f"{topic_prefix}.round-trip"
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
        metadata = await admin.describe_topics([topic])
    finally:
        await admin.close()
    assert len(metadata[0]["partitions"]) == 3

    sent = [(f"key-{i % 7}".encode(), f"value-{i}".encode()) for i in range(50)]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in sent:
            await producer.send(topic, value=value, key=key)
        await producer.flush()
    finally:
        await producer.stop()

    received = await _consume(kafka_bootstrap, topic, expected=len(sent))
    assert sorted(received) == sorted(sent)


def test_start_stop_ends_the_process(tmp_path: Path) -> None:
    broker = EmbeddedBroker(log_dir=tmp_path)
    with pytest.raises(RuntimeError, match="not running"):
        _ = broker.bootstrap
    broker.start()
    pid, port = broker.pid, broker.port
    assert pid is not None and port is not None
    assert broker.bootstrap == f"127.0.0.1:{port}"
    assert port_accepts("127.0.0.1", port)
    assert Path(f"/proc/{pid}").exists()
    assert "tansu" in Path(f"/proc/{pid}/cmdline").read_bytes().decode()

    broker.stop()
    assert not broker.running
    assert not Path(f"/proc/{pid}").exists()  # our own child: reaped, not a zombie
    assert not port_accepts("127.0.0.1", port)
    assert (tmp_path / "broker.log").read_text().strip(), "the broker's output goes to its log"
    broker.stop()  # a second stop is harmless


def test_context_manager_and_own_temp_dir_are_cleaned_up() -> None:
    with EmbeddedBroker() as broker:
        pid, log_path = broker.pid, broker.log_path
        assert log_path is not None and log_path.exists()
    assert not Path(f"/proc/{pid}").exists()
    assert not log_path.parent.exists()


def test_two_brokers_get_different_ports() -> None:
    with EmbeddedBroker() as first, EmbeddedBroker() as second:
        assert first.bootstrap != second.bootstrap
        assert port_accepts("127.0.0.1", first.port) and port_accepts("127.0.0.1", second.port)


def test_broker_of_a_killed_owner_is_reaped_by_the_next_start() -> None:
    """A SIGKILLed test run cannot stop its broker; the next start stops it by PID."""
    owner = subprocess.run(
        [sys.executable, "-c", _START_AND_DIE], capture_output=True, text=True, timeout=60, check=False
    )
    assert owner.returncode == -signal.SIGKILL, owner.stderr
    orphan = int(owner.stdout.split()[0])
    assert Path(f"/proc/{orphan}").exists(), "the broker outlived its killed owner"

    reaped = reap_orphaned_brokers()
    assert reaped
    assert not Path(f"/proc/{orphan}").exists() or "Z" in Path(f"/proc/{orphan}/stat").read_text().split()[2]
    assert not any(path.exists() for path in reaped)


_START_AND_DIE = """
import os, signal
from ioc.embedded.broker import EmbeddedBroker
broker = EmbeddedBroker().start()
print(broker.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
