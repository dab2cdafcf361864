"""Plates drawn head-on (detectors.plate_rendering): sizes, colours, reproducibility."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from detectors.plate_rendering import PLATE_SIZES_MM, render_plate

LAYOUTS = ("one_line", "two_line", "motorbike")
COLOURS = ("white", "yellow", "blue", "red")
TEXTS = {"one_line": "51F86988", "two_line": "30LD12345", "motorbike": "29X504899"}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("colour", COLOURS)
def test_render_plate_size_and_colour(layout: str, colour: str) -> None:
    plate = render_plate(TEXTS[layout], layout=layout, colour=colour, rng=np.random.default_rng(0))
    width, height = PLATE_SIZES_MM[layout]
    assert plate.shape == (height, width, 3) and plate.dtype == np.uint8
    hsv = cv2.cvtColor(plate, cv2.COLOR_BGR2HSV)
    hue, saturation = np.median(hsv[..., 0]), np.median(hsv[..., 1])
    expected_hue = {"yellow": (15, 40), "blue": (90, 130), "red": (0, 10)}
    if colour == "white":
        assert saturation < 60
    else:
        low, high = expected_hue[colour]
        assert saturation > 80 and (low <= hue <= high or (colour == "red" and hue >= 165))
    # ink is present: a plate is far from uniform
    assert cv2.cvtColor(plate, cv2.COLOR_BGR2GRAY).std() > 30


def test_render_plate_is_reproducible() -> None:
    first = render_plate("51F86988", layout="one_line", colour="white", rng=np.random.default_rng(7))
    again = render_plate("51F86988", layout="one_line", colour="white", rng=np.random.default_rng(7))
    other = render_plate("51F86989", layout="one_line", colour="white", rng=np.random.default_rng(7))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
