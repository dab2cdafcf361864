"""Sensor readings (vehicle counters, QR check-ins, environment) -> database rows."""

from __future__ import annotations

from faust.types import Message

from ioc.schemas import SensorReading, SensorReadingBatch
from ioc.storage.sensor_readings import insert_sensor_readings
from streams.context import WorkerContext
from streams.decoding import EventDecoder
from streams.sinks import write_batch

decoder = EventDecoder(SensorReading, SensorReadingBatch, "readings")


async def store_batch(ctx: WorkerContext, batch: list[tuple[Message, list[SensorReading]]]) -> None:
    readings = [r for _, message_readings in batch for r in message_readings]
    if not readings:
        return
    _, rejected = await write_batch(await ctx.pool(), "sensor_readings", insert_sensor_readings, readings)
    refused = await ctx.dead_letter_refused(batch, rejected)
    ctx.count_stored(m for m, _ in batch if id(m) not in refused)


def register(ctx: WorkerContext) -> None:
    @ctx.app.agent(ctx.topics.sensor_readings, name="store-sensor-readings")
    async def store_sensor_readings(stream):  # noqa: ANN001 - Faust stream
        await ctx.consume(stream, decoder.decode, store_batch)
