"""The Faust app as the workers build it."""

from __future__ import annotations

from ioc.config import Settings
from streams.app import create_app


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
