"""Plate geometry: corner order, layout from shape, and rectification for the reader.

The reader sees every plate as one ``(32, 192)`` grey strip: one-line plates are
warped straight into it; two-row plates (two-line car, motorbike) are warped to
``(64, 96)`` and their two rows are laid side by side, so one model reads all
layouts left to right.
"""

from __future__ import annotations

import cv2
import numpy as np

from detectors.plate_format import Layout

__all__ = [
    "REFINE_SIZE",
    "READER_HEIGHT",
    "READER_WIDTH",
    "layout_from_aspect",
    "order_corners",
    "quad_size",
    "rectify",
    "refine_view",
    "view_to_image",
]

READER_HEIGHT = 32
READER_WIDTH = 192

_ONE_LINE_DST = np.array(
    [[0, 0], [READER_WIDTH, 0], [READER_WIDTH, READER_HEIGHT], [0, READER_HEIGHT]], np.float32
)
_TWO_ROW_W = READER_WIDTH // 2
_TWO_ROW_H = READER_HEIGHT * 2
_TWO_ROW_DST = np.array([[0, 0], [_TWO_ROW_W, 0], [_TWO_ROW_W, _TWO_ROW_H], [0, _TWO_ROW_H]], np.float32)


def order_corners(points: np.ndarray) -> np.ndarray:
    """Four points as a ``(4, 2) float32`` array, clockwise from top-left."""
    pts = np.asarray(points, dtype=np.float32).reshape(4, 2)
    centre = pts.mean(axis=0)
    angles = np.arctan2(pts[:, 1] - centre[1], pts[:, 0] - centre[0])
    pts = pts[np.argsort(angles)]  # clockwise in image coordinates, starting near -pi (left)
    start = int(np.argmin(pts.sum(axis=1)))  # top-left has the smallest x + y
    return np.roll(pts, -start, axis=0)


def quad_size(corners: np.ndarray) -> tuple[float, float]:
    """Mean width and height of a clockwise quad, in pixels."""
    c = np.asarray(corners, dtype=np.float32)
    width = (np.linalg.norm(c[1] - c[0]) + np.linalg.norm(c[2] - c[3])) / 2
    height = (np.linalg.norm(c[3] - c[0]) + np.linalg.norm(c[2] - c[1])) / 2
    return float(width), float(height)


def layout_from_aspect(width: float, height: float) -> Layout:
    """Guess the layout from the plate's width/height (one-line 4.7, two-line 2.0, motorbike 1.36).

    The one-row / two-row cut sits nearer two-line plates because yaw and pitch
    shorten a one-line plate's apparent aspect to about 3 while a two-line plate
    seldom looks wider than 2.4.
    """
    aspect = width / max(height, 1e-6)
    if aspect > 2.75:
        return Layout.ONE_LINE
    if aspect > 1.65:
        return Layout.TWO_LINE
    return Layout.MOTORBIKE


def rectify(grey: np.ndarray, corners: np.ndarray, layout: str) -> np.ndarray:
    """The reader's ``(32, 192) uint8`` strip for the plate at ``corners`` in ``grey`` ``(H, W) uint8``."""
    src = np.asarray(corners, dtype=np.float32).reshape(4, 2)
    one_line = Layout(layout) == Layout.ONE_LINE
    grey, src = _shrink_for_warp(grey, src, READER_WIDTH if one_line else _TWO_ROW_W)
    if one_line:
        matrix = cv2.getPerspectiveTransform(src, _ONE_LINE_DST)
        return cv2.warpPerspective(
            grey,
            matrix,
            (READER_WIDTH, READER_HEIGHT),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
    matrix = cv2.getPerspectiveTransform(src, _TWO_ROW_DST)
    both = cv2.warpPerspective(
        grey, matrix, (_TWO_ROW_W, _TWO_ROW_H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return np.hstack((both[:READER_HEIGHT], both[READER_HEIGHT:]))


def _shrink_for_warp(grey: np.ndarray, src: np.ndarray, target_width: int) -> tuple[np.ndarray, np.ndarray]:
    """Area-downscale the plate's neighbourhood first when the warp would shrink it > 2x (no aliasing)."""
    width, _ = quad_size(src)
    factor = width / target_width
    if factor <= 2.0:
        return grey, src
    height_px, width_px = grey.shape[:2]
    x0, y0 = np.maximum(np.floor(src.min(axis=0)).astype(int) - 2, 0)
    x1, y1 = np.ceil(src.max(axis=0)).astype(int) + 2
    x1, y1 = min(x1, width_px), min(y1, height_px)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return grey, src
    scale = 1.5 / factor
    region = grey[y0:y1, x0:x1]
    size = (max(int(round((x1 - x0) * scale)), 1), max(int(round((y1 - y0) * scale)), 1))
    small = cv2.resize(region, size, interpolation=cv2.INTER_AREA)
    scale_xy = np.array([size[0] / (x1 - x0), size[1] / (y1 - y0)], np.float32)
    return small, (src - np.array([x0, y0], np.float32)) * scale_xy


REFINE_SIZE = (128, 64)  # (width, height) of the corner refiner's view
_REFINE_MARGIN = (0.2, 0.25)  # share of the view's width / height left around the rough quad


def refine_view(grey: np.ndarray, corners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The refiner's ``(64, 128) uint8`` view around a rough quad and the view -> image homography.

    The rough quad lands on the view's inner rectangle, with margins so that the
    true plate is inside even when the rough corners are off by a quarter of its size.
    """
    width, height = REFINE_SIZE
    mx, my = width * _REFINE_MARGIN[0], height * _REFINE_MARGIN[1]
    inner = np.array([[mx, my], [width - mx, my], [width - mx, height - my], [mx, height - my]], np.float32)
    src = np.asarray(corners, dtype=np.float32).reshape(4, 2)
    grey, shrunk = _shrink_for_warp(grey, src, int(width - 2 * mx))
    to_view = cv2.getPerspectiveTransform(shrunk, inner)
    view = cv2.warpPerspective(grey, to_view, (width, height), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
    to_image = cv2.getPerspectiveTransform(inner, src)
    return view, to_image


def view_to_image(points: np.ndarray, to_image: np.ndarray) -> np.ndarray:
    """Map ``(4, 2)`` view points (pixels) back to image pixels."""
    return (
        cv2.perspectiveTransform(points.reshape(1, 4, 2).astype(np.float64), to_image)
        .reshape(4, 2)
        .astype(np.float32)
    )
