"""Street clutter for synthetic training scenes: objects at every scale, and vehicle rears.

Real street frames are full of objects of every size (buildings and their windows, trees,
people, parked bikes) that occlude one another, and plates sit on vehicles seen from behind:
a car's rear window, tail lights and bumper, a rider above a motorbike's plate and its tyre
below. The flat backgrounds and vehicle fronts of :mod:`detectors.synthetic` have none of
that. Shapes are "dead leaves" (drawn back to front, sizes following a power law), whose edge
statistics resemble natural images'. Everything draws in place on float32 BGR images.
"""

from __future__ import annotations

import cv2
import numpy as np

from detectors.plate_format import Layout

__all__ = ["draw_dead_leaves", "draw_vehicle_rear"]

# Dead leaves: their count, and their sizes as a share of the frame's larger side
_LEAVES = (40, 150)
_LEAF_SIZE = (0.01, 0.35)
# Sizes are drawn as low * (high / low) ** (u ** _SMALL_BIAS): above 1, most leaves are small
_SMALL_BIAS = 2.0
_SHADE = 0.12  # spread of the light's strength across the frame (a share)


def _colour(rng: np.random.Generator, *, low: float = 0, high: float = 255) -> tuple[float, float, float]:
    """A street colour: mostly greyish, now and then saturated (signs, shop fronts, clothes)."""
    grey = rng.uniform(low, high)
    spread = 60 if rng.random() < 0.2 else 18
    return tuple(float(c) for c in np.clip(grey + rng.normal(0, spread, 3), 0, 255))


def draw_dead_leaves(image: np.ndarray, rng: np.random.Generator) -> None:
    """Overlapping rectangles, ellipses, polygons and window grids, large ones first."""
    height, width = image.shape[:2]
    side = max(width, height)
    count = int(rng.integers(*_LEAVES))
    low, high = _LEAF_SIZE
    sizes = np.sort(side * low * (high / low) ** (rng.random(count) ** _SMALL_BIAS))[::-1]
    for size in sizes:
        cx, cy = rng.uniform(0, width), rng.uniform(0, height)
        aspect = float(np.exp(rng.uniform(-1.5, 1.5)))
        w, h = size * np.sqrt(aspect), size / np.sqrt(aspect)
        colour = _colour(rng)
        kind = rng.random()
        if kind < 0.45:
            cv2.rectangle(
                image,
                (int(cx - w / 2), int(cy - h / 2)),
                (int(cx + w / 2), int(cy + h / 2)),
                colour,
                -1 if rng.random() < 0.8 else max(int(size / 20), 1),
            )
        elif kind < 0.7:
            cv2.ellipse(
                image,
                (int(cx), int(cy)),
                (max(int(w / 2), 1), max(int(h / 2), 1)),
                float(rng.uniform(0, 180)),
                0,
                360,
                colour,
                -1,
                cv2.LINE_AA,
            )
        elif kind < 0.9:
            points = np.array([cx, cy]) + rng.normal(0, 1, (int(rng.integers(3, 7)), 2)) * [w / 2, h / 2]
            cv2.fillPoly(image, [points.astype(np.int32)], colour, cv2.LINE_AA)
        else:
            _draw_window_grid(image, (cx - w / 2, cy - h / 2, w, h), rng)
    # light and shade across surfaces: flat fills have none
    shade = rng.normal(0, _SHADE, (height // 32 + 1, width // 32 + 1)).astype(np.float32)
    image *= 1 + cv2.resize(shade, (width, height), interpolation=cv2.INTER_CUBIC)[..., None]


def _draw_window_grid(
    image: np.ndarray, box: tuple[float, float, float, float], rng: np.random.Generator
) -> None:
    """A façade: a wall with rows of windows (rectangles that a detector must not take for plates)."""
    x, y, w, h = box
    cv2.rectangle(image, (int(x), int(y)), (int(x + w), int(y + h)), _colour(rng), -1)
    rows, columns = int(rng.integers(2, 8)), int(rng.integers(2, 10))
    glass = _colour(rng, high=140)
    fill = rng.uniform(0.4, 0.8)
    for row in range(rows):
        for column in range(columns):
            wx, wy = x + w * (column + (1 - fill) / 2) / columns, y + h * (row + (1 - fill) / 2) / rows
            cv2.rectangle(
                image,
                (int(wx), int(wy)),
                (int(wx + w * fill / columns), int(wy + h * fill / rows)),
                glass,
                -1,
            )


def draw_vehicle_rear(image: np.ndarray, plate: np.ndarray, layout: Layout, rng: np.random.Generator) -> None:
    """A car's or, for a motorbike plate, a ridden motorbike's rear around the plate at ``plate``
    ``(4, 2)``; the plate itself is drawn afterwards."""
    centre = plate.mean(axis=0)
    plate_w = float(np.ptp(plate[:, 0]))
    if layout == Layout.MOTORBIKE:
        _draw_motorbike_rear(image, centre, plate_w, rng)
    else:
        _draw_car_rear(image, centre, plate_w * (1.0 if layout == Layout.ONE_LINE else 1.6), rng)


def _rect(
    image: np.ndarray,
    centre: np.ndarray,
    size: tuple[float, float],
    colour: tuple,
    *,
    dy: float = 0,
    dx: float = 0,
) -> None:
    x, y = centre[0] + dx, centre[1] + dy
    cv2.rectangle(
        image,
        (int(x - size[0] / 2), int(y - size[1] / 2)),
        (int(x + size[0] / 2), int(y + size[1] / 2)),
        colour,
        -1,
        cv2.LINE_AA,
    )


def _draw_car_rear(image: np.ndarray, centre: np.ndarray, unit: float, rng: np.random.Generator) -> None:
    """Body, rear window, tail lights, bumper and the plate's recess; ``unit`` is a one-line plate's width."""
    body = _colour(rng)
    width = unit * rng.uniform(3.2, 4.2)
    _rect(image, centre, (width, unit * 1.6), body, dy=-unit * 0.35)  # boot and tail
    _rect(image, centre, (width * 0.8, unit * 0.7), _colour(rng, high=90), dy=-unit * 1.4)  # rear window
    _rect(image, centre, (width * 0.85, unit * 0.4), body, dy=-unit * 1.85)  # roof
    red = (float(rng.uniform(0, 60)), float(rng.uniform(0, 60)), float(rng.uniform(150, 255)))
    light = (width * rng.uniform(0.12, 0.22), unit * rng.uniform(0.15, 0.35))
    lift = -unit * rng.uniform(0.3, 0.7)
    for side in (-1, 1):
        _rect(image, centre, light, red, dx=side * (width / 2 - light[0] / 2), dy=lift)
    _rect(image, centre, (width * 1.02, unit * 0.45), _colour(rng, high=120), dy=unit * 0.45)  # bumper
    if rng.random() < 0.6:
        _rect(image, centre, (unit * 1.25, unit * 0.45), _colour(rng, high=100))  # the plate's recess
    tyre = (20.0, 20.0, 20.0)
    for side in (-1, 1):
        _rect(image, centre, (unit * 0.5, unit * 0.4), tyre, dx=side * width * 0.36, dy=unit * 0.8)


def _draw_motorbike_rear(
    image: np.ndarray, centre: np.ndarray, plate_w: float, rng: np.random.Generator
) -> None:
    """Tyre below the plate, tail light and mudguard above, the rider's back, helmet and legs."""
    unit = plate_w
    cv2.ellipse(
        image,
        (int(centre[0]), int(centre[1] + unit * 1.3)),
        (int(unit * 0.3), int(unit * 0.9)),
        0,
        0,
        360,
        (25, 25, 25),
        -1,
        cv2.LINE_AA,
    )
    _rect(image, centre, (unit * 0.25, unit * 0.9), _colour(rng, high=110), dy=unit * 0.8)  # mudguard
    _rect(image, centre, (unit * 1.6, unit * 0.5), _colour(rng), dy=-unit * 0.8)  # seat cowl
    red = (float(rng.uniform(0, 60)), float(rng.uniform(0, 80)), float(rng.uniform(150, 255)))
    _rect(image, centre, (unit * rng.uniform(0.4, 0.9), unit * 0.2), red, dy=-unit * 0.65)  # tail light
    clothes = _colour(rng)
    torso = (unit * rng.uniform(1.8, 2.6), unit * rng.uniform(2.2, 3.0))
    _rect(image, centre, torso, clothes, dy=-unit * 1.0 - torso[1] / 2)
    helmet = _colour(rng)
    cv2.circle(
        image,
        (int(centre[0]), int(centre[1] - unit * 1.1 - torso[1] - unit * 0.35)),
        int(unit * 0.5),
        helmet,
        -1,
        cv2.LINE_AA,
    )
    trousers = _colour(rng, high=120)
    for side in (-1, 1):
        _rect(image, centre, (unit * 0.45, unit * 1.7), trousers, dx=side * unit * 1.0, dy=-unit * 0.2)
        _rect(
            image, centre, (unit * 0.5, unit * 0.25), (30.0, 30.0, 30.0), dx=side * unit * 1.05, dy=unit * 0.7
        )
    if rng.random() < 0.7:  # exhaust pipe
        side = 1 if rng.random() < 0.5 else -1
        _rect(
            image,
            centre,
            (unit * 0.9, unit * 0.22),
            _colour(rng, low=100),
            dx=side * unit * 0.9,
            dy=unit * 0.4,
        )
