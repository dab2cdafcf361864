"""The benchmark's recogniser in a child process: the same reads as in the caller's process, its own
timings and memory, errors raised in the caller, and no process left behind."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.plate_rendering import PlateSpec
from detectors.recognizer import ImageError, PlateRecognizer
from detectors.synthetic import render_plate_patch, render_scene
from ioc.bench._recognizer_process import RecognizerProcess


def test_reads_what_the_recogniser_reads_in_this_process_and_times_it_there() -> None:
    rng = np.random.default_rng(11)
    frame, _ = render_scene([PlateSpec("51F86988", "one_line", "white")], rng=rng, style="test")
    patch, quad = render_plate_patch(PlateSpec("29X504899", "motorbike", "white"), rng=rng, style="test")
    (x0, y0), (x1, y1) = quad.min(axis=0).astype(int), np.ceil(quad.max(axis=0)).astype(int)
    crop = np.ascontiguousarray(patch[max(y0, 0) : y1, max(x0, 0) : x1])
    here = PlateRecognizer.load(threads=1)
    with RecognizerProcess() as child:
        plates, frame_ms = child.timed_recognize(frame)
        read, crop_ms = child.timed_read_crop(crop)
        assert [p.text for p in plates] == [p.text for p in here.recognize(frame)]
        assert [p.bbox for p in plates] == [p.bbox for p in here.recognize(frame)]
        assert plates and plates[0].text == "51F86988"
        assert read is not None and here.read_crop(crop) is not None
        assert read.text == here.read_crop(crop).text == "29X504899"
        assert frame_ms > 0 and crop_ms > 0
        assert 50 < child.peak_rss_mb() < 2000
        process = child._process
    assert not process.is_alive()


def test_an_unusable_image_raises_in_the_caller_and_the_child_goes_on() -> None:
    with RecognizerProcess() as child:
        with pytest.raises(ImageError):
            child.recognize(np.zeros((0, 0, 3), np.uint8))
        assert child.recognize(np.full((720, 1280, 3), 90, np.uint8)) == []
