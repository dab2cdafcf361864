"""Sensor readings (vehicle counters, QR check-ins, environment) -> database rows."""

from __future__ import annotations

from ioc.storage.sensor_readings import insert_sensor_readings

from ioc import metrics
from ioc.schemas import SensorReading
from streams.context import WorkerContext
from streams.sinks import write_batch


def register(ctx: WorkerContext) -> None:
    @ctx.app.agent(ctx.topics.sensor_readings, name="store-sensor-readings")
    async def store_sensor_readings(stream):  # noqa: ANN001 - Faust stream
        async for batch in ctx.decoded_batches(stream, SensorReading):
            if not batch:
                continue
            readings = [r for _, r in batch]
            pool = await ctx.pool()
            _, rejected = await write_batch(
                pool, "sensor_readings", insert_sensor_readings, readings
            )
            refused = {id(r.row) for r in rejected}
            for message, reading in batch:
                if id(reading) in refused:
                    error = next(r.error for r in rejected if r.row is reading)
                    await ctx.dead_letters.publish(message, "processing_error", str(error))
                else:
                    metrics.MESSAGES_STORED.labels(message.topic).inc()
