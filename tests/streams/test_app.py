"""The Faust app as the workers build it."""

from __future__ import annotations

from faust.types import TP

from ioc.config import Settings
from streams.app import create_app, uncommitted_partitions


async def test_the_worker_consumer_waits_for_fetches_as_configured() -> None:
    """Faust fixes a 1.5 s fetch wait; Tansu holds a fetch that long even when data is
    waiting, which added up to 1.5 s per hop before the setting existed."""
    settings = Settings(kafka_bootstrap="127.0.0.1:9", consumer_fetch_max_wait_ms=40)
    app = create_app(settings)
    consumer = app.consumer._thread._create_worker_consumer(app.transport)  # built, never started
    assert consumer._fetch_max_wait_ms == 40
    # gateways may produce in transactions: what they abort is never processed
    assert consumer._isolation_level == "read_committed"
    assert consumer._group_id == settings.consumer_group and not consumer._enable_auto_commit
    app.consumer._thread.thread_loop.close()  # Faust made it for a consumer thread never started


def test_partitions_with_nothing_committed_are_those_faust_leaves_where_they_were() -> None:
    """Read from their start after Faust's seek to the committed offsets, which leaves them where
    a dropped fetch had left them: past records never processed."""
    committed, none, negative, zero = (TP("reads", p) for p in range(4))
    offsets = {committed: 35, none: None, negative: -1, zero: 0}  # as aiokafka's seek_to_committed gives them
    assert uncommitted_partitions(offsets) == [none, negative]
