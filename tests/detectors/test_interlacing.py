"""Combed (interlaced) frames are told from progressive ones, and read from one field."""

import numpy as np
import pytest

from detectors.interlacing import COMBED_RATIO, combing_ratio, is_interlaced, one_field
from detectors.plate_rendering import random_plate_spec
from detectors.recognizer import PlateRecognizer
from detectors.synthetic import render_scene


@pytest.fixture(scope="module")
def recognizer() -> PlateRecognizer:
    return PlateRecognizer.load(home_province="20")


def test_combing_is_told_from_progressive_frames() -> None:
    rng = np.random.default_rng(8)
    for _ in range(4):
        spec = random_plate_spec(rng)
        plain, truths = render_scene([spec], rng=np.random.default_rng(1), style="test")
        combed, _ = render_scene([spec], rng=np.random.default_rng(1), style="test", interlace=1.0)
        quads = [t.corners for t in truths]
        assert not is_interlaced(plain, quads)
        assert is_interlaced(combed, quads)
        assert combing_ratio(plain[..., 0]) < COMBED_RATIO < combing_ratio(combed[..., 0])
    assert combing_ratio(np.zeros((4, 100), np.uint8)) == 0.0  # too few rows to tell


def test_one_field_keeps_the_size_and_drops_the_other_field() -> None:
    frame = np.zeros((6, 4, 3), np.uint8)
    frame[1::2] = 255  # the second field only
    field = one_field(frame)
    assert field.shape == frame.shape and field.max() == 0


def test_plates_from_an_interlaced_camera_are_read(recognizer: PlateRecognizer) -> None:
    rng = np.random.default_rng(31)
    right = 0
    for _ in range(10):
        spec = random_plate_spec(rng, colour="white")
        image, _ = render_scene([spec], rng=rng, style="test", interlace=1.0, occlusion=0.0, glare=0.0)
        right += spec.text in [p.text for p in recognizer.recognize(image)]
    assert right >= 8  # read from one field (without that: 2 of these 10)
