"""The colour class of a plate (white, yellow, blue, red) and what the scene's light allows of it.

Vietnamese plates say what a vehicle is by colour: white private, yellow commercial, blue
state, red military. The colour comes from the plate's background pixels; the scene, looked at
small, tells an infrared frame (no colour at all) and a tinted light (a low sun, sodium lamps),
in which a white plate looks coloured.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["is_colourless", "plate_colour", "scene_cast_saturation", "thumbnail"]

# Below this chroma (max - min channel, in levels) a plate's background is white, however
# saturated it looks: a white plate's dark characters (as much of a small plate as its
# background) carry a few levels of colour cast or compression, which HSV saturation
# magnifies at low brightness. Daylight held-out plates read right (seed 78, 400 frames):
# colour right 371 -> 374 of 374 as stored, 370 -> 374 of 375 as WebP, 366 -> 370 of 370
# as a palette PNG; none of the coloured plates was below 60.
_MIN_PLATE_CHROMA = 40
# An image whose pixels all have channels within this many levels is colourless (infrared)...
_GREY_SPREAD = 6
_COLOUR_CHECK_WIDTH = 160  # about how wide the frame is looked at for colour (see thumbnail)
# A tinted light (a low sun, tungsten or sodium lamps, shade under a blue sky, a camera's white
# balance off) tints a white plate's background as much as the scene's neutral surfaces: those
# of the least saturated quarter of the scene (scene_cast_saturation). A plate is reported coloured
# only if its background is this much more saturated than they are (HSV, 0-255), white
# otherwise; never more than _MOST_COLOUR_NEEDS, below coloured plates' own saturation.
# Held-out daylight frames (seeds 909, 1313 and 808, 5th-95th percentiles): coloured plates'
# backgrounds 130-245; the least saturated quarter of a scene 10-64 in neutral light; with blue
# at 0.7 and green at 0.9 of red, white plates 67-92 and that quarter 60-102; with 0.5 and 0.8
# (sodium lamps), 120-139 and 109-131; with red at 0.6 and green at 0.85 of blue, 87-114 and 87-105.
_CAST_MARGIN = 40
_MOST_COLOUR_NEEDS = 150


def plate_colour(crop: np.ndarray, *, cast_saturation: float = 0.0) -> str:
    """Colour class of a rectified ``(H, W, 3) uint8 BGR`` plate from its background (majority) pixels;
    ``cast_saturation``: the scene's light's own (:func:`scene_cast_saturation`), 0 in neutral light.

    The plate is shrunk about 16 pixels high by an integer factor: OpenCV's area
    averaging is several times faster at integer factors than at arbitrary sizes.
    """
    factor = max(crop.shape[0] // 16, 1)
    small = cv2.resize(crop, (0, 0), fx=1 / factor, fy=1 / factor, interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    threshold, _ = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    bright = grey > threshold
    hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV).astype(np.float32)
    colourfulness = hsv[..., 1] * hsv[..., 2]
    # The background is the class of pixels (light or dark) with more colour in all: the
    # majority alone took the bold white characters of blue and red plates, shrunk to
    # 16 px high, for the background (a third of those plates reported white).
    sides = [side for side in (bright, ~bright) if side.any()]
    if not sides:
        return "unknown"
    side_colour = [_median(colourfulness[side]) for side in sides]  # chroma x 255
    best = max(range(len(sides)), key=lambda i: sides[i].mean() * side_colour[i])
    background = sides[best]
    hue, saturation = _median(hsv[..., 0][background]), _median(hsv[..., 1][background])
    needed = max(70, min(cast_saturation + _CAST_MARGIN, _MOST_COLOUR_NEEDS))
    if saturation < needed or side_colour[best] < _MIN_PLATE_CHROMA * 255:
        return "white"
    if 12 <= hue <= 40:
        return "yellow"
    if 85 <= hue <= 135:
        return "blue"
    if hue <= 10 or hue >= 160:
        return "red"
    return "unknown"


def _median(values: np.ndarray) -> float:
    """``np.median`` of a 1-D array, the same value at a fifth of the cost: 5 against 29 us for a
    plate's few hundred pixels, nearly all of it ``np.median``'s overhead (a plate read takes four)."""
    half = values.size // 2
    if values.size % 2:
        return float(np.partition(values, half)[half])
    middle = np.partition(values, (half - 1, half))
    return float((middle[half - 1] + middle[half]) / 2)


def thumbnail(frame: np.ndarray) -> np.ndarray:
    """The frame shrunk to about 160 px wide by halvings, to look at its colours: OpenCV's area
    averaging by 2 is several times faster than by 8 (in the recogniser, 0.8 against 2.0 ms per
    1280x720 frame with :func:`is_colourless`)."""
    small = frame
    while small.shape[1] >= 2 * _COLOUR_CHECK_WIDTH and small.shape[0] >= 2:
        small = cv2.resize(small, (small.shape[1] // 2, small.shape[0] // 2), interpolation=cv2.INTER_AREA)
    return small


def is_colourless(small: np.ndarray) -> bool:
    """Whether a scene (its :func:`thumbnail`) carries no colour at all: an infrared (night)
    camera's frame, whose plates' colours cannot be seen. A daylight scene has coloured pixels
    somewhere (cars, signs, vegetation, sky); 99 % of this one's pixels have channels within a
    few levels."""
    blue, green, red = cv2.split(small)
    spread = cv2.subtract(cv2.max(cv2.max(blue, green), red), cv2.min(cv2.min(blue, green), red))
    return float(np.percentile(spread, 99)) <= _GREY_SPREAD


def scene_cast_saturation(small: np.ndarray) -> float:
    """How saturated (HSV, 0-255) the least saturated quarter of a scene (its :func:`thumbnail`)
    is: near 0 in neutral light, where road, walls and vehicles are grey; the light's own tint
    where it (or the camera's white balance) tints them all."""
    return float(np.percentile(cv2.cvtColor(small, cv2.COLOR_BGR2HSV)[..., 1], 25))
