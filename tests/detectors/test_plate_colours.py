"""A plate's colour class, and what the scene's light allows of it (detectors.plate_colours)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from detectors import plate_format
from detectors.plate_colours import _median, is_colourless, plate_colour, scene_cast_saturation, thumbnail
from detectors.plate_rendering import render_plate
from detectors.synthetic import render_scene

LAYOUTS = ("one_line", "two_line", "motorbike")
COLOURS = ("white", "yellow", "blue", "red")
SODIUM_LAMPS = np.array((0.5, 0.8, 1.0), np.float32)  # BGR gains: blue and green dimmed


@pytest.mark.parametrize("layout", LAYOUTS)
def test_white_plates_with_tinted_characters_stay_white_and_shaded_colours_stay(layout: str) -> None:
    """A small white plate's characters are nearly half of it; a colour cast or compression
    gives their near-black a tint that HSV saturation magnifies (a one-line plate with navy
    characters was reported blue). Coloured plates in shade, at half brightness, keep their colour."""
    rng = np.random.default_rng(5)
    for colour in COLOURS:
        text = plate_format.random_plate_text(rng, layout=layout)
        plate = render_plate(text, layout=layout, colour=colour, rng=rng, style="test", scale=0.6)
        assert plate_colour(plate) == colour
        assert plate_colour((plate * 0.5).astype(np.uint8)) == colour
        if colour == "white":
            plate[cv2.cvtColor(plate, cv2.COLOR_BGR2GRAY) < 100] = (60, 40, 30)  # BGR: navy
            assert plate_colour(plate) == "white"


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_an_infrared_scene_is_colourless_a_daylight_one_is_not(seed: int) -> None:
    image, _ = render_scene([("51F86988", "one_line", "white")], rng=np.random.default_rng(seed))
    infrared = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    assert thumbnail(image).shape[1] < 2 * 160  # looked at small: about 160 px wide
    assert not is_colourless(thumbnail(image))
    assert is_colourless(thumbnail(infrared))


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_a_white_plate_under_sodium_lamps_is_white_given_the_scenes_cast(seed: int) -> None:
    """The lamps tint the scene's grey surfaces as much as the plate: alone the plate looks yellow
    (a commercial vehicle), against the scene's cast it is white."""
    rng = np.random.default_rng(seed)
    image, _ = render_scene([("51F86988", "one_line", "white")], rng=rng, style="test")
    lit = np.clip(image * SODIUM_LAMPS, 0, 255).astype(np.uint8)
    plate = render_plate("30A12345", layout="one_line", colour="white", rng=rng, style="test", scale=0.6)
    lit_plate = np.clip(plate * SODIUM_LAMPS, 0, 255).astype(np.uint8)
    neutral, cast = scene_cast_saturation(thumbnail(image)), scene_cast_saturation(thumbnail(lit))
    assert cast > neutral + 40
    assert plate_colour(lit_plate) == "yellow"
    assert plate_colour(lit_plate, cast_saturation=cast) == "white"


@pytest.mark.parametrize("size", [1, 2, 3, 300, 301])
def test_the_fast_median_is_numpys(size: int) -> None:
    """plate_colour's own median (np.median's overhead was most of a plate's colour check) must
    give np.median's value, for an even count (the middle two averaged) as for an odd one."""
    values = np.random.default_rng(size).integers(0, 65025, size).astype(np.float32)
    assert _median(values) == float(np.median(values))
