"""Dead letters stay within what the producer sends: the payload is cut to the configured size
and an outsized key is left out (it went in twice, and a 30 kB key with a message near the size
limit made a letter the producer refused, which stopped the agent)."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import KafkaConnectionError

from ioc.config import Settings
from ioc.schemas import DeadLetter
from streams import retries
from streams.dead_letters import MAX_KEY_BYTES, DeadLetters


class SentTopic:
    """The dead-letter topic as far as DeadLetters sends to it; its first ``failures`` sends fail."""

    def __init__(self, failures: int = 0) -> None:
        self.sent: list[tuple[bytes | None, bytes]] = []
        self.attempts, self._failures = 0, failures

    async def send(self, *, key: bytes | None, value: bytes) -> asyncio.Future:
        self.attempts += 1
        done = asyncio.get_running_loop().create_future()
        if self.attempts <= self._failures:
            done.set_exception(KafkaConnectionError("broker away"))
        else:
            self.sent.append((key, value))
            done.set_result(None)
        return done

    def get_topic_name(self) -> str:
        return "ioc.dead-letter"


class _Message:
    """A consumed message as far as dead letters look at one (hashed by identity, as Faust's are)."""

    def __init__(self, key: bytes, value: bytes) -> None:
        self.topic, self.partition, self.offset = "ioc.edge-plate-reads", 0, 7
        self.key, self.value = key, value


def _message(key: bytes, value: bytes) -> _Message:
    return _Message(key, value)


async def test_an_outsized_key_is_left_out_and_the_letter_fits_the_producer() -> None:
    max_payload = Settings(kafka_bootstrap="127.0.0.1:9").dead_letter_max_payload
    producer_limit = 4 * max_payload // 3 + 65536  # streams.app: producer_max_request_size
    topic = SentTopic()
    letters = DeadLetters(topic, max_payload=max_payload)
    await letters.publish(_message(b"k" * 30_000, b"{" * 1_030_000), "bad_json", "not JSON")
    await letters.publish(_message(b"CP01-CAM1", b"{"), "bad_json", "not JSON")
    (big_key, big), (small_key, small) = topic.sent
    assert big_key is None and len(big) < producer_limit
    letter = DeadLetter.model_validate_json(big)
    assert letter.key is None and "key of 30000 bytes left out" in letter.error and letter.payload_truncated
    assert small_key == b"CP01-CAM1" and DeadLetter.model_validate_json(small).key == b"CP01-CAM1"
    assert MAX_KEY_BYTES >= 64


async def test_a_message_is_dead_lettered_once() -> None:
    """A batch run again after an outage, or dead-lettered whole after a failure, holds messages
    its handler had dead-lettered already: one letter each, counted once."""
    topic = SentTopic()
    letters = DeadLetters(topic, max_payload=1000)
    message = _message(b"CP01-CAM1", b"{}")
    await letters.publish(message, "unknown_camera", "CP01-CAM1")
    await letters.publish(message, "processing_error", "RuntimeError()")
    await letters.publish(_message(b"CP01-CAM1", b"{}"), "unknown_camera", "CP01-CAM1")  # another message
    assert len(topic.sent) == 2
    assert DeadLetter.model_validate_json(topic.sent[0][1]).reason == "unknown_camera"


async def test_a_letter_the_broker_refuses_for_a_moment_is_sent_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The broker away for a moment: the letter is sent when it is back, and the agent goes on
    (the failure had escaped the agent)."""
    monkeypatch.setattr(retries, "FIRST_WAIT_S", 0.01)
    topic = SentTopic(failures=2)
    await DeadLetters(topic, max_payload=1000).publish(_message(b"CP01-CAM1", b"{"), "bad_json", "not JSON")
    assert topic.attempts == 3 and len(topic.sent) == 1
