"""Telling part of a plate from a whole one, on hand-made reader columns and outlines (no model involved)."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.partial_plates import is_partial, shows_serial_dot
from detectors.plate_format import Layout
from detectors.reading import ALPHABET

FRAME = (720, 1280, 3)
WHOLE = np.array([[100, 100], [570, 100], [570, 200], [100, 200]], np.float32)  # 4.7:1, well inside


def _columns(text: str, at: list[float]) -> np.ndarray:
    """``(48, 37)`` reader columns with each character of ``text`` sure at its column of ``at``."""
    probs = np.zeros((48, len(ALPHABET) + 1), np.float32)
    probs[:, 0] = 1.0
    for char, column in zip(text, at, strict=True):
        probs[round(column), [0, ALPHABET.index(char) + 1]] = [0.02, 0.98]
    return probs


def _spaced(text: str, gaps: list[float]) -> np.ndarray:
    return _columns(text, list(np.cumsum([3.0, *gaps])))


@pytest.mark.parametrize(
    ("text", "gaps", "dot"),
    [
        ("52P5688", [5, 5, 5, 5, 5, 5], False),  # a whole four-digit plate: evenly spaced
        ("52P5688", [5, 5, 5, 5, 5, 8], True),  # `569.8` of `569.88`: the dot before the last digit
        ("52P5688", [5, 5, 5, 5, 8, 5], True),  # `56.88` of `556.88`
        ("52P5688", [5, 5, 5, 8, 5, 5], False),  # after the first digit no dot is printed
        ("51F86988", [5, 5, 5, 5, 5, 8, 5], False),  # a five-digit serial shows its dot
        ("TM1234", [5, 8, 5, 8, 5], False),  # military plates have no serial of that kind
    ],
)
def test_the_dot_of_a_five_digit_serial(text: str, gaps: list[float], dot: bool) -> None:
    assert shows_serial_dot(_spaced(text, gaps), text, Layout.ONE_LINE) is dot


def test_outlines_beyond_the_frame_or_too_narrow_are_parts() -> None:
    columns = _spaced("52P5688", [5] * 6)
    assert not is_partial(WHOLE, FRAME, columns, "52P5688", Layout.ONE_LINE)
    beyond = WHOLE + np.array([800, 0], np.float32)  # its right end past the frame's edge
    assert is_partial(beyond, FRAME, columns, "52P5688", Layout.ONE_LINE)
    assert not is_partial(beyond, FRAME, columns, "52P5688", Layout.ONE_LINE, outline=True)  # a crop's edge
    two_line = np.array([[100, 100], [300, 100], [300, 200], [100, 200]], np.float32)  # 2:1
    assert not is_partial(two_line, FRAME, columns, "52P5688", Layout.TWO_LINE)
    square = np.array([[100, 100], [238, 100], [238, 200], [100, 200]], np.float32)  # 1.38:1, a rear plate
    assert not is_partial(square, FRAME, columns, "52P5688", Layout.TWO_LINE)
    narrow = np.array([[100, 100], [210, 100], [210, 200], [100, 200]], np.float32)  # 1.1:1
    assert is_partial(narrow, FRAME, columns, "52P5688", Layout.TWO_LINE)
    assert not is_partial(narrow, FRAME, columns, "52P5688", Layout.MOTORBIKE)  # a motorbike plate's shape
