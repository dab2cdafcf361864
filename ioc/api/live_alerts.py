"""Alerts from the Kafka topic to every open operator page (server-sent events).

One group-less consumer per API process reads the alerts topic from its end and
fans each alert (new, extended incident or status change) out to the
subscribers' queues. A slow client loses its oldest queued alerts (the page
reloads the list now and then), never slows the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiokafka import AIOKafkaConsumer
from pydantic import ValidationError

from ioc import metrics
from ioc.api.routes.alerts import AlertPublic
from ioc.config import Settings
from ioc.schemas import Alert

logger = logging.getLogger(__name__)

__all__ = ["CLOSED", "AlertBroadcaster"]

QUEUE_SIZE = 200
CLOSED = b""  # queued to every subscriber when the broadcaster stops


class AlertBroadcaster:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._subscribers: set[asyncio.Queue[bytes]] = set()
        self._task: asyncio.Task | None = None
        self.ready = asyncio.Event()
        self.last_received: float | None = None

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="alert-broadcaster")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for queue in list(self._subscribers):
            self._offer(queue, CLOSED)

    def subscribe(self) -> asyncio.Queue[bytes]:
        queue: asyncio.Queue[bytes] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.add(queue)
        metrics.LIVE_STREAMS.set(len(self._subscribers))
        return queue

    def unsubscribe(self, queue: asyncio.Queue[bytes]) -> None:
        self._subscribers.discard(queue)
        metrics.LIVE_STREAMS.set(len(self._subscribers))

    @staticmethod
    def _offer(queue: asyncio.Queue[bytes], payload: bytes) -> None:
        if queue.full():
            queue.get_nowait()
        queue.put_nowait(payload)

    def publish(self, payload: bytes) -> None:
        """Hand one alert to every subscriber, in the API's public shape; drops invalid payloads."""
        try:
            alert = Alert.model_validate_json(payload)
        except ValidationError:
            logger.warning("ignored an alerts-topic message that is not an Alert")
            return
        self.last_received = time.time()
        if not self._subscribers:
            return
        public = AlertPublic.of_event(alert).model_dump_json(exclude_none=True).encode()
        metrics.ALERTS_STREAMED.inc()
        for queue in list(self._subscribers):
            self._offer(queue, public)

    async def _run(self) -> None:
        while True:
            consumer = AIOKafkaConsumer(
                self._settings.topics.alerts, bootstrap_servers=self._settings.kafka_bootstrap,
                group_id=None, auto_offset_reset="latest", enable_auto_commit=False,
                fetch_max_wait_ms=50, metadata_max_age_ms=5000,
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
                self.ready.clear()
                await asyncio.sleep(2)
            finally:
                await consumer.stop()
