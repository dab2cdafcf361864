"""The workers' watchlist on a real broker: read to the end of the compacted topic before any
read is matched, however slowly the broker answers the first fetch."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from ioc.config import Settings
from ioc.schemas import WatchlistEntry
from ioc.watchlist_sync import publish_entries
from streams.tables import WatchlistFeed
from streams.topics import create_topics

ENTRIES = 300


@pytest.fixture
async def settings(kafka_bootstrap: str, topic_prefix: str) -> Settings:
    settings = Settings(kafka_bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    create_topics(settings)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        entries = [WatchlistEntry(pattern=f"29A{n:05d}", reason="test") for n in range(ENTRIES)]
        await publish_entries(producer, settings.topics.watchlist, entries)
    finally:
        await producer.stop()
    return settings


async def test_the_watchlist_is_loaded_only_once_read_to_the_end(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first fetch comes back empty (the broker slow to answer after the seek): the feed was
    taken as loaded with no entry, and the reads matched against it raised no hit, ever."""
    fetch = AIOKafkaConsumer.getmany
    polls = 0

    async def slow_at_first(consumer: AIOKafkaConsumer, *args: object, **kwargs: object) -> dict:
        nonlocal polls
        polls += 1
        if polls == 1:
            return {}
        if polls == 2:  # the agents would start matching meanwhile
            await asyncio.sleep(1.0)
        return await fetch(consumer, *args, **kwargs)

    monkeypatch.setattr(AIOKafkaConsumer, "getmany", slow_at_first)
    feed = WatchlistFeed(settings)
    following = asyncio.create_task(feed.follow())
    try:
        await asyncio.wait_for(feed.caught_up.wait(), 60)
        assert len(feed.entries()) == ENTRIES
        assert not following.done(), following  # and it goes on following the topic
    finally:
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)
