"""The frames agent's thread pool: every thread's recogniser ready before the first frame."""

import asyncio
import threading

import numpy as np
import pytest

from detectors.jpeg import encode_jpeg
from detectors.recognizer import PlateRecognizer
from detectors.synthetic import render_scene
from streams.recognition_pool import RecognitionPool


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The threads that loaded a recogniser, in order (the real loading still runs)."""
    threads: list[str] = []
    load = PlateRecognizer.load.__func__

    def recorded(cls: type[PlateRecognizer], **options: object) -> PlateRecognizer:
        threads.append(threading.current_thread().name)
        return load(cls, **options)

    monkeypatch.setattr(PlateRecognizer, "load", classmethod(recorded))
    return threads


async def test_warming_up_readies_every_thread_once_before_the_first_frame(loads: list[str]) -> None:
    pool = RecognitionPool(threads=2, home_province="20")
    try:
        await pool.warm_up()
        assert len(loads) == 2 and len(set(loads)) == 2
        image, _ = render_scene([("30A12345", "one_line", "white")], size=(960, 540),
                                rng=np.random.default_rng(0), occlusion=0, glare=0)  # fmt: skip
        results = await asyncio.gather(*(pool.recognize(encode_jpeg(image)) for _ in range(4)))
        assert [[p.text for p in r.plates] for r in results] == [["30A12345"]] * 4
        assert len(loads) == 2  # the frames were read by the threads warmed up, none loaded again
    finally:
        pool.close()
