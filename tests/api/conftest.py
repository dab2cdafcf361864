"""API fixtures: the real app served by uvicorn on a loopback port, over a freshly
migrated database (tests/conftest.py's ``database_url``) and the real broker.

- ``api_factory(**settings)``: start a server (started servers stop after the test).
- ``api``: one with default settings.
- ``ApiServer`` and row factories live in ``served_api.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import uvicorn
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from served_api import ApiServer

from ioc.api import create_app
from ioc.config import Settings
from ioc.embedded.ports import free_port
from ioc.storage.migrations import migrate


async def _create_topics(settings: Settings) -> None:
    """The alerts and watchlist topics, as the worker would create them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([
            NewTopic(settings.topics.alerts, num_partitions=2, replication_factor=1),
            NewTopic(settings.topics.watchlist, num_partitions=1, replication_factor=1,
                     topic_configs={"cleanup.policy": "compact"}),
        ])
    finally:
        await admin.close()


async def _serve(settings: Settings) -> tuple[uvicorn.Server, asyncio.Task, Any]:
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=settings.api_port, log_level="warning",
                            lifespan="on", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign] - pytest owns signals
    task = asyncio.create_task(server.serve())
    for _ in range(300):
        if server.started or task.done():
            break
        await asyncio.sleep(0.05)
    if not server.started:
        task.cancel()
        raise RuntimeError("API server did not start")
    return server, task, app


@pytest.fixture
async def api_factory(
    settings_factory: Callable[..., Settings],
) -> AsyncIterator[Callable[..., Awaitable[ApiServer]]]:
    started: list[tuple[uvicorn.Server, asyncio.Task]] = []
    migrated = False

    async def start(**overrides: Any) -> ApiServer:
        nonlocal migrated
        overrides.setdefault("api_port", free_port())
        overrides.setdefault("auth_secret", "test-secret-" + uuid.uuid4().hex)  # replicas share one
        settings = settings_factory(**overrides)
        if not migrated:
            await migrate(settings.database_conninfo())
            await _create_topics(settings)
            migrated = True
        server, task, app = await _serve(settings)
        started.append((server, task))
        alerts = app.state.alerts
        if settings.kafka_bootstrap:
            await asyncio.wait_for(alerts.ready.wait(), 20)
        return ApiServer(settings=settings, url=f"http://127.0.0.1:{settings.api_port}", app=app)

    yield start
    for server, task in reversed(started):
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 15)


@pytest.fixture
async def api(api_factory: Callable[..., Awaitable[ApiServer]]) -> ApiServer:
    return await api_factory()


