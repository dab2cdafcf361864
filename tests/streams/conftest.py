"""Fixtures of the stream tests that talk to the database directly."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from psycopg import AsyncConnection

from ioc.storage.database import connect
from ioc.storage.migrations import migrate


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[AsyncConnection]:
    """A migrated database, each statement committed as the worker's timers run them."""
    await migrate(database_url)
    connection = await connect(database_url, autocommit=True)
    try:
        yield connection
    finally:
        await connection.close()
