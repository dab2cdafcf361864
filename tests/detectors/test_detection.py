"""The detector: its closer look (``detect_small``), run in bands, finds what the whole canvas does;
a frame whose levels span a narrow range is stretched for it."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.detection import (
    FINE_SIZE,
    INPUT_SIZE,
    PlateDetector,
    _bands,
    _distinct_best,
    _peaks,
    _stretched,
    letterbox,
)
from detectors.recognizer import MODELS_DIR
from detectors.synthetic import render_scene


@pytest.mark.parametrize("height", [128, 384, 448, 512, 768, 1024, 1536])
def test_bands_cover_the_canvas_overlapping_on_the_networks_stride(height: int) -> None:
    bands = _bands(height)
    assert bands[0][0] == 0 and bands[-1][1] == height
    assert all(top % 32 == 0 and bottom - top <= INPUT_SIZE[1] + 64 for top, bottom in bands)
    for (_, bottom), (top, _) in zip(bands, bands[1:], strict=False):
        assert bottom - top >= 64  # a plate's centre lies 32 px or more inside one band


@pytest.mark.parametrize(
    ("frame", "canvas_size", "canvas", "scale"),
    [
        ((1920, 1080), INPUT_SIZE, (640, 384), 1 / 3),
        ((1080, 1920), INPUT_SIZE, (384, 640), 1 / 3),  # a phone held upright: the canvas too
        ((1080, 1920), FINE_SIZE, (768, 1280), 2 / 3),
        ((2000, 2000), INPUT_SIZE, (384, 384), 384 / 2000),
        ((380, 285), INPUT_SIZE, (512, 384), 384 / 285),
    ],
)
def test_a_canvas_stands_as_its_frame_does(
    frame: tuple[int, int], canvas_size: tuple[int, int], canvas: tuple[int, int], scale: float
) -> None:
    image = np.zeros((frame[1], frame[0], 3), np.uint8)
    boxed, used = letterbox(image, canvas_size)
    assert boxed.shape[1::-1] == canvas and used == pytest.approx(scale)


def test_the_closer_look_in_bands_finds_the_plates_the_whole_canvas_does() -> None:
    detector = PlateDetector(MODELS_DIR / "detector.onnx")
    rng = np.random.default_rng(8)
    plates = [("51F86988", "one_line", "white"), ("29X504899", "motorbike", "yellow"),
              ("30F78286", "two_line", "white")]  # fmt: skip
    for _ in range(3):
        image, truths = render_scene(plates, rng=rng, style="test", occlusion=0.0, plate_scale=0.6)
        canvas, scale = letterbox(image, FINE_SIZE)
        maps = detector._maps(canvas)  # noqa: SLF001 - the network's output for the whole canvas at once
        whole = _distinct_best(_peaks(maps, 0.3, scale, 8), 8)
        banded = detector.detect_small(image, threshold=0.3)
        assert len(whole) >= len(truths) and len(banded) == len(whole)
        for found, in_bands in zip(whole, banded, strict=True):
            assert np.abs(found.corners - in_bands.corners).max() < 1.0
            assert found.score == pytest.approx(in_bands.score, abs=0.02)


def test_only_a_frame_of_narrow_levels_is_stretched_for_the_network() -> None:
    day, _ = render_scene([("51F86988", "one_line", "white")], rng=np.random.default_rng(3), style="test")
    night, _ = render_scene([("51F86988", "one_line", "white")], rng=np.random.default_rng(3), style="test",
                            night=True)  # fmt: skip
    assert _stretched(day) is day
    assert _stretched(night) is night  # its lit plate and lamps are highlights
    for gain, offset in [(0.4, 0), (0.5, 100)]:  # under-exposed, hazy
        narrow = np.clip(day.astype(np.float32) * gain + offset, 0, 255).astype(np.uint8)
        stretched = _stretched(narrow)
        low, high = np.percentile(stretched, [0.1, 99.9])
        assert low <= 5 and high >= 230
        assert np.corrcoef(stretched.ravel(), narrow.ravel())[0, 1] > 0.99  # levels mapped, nothing else
    bluish = (day.astype(np.float32) * np.array([1.0, 1.0, 0.5], np.float32)).astype(np.uint8)  # BGR
    stretched = _stretched(bluish)  # red alone spans a narrow range, and is stretched
    assert np.array_equal(stretched[..., :2], bluish[..., :2])
    assert np.percentile(stretched[..., 2], 99.9) >= 230
