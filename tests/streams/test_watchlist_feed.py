"""The workers' watchlist on a real broker: read to the end of the compacted topic before any
read is matched, however slowly the broker answers the first fetch."""

from __future__ import annotations

import asyncio
import time

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


async def _send(settings: Settings, entry: WatchlistEntry, *, age_s: float) -> None:
    """Publish an entry whose message the broker stamps ``age_s`` ago (as a feed behind sees it)."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(settings.topics.watchlist, entry.model_dump_json().encode(),
                                     key=str(entry.entry_id).encode(),
                                     timestamp_ms=int((time.time() - age_s) * 1000))
    finally:
        await producer.stop()


async def test_entries_that_came_late_once_loaded_are_told_apart(settings: Settings) -> None:
    """Past-read matching searches a version again on a worker whose feed brought it late: its reads
    of meanwhile were matched without it (streams.agents.past_reads). Entries read at start-up are
    not late, however old: no read is matched before the feed is loaded."""
    old = WatchlistEntry(pattern="30A11111", reason="published long ago")
    await _send(settings, old, age_s=3600)
    feed = WatchlistFeed(settings)
    following = asyncio.create_task(feed.follow())
    try:
        await asyncio.wait_for(feed.caught_up.wait(), 60)
        assert feed.take_late() == []
        late, on_time = (WatchlistEntry(pattern=p, reason="test") for p in ("30A22222", "30A33333"))
        await _send(settings, late, age_s=60)
        await _send(settings, on_time, age_s=0)
        for _ in range(100):
            if {late, on_time} <= set(feed.entries()):
                break
            await asyncio.sleep(0.1)
        assert feed.take_late() == [late]
        assert feed.take_late() == []
    finally:
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)
