"""The recogniser in a process of its own, for ``ioc bench anpr``.

The benchmark draws its test images with Pillow, fonts and scene generators that no
recogniser process loads. In one process, the peak resident memory was theirs as much
as the recogniser's: 313 MB for the benchmark against about 200 MB for a process that
loads the recogniser and reads the same kinds of frames. Here each image goes through a
pipe to a child process that only recognises; it times each call itself (the pipe's
copying is not charged) and reports its own peak memory.

The child inherits the parent's CPU affinity, so a benchmark pinned to one core stays on it,
and the two take turns: the parent waits while the child reads, as when both were one process.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import resource
import time
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

__all__ = ["RecognizerProcess"]

_START_TIMEOUT_S = 120  # loading and warming the models takes about a second


class RecognizerProcess:
    """A :class:`detectors.recognizer.PlateRecognizer` in a child process (single-threaded, warmed
    up), with its ``recognize`` and ``read_crop`` timed inside the child."""

    def __init__(self, *, models_dir: Path | None = None, look_closer: str = "unsure") -> None:
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: none of the parent's memory
        self._connection, child_end = context.Pipe()
        self._process = context.Process(target=_serve, args=(child_end, models_dir, look_closer),
                                        name="ioc-bench-recognizer", daemon=True)  # fmt: skip
        self._process.start()
        child_end.close()
        if not self._connection.poll(_START_TIMEOUT_S):
            self.close()
            raise RuntimeError(f"the recogniser process did not start within {_START_TIMEOUT_S} s")
        self._answer()

    def __enter__(self) -> RecognizerProcess:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def timed_recognize(self, image: np.ndarray) -> tuple[list[Any], float]:
        """The plates in ``image`` and the ms ``recognize`` took in the child."""
        return self._call("recognize", image)

    def recognize(self, image: np.ndarray) -> list[Any]:
        return self.timed_recognize(image)[0]

    def timed_read_crop(self, crop: np.ndarray) -> tuple[Any | None, float]:
        """The read of a tight crop and the ms ``read_crop`` took in the child."""
        return self._call("read_crop", crop)

    def peak_rss_mb(self) -> float:
        """The child's peak resident memory so far, in MB."""
        return self._call("peak_rss_mb", None)[0]

    def close(self) -> None:
        if self._process.is_alive():
            with contextlib.suppress(OSError):  # the child went already
                self._connection.send(None)
            self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._connection.close()

    def _call(self, method: str, argument: Any) -> tuple[Any, float]:
        self._connection.send((method, argument))
        return self._answer()

    def _answer(self) -> Any:
        try:
            outcome, value = self._connection.recv()
        except EOFError:
            raise RuntimeError(f"the recogniser process died (exit code {self._process.exitcode})") from None
        if outcome == "error":
            raise value
        return value


def _serve(connection: Connection, models_dir: Path | None, look_closer: str) -> None:
    """The child: load the recogniser, then answer ``(method, argument)`` requests until ``None``."""
    import cv2

    from detectors.recognizer import PlateRecognizer

    cv2.setNumThreads(1)
    recognizer = PlateRecognizer.load(threads=1, models_dir=models_dir, look_closer=look_closer)
    recognizer.warm_up()
    timed = {"recognize": recognizer.recognize, "read_crop": recognizer.read_crop}
    connection.send(("ok", None))
    while (request := connection.recv()) is not None:
        method, argument = request
        try:
            if method == "peak_rss_mb":
                value: Any = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0.0)
            else:
                started = time.perf_counter()
                result = timed[method](argument)
                value = (result, (time.perf_counter() - started) * 1000)
            connection.send(("ok", value))
        except Exception as exc:  # noqa: BLE001 - the parent re-raises it
            connection.send(("error", exc))
