"""Telling part of a plate from a whole one.

Part of a plate often reads as a shorter plate that is just as valid (`17Z7288` for
`17Z72887`: four-digit serials exist), and the reader is sure of it. The recogniser still
reports such a read, its confidences multiplied by :data:`PARTIAL_PLATE_FACTOR`, so that it is
never sure. Three signs give a part away:

- the plate is cut by the frame's edge (a vehicle entering or leaving the view): the refiner
  then puts its corners beyond the edge, where it expects the rest of the plate. Held-out
  frames cut through a plate (seed 11, 200): 70 of 71 reads had corners beyond the edge, 23
  right, and of the 18 at >= 0.9, 11 right; 200 with the plate whole but 2-30 % of its size
  from the edge: none beyond it;
- something in front hides one end, and the four-digit serial read shows the dot that only
  five-digit serials have (:func:`shows_serial_dot`);
- the text makes it a two-line car plate, but its outline is narrower than
  :data:`_TWO_LINE_MIN_ASPECT`: the part of a motorbike plate (`28-K2 1329` read `28K1329`),
  or of a two-line one, in view. Two-line car plates are 330x165 mm (2.0), but on real street
  photos four of six were outlined 1.27-1.4, near a motorbike plate's 1.36 (`ioc bench photos`,
  docs/benchmarks.md).
"""

from __future__ import annotations

import numpy as np

from detectors import plate_format
from detectors.geometry import quad_size
from detectors.plate_format import Layout
from detectors.reading import character_columns

__all__ = ["PARTIAL_PLATE_FACTOR", "is_partial", "shows_serial_dot"]

PARTIAL_PLATE_FACTOR = 0.5
# A five-digit serial is printed with a dot (`869.88`), a four-digit one without (`5688`). The
# part of `869.88` in view, `869.8` or `69.88`, reads as four digits with the dot's gap between
# the third and fourth or the second and third: wider than the other two gaps' mean by more
# than this share. Held-out one-plate frames, reads at >= 0.9 with four-digit serials: of 57
# wrong ones of plates with one end hidden (seed 12), 53 were over it; of 343 right ones of whole
# plates with four-digit serials (seed 22), 6.
_DOT_GAP = 0.3
# Under 1.45 (2.0 turned 43 degrees away) every real square rear plate was taken for a part, its
# sure reads halved; at 1.2 (1.4 turned 31 degrees away), 600 held-out frames with one end of
# the plate hidden (seeds 2026, 99, 4242) gave 46 reads at >= 0.9 and 11 wrong against 45 and 10
_TWO_LINE_MIN_ASPECT = 1.2


def is_partial(
    corners: np.ndarray, frame_shape: tuple[int, ...], columns: np.ndarray, text: str, layout: Layout,
    *, outline: bool = False,
) -> bool:  # fmt: skip
    """Whether the plate read as ``text`` (``layout``) at the refined ``corners`` of a frame of
    ``frame_shape``, from the strip whose column probabilities are ``columns``, is only part of
    one. ``outline``: the corners started from a tight crop's outline, whose edge is the image's."""
    return (
        (not outline and _beyond_frame(corners, frame_shape))
        or _narrow_two_line(corners, layout)
        or shows_serial_dot(columns, text, layout)
    )


def shows_serial_dot(columns: np.ndarray, text: str, layout: Layout) -> bool:
    """Whether a read with a four-digit serial shows the dot of a five-digit one between its
    digits (:data:`_DOT_GAP`): the plate's other end is out of view."""
    serial = plate_format.serial(text, layout)
    if serial is None or len(serial) != 4:
        return False
    gaps = np.diff(character_columns(columns, text)[-4:])
    widest = 1 if gaps[1] >= gaps[2] else 2  # the dot can only follow the second or third digit
    others = np.delete(gaps, widest).mean()
    return bool(gaps[widest] > (1 + _DOT_GAP) * others)


def _beyond_frame(corners: np.ndarray, frame_shape: tuple[int, ...]) -> bool:
    """Whether a refined corner lies outside the frame: the plate is cut by its edge."""
    height, width = frame_shape[:2]
    return bool((corners < 0).any() or (corners[:, 0] > width).any() or (corners[:, 1] > height).any())


def _narrow_two_line(corners: np.ndarray, layout: Layout) -> bool:
    """Whether a two-line car plate's outline is too narrow for a whole one (:data:`_TWO_LINE_MIN_ASPECT`)."""
    width, height = quad_size(corners)
    return layout == Layout.TWO_LINE and width < _TWO_LINE_MIN_ASPECT * height
