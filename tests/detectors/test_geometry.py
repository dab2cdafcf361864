"""Corner order, layout from shape and rectification into the reader's strip."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.geometry import (
    READER_HEIGHT,
    READER_WIDTH,
    layout_from_aspect,
    order_corners,
    rectify,
    refine_view,
    view_to_image,
)


def test_order_corners_is_clockwise_from_top_left() -> None:
    square = np.array([[10, 10], [50, 12], [52, 30], [8, 28]], np.float32)
    for shift in range(4):
        shuffled = np.roll(square, shift, axis=0)[::-1]
        assert np.array_equal(order_corners(shuffled), square)


@pytest.mark.parametrize(
    ("width", "height", "layout"),
    [(520, 110, "one_line"), (330, 165, "two_line"), (190, 140, "motorbike"), (100, 100, "motorbike")],
)
def test_layout_from_aspect(width: int, height: int, layout: str) -> None:
    assert layout_from_aspect(width, height) == layout


def test_two_row_plates_are_laid_side_by_side() -> None:
    grey = np.zeros((200, 200), np.uint8)
    grey[50:100, 50:150] = 255  # top row bright, bottom row dark
    corners = np.array([[50, 50], [150, 50], [150, 150], [50, 150]], np.float32)
    strip = rectify(grey, corners, "two_line")
    assert strip.shape == (READER_HEIGHT, READER_WIDTH)
    assert strip[:, : READER_WIDTH // 2].mean() > 200 and strip[:, READER_WIDTH // 2 :].mean() < 50
    one_line = rectify(grey, corners, "one_line")
    assert one_line.shape == (READER_HEIGHT, READER_WIDTH)


def test_large_plates_are_area_averaged() -> None:
    stripes = np.zeros((400, 3000), np.uint8)
    stripes[:, ::2] = 255  # finer than the strip: must average to grey, not alias
    corners = np.array([[0, 0], [3000, 0], [3000, 400], [0, 400]], np.float32)
    strip = rectify(stripes, corners, "one_line")
    assert abs(float(strip.mean()) - 127.5) < 20 and strip.std() < 30


def test_refine_view_round_trip() -> None:
    grey = np.random.default_rng(0).integers(0, 255, (300, 400), dtype=np.uint8)
    quad = np.array([[100, 120], [260, 110], [270, 160], [95, 170]], np.float32)
    view, to_image = refine_view(grey, quad)
    assert view.shape == (64, 128)
    inner = np.array([[25.6, 16], [102.4, 16], [102.4, 48], [25.6, 48]], np.float32)
    assert np.allclose(view_to_image(inner, to_image), quad, atol=0.05)
