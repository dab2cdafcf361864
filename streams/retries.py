"""Trying again what failed while the broker or the database was away: the send errors that
mean so, and the waits between tries (doubling from :data:`FIRST_WAIT_S` up to :data:`LONGEST_WAIT_S`)."""

from __future__ import annotations

import asyncio

from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from faust.exceptions import ProducerSendError

__all__ = ["FIRST_WAIT_S", "LONGEST_WAIT_S", "SEND_ERRORS", "Backoff", "refused_for_good"]

# what a send can fail with while the broker is away: aiokafka's errors, as Faust wraps them or not
SEND_ERRORS = (KafkaError, ProducerSendError)


def refused_for_good(error: BaseException) -> bool:
    """A send error that trying again cannot mend: a message over the size limit. Retried, it
    held its agent's partitions forever, nothing dead-lettered, only the lag growing."""
    return any(isinstance(e, MessageSizeTooLargeError) for e in (error, error.__cause__))


FIRST_WAIT_S = 0.2
LONGEST_WAIT_S = 10.0


class Backoff:
    """The waits between one piece of work's tries; :attr:`delay` is the next one's length."""

    def __init__(self) -> None:
        self.delay = FIRST_WAIT_S

    async def wait(self) -> None:
        await asyncio.sleep(self.delay)
        self.delay = min(self.delay * 2, LONGEST_WAIT_S)
