"""Assemble one worker: the app, its topics, tables and agents."""

from __future__ import annotations

import logging
import time

import faust

from ioc import metrics
from ioc.config import Settings
from streams import broker_loss, consumer_lag
from streams.agents import (
    alert_outbox,
    counts,
    edge_reads,
    frames,
    health,
    passages,
    past_reads,
    sensor_readings,
)
from streams.app import create_app
from streams.context import WorkerContext, WorkerTopics
from streams.dead_letters import DeadLetters
from streams.recognition_pool import RecognitionPool
from streams.tables import WatchlistFeed, WatchlistIndex

logger = logging.getLogger(__name__)



def build_worker_app(settings: Settings, *, web_port: int | None = None) -> faust.App:
    app = create_app(settings, web_port=web_port)
    topics = WorkerTopics.declare(app, settings)
    ctx = WorkerContext(
        settings=settings,
        app=app,
        topics=topics,
        dead_letters=DeadLetters(topics.dead_letter, max_payload=settings.dead_letter_max_payload),
        recognition=RecognitionPool(
            threads=settings.recognition_threads, home_province=settings.home_province,
            look_closer=settings.anpr_look_closer,
        ),
    )
    feed = WatchlistFeed(settings)
    watchlist = WatchlistIndex(feed)

    @app.task
    async def follow_watchlist() -> None:
        await feed.follow()

    @app.task
    async def warm_up_recognition() -> None:
        started = time.perf_counter()
        await ctx.recognition.warm_up()
        logger.info("recognition threads warmed up: %d, in %.2f s", settings.recognition_threads,
                    time.perf_counter() - started)  # fmt: skip

    @app.task
    async def beat_event_loop() -> None:
        await metrics.beat_event_loop()

    for module in (sensor_readings, counts, health, passages, consumer_lag, broker_loss, alert_outbox):
        module.register(ctx)
    for module in (frames, edge_reads):
        module.register(ctx, watchlist)
    past_reads.register(ctx, watchlist)

    @app.on_before_shutdown.connect
    async def _close(app: faust.App, **_: object) -> None:  # noqa: ARG001 - fetching stopped, agents not yet
        await ctx.close()

    return app


def run_worker(settings: Settings, *, web_port: int | None = None, loglevel: str = "info") -> None:
    """Run a worker in the foreground until SIGINT/SIGTERM (blocking)."""
    from faust.worker import Worker
    from prometheus_client import start_http_server

    from ioc.process_tuning import tune_garbage_collection

    class _Worker(Worker):
        async def on_startup_finished(self) -> None:
            await super().on_startup_finished()
            tune_garbage_collection()

    start_http_server(settings.worker_metrics_port, addr=settings.worker_web_host)
    app = build_worker_app(settings, web_port=web_port)
    _Worker(app, loglevel=loglevel, loop=_event_loop()).execute_from_commandline()


def _event_loop():  # noqa: ANN202
    import asyncio

    import uvloop

    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    return loop
