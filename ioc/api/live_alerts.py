"""Alerts from the Kafka topic to every open operator page (server-sent events).

One group-less consumer per API process reads the alerts topic from its end and
fans each alert out to the subscribers' queues. A slow client loses its oldest
queued alerts (and reloads the list), never slows the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaConsumer

from ioc.config import Settings

logger = logging.getLogger(__name__)

QUEUE_SIZE = 200


class AlertBroadcaster:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._subscribers: set[asyncio.Queue[bytes]] = set()
        self._task: asyncio.Task | None = None
        self.ready = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="alert-broadcaster")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def subscribe(self) -> asyncio.Queue[bytes]:
        queue: asyncio.Queue[bytes] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[bytes]) -> None:
        self._subscribers.discard(queue)

    def publish(self, payload: bytes) -> None:
        for queue in list(self._subscribers):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(payload)

    async def _run(self) -> None:
        while True:
            consumer = AIOKafkaConsumer(
                self._settings.topics.alerts, bootstrap_servers=self._settings.kafka_bootstrap,
                group_id=None, auto_offset_reset="latest", enable_auto_commit=False,
            )
            try:
                await consumer.start()
                await consumer.seek_to_end()
                self.ready.set()
                while True:
                    batch = await consumer.getmany(timeout_ms=1000)
                    for records in batch.values():
                        for record in records:
                            if record.value:
                                self.publish(record.value)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("alerts consumer failed; reconnecting in 2s")
                await asyncio.sleep(2)
            finally:
                await consumer.stop()
