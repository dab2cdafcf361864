"""Plate recognition off the event loop: a thread pool sized to the cores.

OpenCV and onnxruntime release the GIL, so threads use the cores while the
loop keeps serving heartbeats. Each thread keeps its own recogniser (loaded
once per thread), so no model state is shared between threads.
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from detectors.jpeg import decode_image, encode_jpeg
from detectors.recognizer import LookCloser, PlateRecognizer, PlateResult
from ioc import metrics


@dataclass(frozen=True)
class FrameResult:
    plates: list[PlateResult]
    crops_jpeg: list[bytes | None]
    seconds: float


class RecognitionPool:
    def __init__(self, *, threads: int, home_province: str, look_closer: str = LookCloser.UNSURE) -> None:
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
            self._local.recognizer = recognizer
        return recognizer

    def _run(self, jpeg: bytes, look_closer: str | None) -> FrameResult:
        started = time.perf_counter()
        decoded = decode_image(jpeg)  # raises UndecodableImageError; a huge frame comes scaled down
        found = self._recognizer().recognize(decoded.image, look_closer=look_closer)
        plates = [p.scaled(decoded.scale) for p in found]
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
