"""Fault tests share: settings for real worker processes, a prepared database, a producer,
and services of their own (a PostgreSQL cluster, a broker) for faults that would break
what other tests use.

Every fault test runs on the TimescaleDB layout (production's); the faults are about
delivery, not about the schema, and running them twice would double the slowest tests.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from pipeline_helpers import Workers, open_producer, prepared

from ioc.config import Settings
from ioc.embedded.broker import EmbeddedBroker
from ioc.embedded.ports import free_port
from ioc.embedded.postgres import EmbeddedPostgres

# Fast enough to show a fault within seconds; 4 partitions so two workers split them;
# the messages an agent takes at once are stored in several batches (envelopes hold
# 100 reads), so every fault also meets a worker between two batches of one take.
WORKER_SETTINGS: dict[str, Any] = {
    "recognition_threads": 1,
    "sink_batch_seconds": 0.05,
    "sink_batch_events": 250,
    "topic_partitions": 4,
}


@pytest.fixture
def fault_settings(settings_factory: Callable[..., Settings]) -> Callable[..., Settings]:
    """``settings_factory`` with the worker settings above; keywords (another broker or
    database) override."""

    def build(**overrides: Any) -> Settings:
        return settings_factory(**(WORKER_SETTINGS | overrides))

    return build


@pytest.fixture
async def settings(fault_settings: Callable[..., Settings]) -> Settings:
    """The shared broker and a fresh TimescaleDB database, prepared."""
    return await prepared(fault_settings())


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[[Settings], Workers]]:
    """Start ``ioc worker`` processes for given settings; all are stopped (and their logs
    printed) at the end of the test."""
    started: list[Workers] = []

    def make(settings: Settings) -> Workers:
        group = Workers(settings, tmp_path)
        started.append(group)
        return group

    yield make
    for group in started:
        group.stop()


@pytest.fixture
async def producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    async with open_producer(settings.kafka_bootstrap or "") as p:
        yield p


@pytest.fixture
def own_cluster() -> Iterator[EmbeddedPostgres]:
    """A TimescaleDB cluster of this test only: it may be stopped, filled or made read-only."""
    cluster = EmbeddedPostgres(timescale=True).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """A broker of this test only, on a fixed port, so it can be restarted (losing its data)."""
    broker = EmbeddedBroker(port=free_port(), log_dir=tmp_path / "broker").start()
    yield broker
    broker.stop()


@pytest.fixture
def small_tmpfs() -> Iterator[Path]:
    """A 64 MB tmpfs owned by the cluster's user, for a tablespace that can really fill up.

    Mounting needs root with CAP_SYS_ADMIN; elsewhere the test is skipped (the emulated
    variant still covers the same error path).
    """
    path = Path(tempfile.mkdtemp(prefix="ioc-tmpfs-"))
    try:  # as root the cluster runs as "postgres" (ioc.embedded.postgres), which must own it
        owner = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
    except KeyError:
        owner = None
    ids = f",uid={owner.pw_uid},gid={owner.pw_gid}" if owner else ""
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size=64m,mode=0700{ids}", "tmpfs", str(path)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        path.rmdir()
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip()}): needs root with CAP_SYS_ADMIN")
    try:
        yield path
    finally:
        subprocess.run(["umount", "--lazy", str(path)], capture_output=True)
        path.rmdir()
