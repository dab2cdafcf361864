"""The dead-letter topic: what no agent could process, with reason and original bytes."""

from __future__ import annotations

import logging
from weakref import WeakSet

import faust
from faust.types import Message

from ioc import metrics
from ioc.schemas import DeadLetter
from streams.retries import SEND_ERRORS, Backoff

logger = logging.getLogger(__name__)

# A longer key is left out of the letter (ids are at most 64 characters): the key goes in twice,
# as the letter's key and base64 in its body, and with a message near the size limit a 30 kB key
# made a letter larger than the producer sends
MAX_KEY_BYTES = 1024


class DeadLetters:
    def __init__(self, topic: faust.TopicT, *, max_payload: int) -> None:
        self._topic = topic
        self._max_payload = max_payload
        self._sent: WeakSet[Message] = WeakSet()  # the messages of this process's letters

    async def publish(self, message: Message, reason: str, error: str) -> None:
        """Send one message to the dead-letter topic and wait until the broker has it (retried
        while the broker is away). A message already sent is not sent again: a batch run again
        after an outage, or dead-lettered whole after a failure, holds messages its handler
        dead-lettered on the first run, and the dead-lettered count stays one per message."""
        if message in self._sent:
            return
        payload = message.value if isinstance(message.value, bytes) else b""
        key = message.key if isinstance(message.key, bytes) else None
        if key is not None and len(key) > MAX_KEY_BYTES:
            error = f"{error[:1900]} (its key of {len(key)} bytes left out)"
            key = None
        letter = DeadLetter(
            source_topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            key=key,
            reason=reason,  # type: ignore[arg-type]
            error=error[:2000],
            payload=payload[: self._max_payload],
            payload_truncated=len(payload) > self._max_payload,
        )
        logger.warning(
            "dead letter %s[%s]@%s: %s: %s",
            message.topic, message.partition, message.offset, reason, error[:200],
        )
        value, backoff = letter.model_dump_json().encode(), Backoff()
        while True:  # the broker away for a moment must not stop the agent (letters are sized to fit)
            try:
                await (await self._topic.send(key=letter.key, value=value))
                break
            except SEND_ERRORS as exc:
                logger.warning("dead letter not sent (%s); retrying in %.1fs", exc, backoff.delay)
                await backoff.wait()
        self._sent.add(message)
        metrics.MESSAGES_DEAD_LETTERED.labels(message.topic, reason).inc()
        metrics.MESSAGES_PRODUCED.labels(self._topic.get_topic_name()).inc()
