"""Plate recognition off the event loop: a thread pool sized to the cores.

OpenCV and onnxruntime release the GIL, so threads use the cores while the
loop keeps serving heartbeats. Each thread keeps its own recogniser (loaded
and warmed up once per thread), so no model state is shared between threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from detectors.jpeg import decode_image, encode_jpeg
from detectors.recognizer import LookCloser, PlateRecognizer, PlateResult
from ioc import metrics

_WARM_UP_WAIT_S = 30.0  # how long a warmed-up thread waits for the pool's others


@dataclass(frozen=True)
class FrameResult:
    plates: list[PlateResult]
    crops_jpeg: list[bytes | None]
    seconds: float


class RecognitionPool:
    def __init__(self, *, threads: int, home_province: str, look_closer: str = LookCloser.UNSURE) -> None:
        self._threads = threads
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="anpr")
        self._home_province = home_province
        self._look_closer = LookCloser(look_closer)
        self._local = threading.local()
        self._pending = 0

    def _recognizer(self) -> PlateRecognizer:
        recognizer = getattr(self._local, "recognizer", None)
        if recognizer is None:
            recognizer = PlateRecognizer.load(
                home_province=self._home_province, look_closer=self._look_closer
            )
            recognizer.warm_up()
            self._local.recognizer = recognizer
        return recognizer

    async def warm_up(self) -> None:
        """Load and warm up every thread's recogniser now, before the first frames: each first
        frame of a thread was otherwise charged about 0.1 s for it (loading the models and
        onnxruntime's set-up), in its latency and in the recognition-time histogram."""
        # each thread waits for the others, so that no thread warms up twice and none not at all
        everyone = threading.Barrier(self._threads)
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._executor, self._warm_one, everyone)
                               for _ in range(self._threads)))  # fmt: skip

    def _warm_one(self, everyone: threading.Barrier) -> None:
        self._recognizer()
        # a thread slow to start breaks the barrier: it warms up with its first frame instead
        with contextlib.suppress(threading.BrokenBarrierError):
            everyone.wait(timeout=_WARM_UP_WAIT_S)

    def _run(self, jpeg: bytes, look_closer: str | None) -> FrameResult:
        started = time.perf_counter()
        decoded = decode_image(jpeg)  # raises UndecodableImageError; a huge frame comes scaled down
        found = self._recognizer().recognize(decoded.image, look_closer=look_closer)
        plates = [p.scaled(decoded.scale, within=decoded.size) for p in found]
        crops = [encode_jpeg(p.crop, quality=80) if p.crop is not None else None for p in plates]
        return FrameResult(plates, crops, time.perf_counter() - started)

    async def recognize(self, jpeg: bytes, *, look_closer: str | None = None) -> FrameResult:
        """Plates in a JPEG frame; ``look_closer`` is its camera's own setting (None: the pool's)."""
        self._pending += 1
        metrics.RECOGNITION_QUEUE.set(self._pending)
        try:
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(self._executor, self._run, jpeg, look_closer)
        finally:
            self._pending -= 1
            metrics.RECOGNITION_QUEUE.set(self._pending)
        metrics.RECOGNITION_SECONDS.observe(result.seconds)
        metrics.FRAMES_PROCESSED.inc()
        return result

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
