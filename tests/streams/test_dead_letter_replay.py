"""``ioc dead-letters`` reads the dead-letter topic to its end, however slow the fetches."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from pipeline_helpers import open_producer

import ioc.dead_letter_replay as dead_letter_replay
from ioc.config import Settings
from ioc.dead_letter_replay import UnfinishedRead, dead_letters
from ioc.schemas import DeadLetter
from streams.topics import create_topics

pytestmark = pytest.mark.parametrize("database_url", ["timescaledb"], indirect=True)


async def _letters_on_the_topic(settings: Settings, count: int) -> None:
    create_topics(settings)
    async with open_producer(settings.kafka_bootstrap or "") as producer:
        for i in range(count):
            letter = DeadLetter(source_topic=settings.topics.frames, key=f"CAM{i}".encode(),
                                reason="unknown_camera", error="not registered", payload=b"frame")
            await producer.send_and_wait(settings.topics.dead_letter, letter.model_dump_json().encode())


def _fetches_empty_at_first(monkeypatch: pytest.MonkeyPatch, empty_polls: int) -> None:
    """The first ``empty_polls`` polls wait their whole timeout for nothing, as fetches of large
    letters over a slow link do."""
    real = AIOKafkaConsumer.getmany
    polls = 0

    async def slow(self: AIOKafkaConsumer, *args: Any, timeout_ms: int = 0, **kwargs: Any) -> dict:
        nonlocal polls
        polls += 1
        if polls <= empty_polls:
            await asyncio.sleep(timeout_ms / 1000)
            return {}
        return await real(self, *args, timeout_ms=timeout_ms, **kwargs)

    monkeypatch.setattr(AIOKafkaConsumer, "getmany", slow)


async def _read_all(settings: Settings) -> list[DeadLetter | None]:
    return [letter async for letter in dead_letters(settings)]


async def test_slow_fetches_do_not_end_the_read(
    settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A read stopped at the first poll that waited in vain, and reported success."""
    settings = settings_factory()
    await _letters_on_the_topic(settings, 5)
    monkeypatch.setattr(dead_letter_replay, "POLL_S", 0.2)
    _fetches_empty_at_first(monkeypatch, 3)
    letters = await _read_all(settings)
    assert sorted(letter.key for letter in letters if letter) == [f"CAM{i}".encode() for i in range(5)]


async def test_a_read_that_stalls_says_so(
    settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_factory()
    await _letters_on_the_topic(settings, 2)
    monkeypatch.setattr(dead_letter_replay, "POLL_S", 0.2)
    monkeypatch.setattr(dead_letter_replay, "STALL_S", 1.0)
    _fetches_empty_at_first(monkeypatch, 1000)
    with pytest.raises(UnfinishedRead, match="before the end of partitions"):
        await _read_all(settings)
