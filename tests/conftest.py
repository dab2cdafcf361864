"""Service fixtures for the whole suite: a real Kafka-protocol broker and real
PostgreSQL clusters, one of each per test session (see ioc/embedded/).

- ``kafka_bootstrap``: ``IOC_TEST_KAFKA_BOOTSTRAP`` when set, else an embedded Tansu broker.
- ``pg_timescale`` / ``pg_plain``: clusters with and without TimescaleDB.
- ``database_url``: a fresh, empty database per test, once per cluster
  (params ``"timescaledb"`` and ``"postgres"``); dropped afterwards.
- ``topic_prefix``: a Kafka topic prefix unique to the test.
- ``settings_factory(**overrides)``: ``ioc.config.Settings`` wired to all of the above.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ioc.config import Settings
from ioc.embedded.broker import EmbeddedBroker
from ioc.embedded.ports import free_port
from ioc.embedded.postgres import EmbeddedPostgres, TimescaleUnavailable

DATABASE_VARIANTS = ("timescaledb", "postgres")
_CLUSTER_FIXTURE = {"timescaledb": "pg_timescale", "postgres": "pg_plain"}


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of the broker every test shares; isolate with ``topic_prefix``."""
    configured = os.environ.get("IOC_TEST_KAFKA_BOOTSTRAP")
    if configured:
        yield configured
        return
    with EmbeddedBroker(log_dir=tmp_path_factory.mktemp("broker")) as broker:
        yield broker.bootstrap


def _start_cluster(*, timescale: bool) -> EmbeddedPostgres:
    cluster = EmbeddedPostgres(timescale=timescale)
    try:
        return cluster.start()
    except TimescaleUnavailable as exc:
        # CI must test both layouts: a missing build is an error, never a skip.
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="session")
def pg_timescale() -> Iterator[EmbeddedPostgres]:
    """A cluster with TimescaleDB preloaded (fails when it is not installed)."""
    cluster = _start_cluster(timescale=True)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def pg_plain() -> Iterator[EmbeddedPostgres]:
    """A plain PostgreSQL cluster: TimescaleDB neither loaded nor available to CREATE EXTENSION."""
    cluster = _start_cluster(timescale=False)
    yield cluster
    cluster.stop()


def _database_name(request: pytest.FixtureRequest) -> str:
    """Readable and unique: the test's name, cut to fit, and a random suffix."""
    readable = re.sub(r"[^a-z0-9_]+", "_", request.node.name.lower()).strip("_")[:40]
    return f"t_{readable}_{uuid.uuid4().hex[:10]}"


@pytest.fixture(params=DATABASE_VARIANTS)
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """URL of a new empty database in the TimescaleDB or the plain cluster (``request.param``)."""
    cluster: EmbeddedPostgres = request.getfixturevalue(_CLUSTER_FIXTURE[request.param])
    name = _database_name(request)
    url = cluster.create_database(name)
    yield url
    cluster.drop_database(name)


@pytest.fixture
def topic_prefix() -> str:
    """A Kafka topic prefix no other test uses, so tests never see each other's messages."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def settings_factory(kafka_bootstrap: str, database_url: str, topic_prefix: str) -> Callable[..., Settings]:
    """Build ``Settings`` for this test's broker, database and topic prefix; keywords override.

    Everything else keeps its default, so worker processes started with
    ``ioc.demo.child_env`` (which forwards only these) see the same values.
    Pass ``free_port()`` (``ioc.embedded.ports``) for ports a test binds.
    """

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "env": "test",
            "kafka_bootstrap": kafka_bootstrap,
            "database_url": database_url,
            "topic_prefix": topic_prefix,
            "consumer_group": f"{topic_prefix}-worker",
            "worker_web_port": free_port(),
            "worker_metrics_port": free_port(),
            "api_port": free_port(),
        }
        values.update(overrides)
        return Settings(**values)

    return build


@pytest.fixture
def reliability_record(request: pytest.FixtureRequest) -> Callable[..., None]:
    """Record the figures of a fault, load, hostile-input or access test: one row of
    docs/reliability.md (``scripts/reliability_report.py`` runs the tests and writes it).

    Call it once a test has its figures, e.g. ``reliability_record(area="fault",
    held="3,000 edge reads", fault="database stopped 30 s", produced=3000, stored=3000,
    dead_lettered=0, lost=0, duplicated=0)``. Keys are free-form; ``area`` is one of
    fault, load, hostile, access. Written as a JSON line only when
    ``IOC_RELIABILITY_LOG`` names a file, so a plain ``pytest`` run is unaffected.
    """

    def record(**figures: Any) -> None:
        path = os.environ.get("IOC_RELIABILITY_LOG")
        if not path:
            return
        row = {"test": request.node.nodeid, **figures}
        with open(path, "a", encoding="utf-8") as log:
            log.write(json.dumps(row, default=str) + "\n")

    return record
