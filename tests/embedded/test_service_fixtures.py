"""The suite-wide fixtures in tests/conftest.py give what they promise."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest

from ioc.config import Settings

_prefixes_seen: set[str] = set()


def test_database_url_is_fresh_and_on_the_right_cluster(
    database_url: str, request: pytest.FixtureRequest
) -> None:
    variant = request.node.callspec.params["database_url"]
    with psycopg.connect(database_url, autocommit=True) as conn:
        name = conn.execute("SELECT current_database()").fetchone()[0]
        relations = conn.execute("SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace")
        extensions = conn.execute("SELECT array_agg(extname::text) FROM pg_extension").fetchone()[0]
        preload = conn.execute("SHOW shared_preload_libraries").fetchone()[0]
        # every earlier test's database was dropped: ours is the only test database in the cluster
        test_databases = conn.execute(
            "SELECT array_agg(datname::text) FROM pg_database WHERE datname LIKE 't\\_%'"
        ).fetchone()[0]
    assert name.startswith("t_test_database_url_is_fresh")
    assert relations.fetchone() == (0,)
    assert extensions == ["plpgsql"], "the database is empty: migrations create extensions themselves"
    assert ("timescaledb" in preload) == (variant == "timescaledb")
    assert test_databases == [name]


@pytest.mark.parametrize("attempt", [1, 2, 3])
def test_topic_prefix_is_unique_per_test(topic_prefix: str, attempt: int) -> None:
    assert Settings(topic_prefix=topic_prefix).topics.alerts == f"{topic_prefix}.alerts"
    assert topic_prefix not in _prefixes_seen
    _prefixes_seen.add(topic_prefix)


def test_settings_factory_fills_in_the_services(
    settings_factory: Callable[..., Settings], kafka_bootstrap: str, database_url: str, topic_prefix: str
) -> None:
    settings = settings_factory(sink_batch_size=7)
    assert settings.env == "test"
    assert settings.kafka_bootstrap == kafka_bootstrap
    assert settings.database_conninfo() == database_url
    assert settings.topic_prefix == topic_prefix
    assert settings.sink_batch_size == 7
    assert settings_factory(topic_prefix="custom").topics.frames == "custom.camera-frames"
    with psycopg.connect(settings.database_conninfo()) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
