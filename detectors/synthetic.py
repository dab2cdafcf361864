"""Synthetic camera scenes around Vietnamese plates, for training, tests and the simulator.

The plates themselves are drawn by :mod:`detectors.plate_rendering`; here they are put in
perspective on vehicles and backgrounds, and the camera's damage comes on top. Everything is
drawn from a ``numpy.random.Generator`` so a seed reproduces an image exactly. ``style="train"``
and ``style="test"`` use disjoint fonts, background generators and degradation families, so a
model trained on one is measured on lettering, scenes and damage it has never seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from detectors import camera_faults, plate_format
from detectors.camera_faults import Style
from detectors.geometry import quad_size
from detectors.plate_format import Layout
from detectors.plate_rendering import (
    FONTS,
    PLATE_SIZES_MM,
    Colour,
    PlateSpec,
    render_plate,
    text_mask,
)
from detectors.street_clutter import draw_dead_leaves, draw_vehicle_rear

__all__ = [
    "Layout",
    "PlateTruth",
    "Style",
    "degrade_crop",
    "hide_plate_end",
    "render_plate_patch",
    "render_scene",
]


@dataclass(frozen=True)
class PlateTruth:
    """Ground truth of one plate in a rendered scene.

    ``bbox`` is ``(x, y, w, h)`` in pixels; ``corners`` is a ``(4, 2) float32``
    array of the plate's outer corners, clockwise from top-left.
    """

    text: str
    layout: str
    colour: str
    bbox: tuple[int, int, int, int]
    corners: np.ndarray


# ----------------------------------------------------------------------------- scenes


def _scene_background(size: tuple[int, int], rng: np.random.Generator, style: Style) -> np.ndarray:
    width, height = size
    if style == "train":
        top = rng.uniform(60, 220, 3)
        bottom = rng.uniform(30, 160, 3)
        t = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
        image = (top * (1 - t) + bottom * t) * np.ones((1, width, 1), np.float32)
        small = rng.normal(0, 25, (height // 16 + 1, width // 16 + 1, 1)).astype(np.float32)
        small = small * rng.uniform(0.7, 1.3, 3).astype(np.float32)
        image += cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    else:
        # held-out family: blotchy multi-scale noise instead of a sky-to-road gradient
        image = np.full((height, width, 3), rng.uniform(50, 180), np.float32)
        for cell in (64, 24, 8):
            small = rng.normal(0, 30, (height // cell + 1, width // cell + 1, 1)).astype(np.float32)
            small = small * rng.uniform(0.6, 1.4, 3).astype(np.float32)
            image += cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    # road markings, poles and building edges
    for _ in range(int(rng.integers(3, 10))):
        colour = tuple(float(c) for c in rng.uniform(0, 255, 3))
        p1 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        p2 = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        cv2.line(image, p1, p2, colour, int(rng.integers(1, 12)), cv2.LINE_AA)
    for _ in range(int(rng.integers(2, 8))):
        colour = tuple(float(c) for c in rng.uniform(0, 255, 3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        w = int(rng.integers(4, max(width // 3, 5)))
        h = int(rng.integers(4, max(height // 3, 5)))
        cv2.rectangle(image, (x, y), (x + w, y + h), colour, -1 if rng.random() < 0.6 else 3)
    return image


def _draw_vehicle(image: np.ndarray, box: tuple[int, int, int, int], rng: np.random.Generator) -> None:
    """A vehicle-ish front: body, windscreen, lights, grille (plate-like horizontal lines)."""
    x, y, w, h = box
    body = tuple(float(c) for c in rng.uniform(10, 245, 3))
    radius = int(min(w, h) * 0.15)
    cv2.rectangle(image, (x + radius, y), (x + w - radius, y + h), body, -1)
    cv2.rectangle(image, (x, y + radius), (x + w, y + h - radius), body, -1)
    for cx, cy in ((x + radius, y + radius), (x + w - radius, y + radius)):
        cv2.circle(image, (cx, cy), radius, body, -1, cv2.LINE_AA)
    glass = tuple(float(c) for c in rng.uniform(10, 90, 3))
    windscreen = np.array(
        [[x + w * 0.15, y + h * 0.05], [x + w * 0.85, y + h * 0.05], [x + w * 0.95, y + h * 0.4],
         [x + w * 0.05, y + h * 0.4]], np.int32)  # fmt: skip
    cv2.fillPoly(image, [windscreen], glass, cv2.LINE_AA)
    light = tuple(float(c) for c in rng.uniform(150, 255, 3))
    ly = int(y + h * 0.55)
    for lx in (x + w * 0.12, x + w * 0.88):
        cv2.ellipse(image, (int(lx), ly), (int(w * 0.08), int(h * 0.06)), 0, 0, 360, light, -1)
    grille = tuple(float(c) for c in rng.uniform(0, 120, 3))
    for i in range(int(rng.integers(2, 7))):
        gy = int(y + h * (0.5 + 0.04 * i))
        cv2.line(image, (int(x + w * 0.3), gy), (int(x + w * 0.7), gy), grille, 2)


_DISTRACTOR_WORDS = (
    "TAXI", "GRAB", "0912 345 678", "HOTLINE 1900", "XE KHACH", "VINASUN", "MAI LINH", "STOP",
    "CHO THUE XE", "29 CHO", "DU LICH", "ABC-123", "KM 45", "HN-HP", "8888", "HYUNDAI", "TOYOTA",
    "1234.56", "51-202", "FORD", "KIA", "CAM", "VIETTEL", "CAU 20", "BUS 34",
)  # fmt: skip


def _draw_distractor_text(image: np.ndarray, rng: np.random.Generator, style: Style) -> None:
    """Signs, phone numbers and badges: text that is not a plate (hard negatives)."""
    height, width = image.shape[:2]
    fonts = FONTS["train"] + FONTS["test"]
    for _ in range(int(rng.integers(1, 6))):
        word = _DISTRACTOR_WORDS[int(rng.integers(len(_DISTRACTOR_WORDS)))]
        if rng.random() < 0.3:
            word = "".join(str(d) for d in rng.integers(0, 10, int(rng.integers(3, 9))))
        mask = text_mask(word, fonts[int(rng.integers(len(fonts)))], bold=int(rng.integers(0, 3)))
        text_h = max(int(rng.integers(10, 60) * width / 1280), 6)
        text_w = max(int(mask.shape[1] * text_h / mask.shape[0] * rng.uniform(0.7, 1.3)), 4)
        if text_w >= width - 4 or text_h >= height - 4:
            continue
        mask = cv2.resize(mask, (text_w, text_h)).astype(np.float32)[..., None] / 255.0
        x, y = int(rng.integers(0, width - text_w)), int(rng.integers(0, height - text_h))
        if rng.random() < 0.5:  # on a panel, like a sign
            panel = tuple(float(c) for c in rng.uniform(0, 255, 3))
            pad = int(text_h * 0.3)
            cv2.rectangle(image, (x - pad, y - pad), (x + text_w + pad, y + text_h + pad), panel, -1)
        colour = rng.uniform(0, 255, 3).astype(np.float32)
        region = image[y : y + text_h, x : x + text_w]
        region[:] = region * (1 - mask) + colour * mask


# On-screen display fonts: cameras and video recorders burn the time, the camera's name and
# the like into every frame, most often in a plain vector or bitmap face.
_OVERLAYFONTS: dict[str, tuple[int, ...]] = {
    "train": (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_TRIPLEX),
    "test": (cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_COMPLEX_SMALL),
}


def _overlay_line(rng: np.random.Generator) -> str:
    """One line of a camera's on-screen display: times, places, ids, speeds."""
    n = lambda low, high: int(rng.integers(low, high))  # noqa: E731
    year, month, day = n(2019, 2031), n(1, 13), n(1, 29)
    clock = f"{n(0, 24):02d}:{n(0, 60):02d}:{n(0, 60):02d}"
    lines = (
        f"{year}-{month:02d}-{day:02d} {clock}",
        f"{day:02d}/{month:02d}/{year} {clock}",
        f"{month:02d}-{day:02d}-{year} THU {clock}.{n(0, 1000):03d}",
        f"CAM{n(1, 100):02d} KM{n(0, 300)}+{n(0, 1000):03d} QL{n(1, 60)}",
        f"CH{n(1, 40):02d}-LANE {n(1, 5)} {'IN' if rng.random() < 0.5 else 'OUT'}",
        f"SPEED {n(10, 130)} KM/H  LIMIT {n(4, 13) * 10}",
        f"ID:{n(10_000, 10_000_000)}  CP{n(1, 60):02d}",
        f"{n(10, 24)}.{n(0, 10_000):04d}N {n(102, 110)}.{n(0, 10_000):04d}E",
        f"CHOT KIEM SOAT SO {n(1, 30)}",
    )
    return lines[n(0, len(lines))]


def _draw_camera_overlay(
    image: np.ndarray, rng: np.random.Generator, style: Style, keep_clear: list[np.ndarray]
) -> None:
    """One to three lines of on-screen display text: digits and letters that are not a plate.

    Lines never cover the quads in ``keep_clear`` (the plates): hiding a plate is what
    occlusion does; this is for text that could be taken for one.
    """
    height, width = image.shape[:2]
    clear = [(*q.min(axis=0), *q.max(axis=0)) for q in keep_clear]
    fonts = _OVERLAYFONTS[style]
    for _ in range(int(rng.integers(1, 4))):
        text, font = _overlay_line(rng), fonts[int(rng.integers(len(fonts)))]
        thickness = int(rng.integers(1, 3))
        (_, unit_h), _ = cv2.getTextSize(text, font, 1.0, thickness)
        scale = rng.uniform(14, 42) * width / 1280 / unit_h
        (text_w, text_h), base = cv2.getTextSize(text, font, scale, thickness)
        if text_w >= width - 8:
            continue
        x = int(rng.integers(4, width - text_w - 3))
        top, bottom = text_h + 4, height - base - 2
        band = height // 6  # most displays sit in the top or bottom band, some anywhere
        where = rng.random()
        if where < 0.35 and band > top:
            y = int(rng.integers(top, band))
        elif where < 0.7 and height - band < bottom:
            y = int(rng.integers(height - band, bottom))
        else:
            y = int(rng.integers(top, max(bottom, top + 1)))
        box = (x - 4, y - text_h - 5, x + text_w + 4, y + base + 3)
        if any(box[0] < x1 and x0 < box[2] and box[1] < y1 and y0 < box[3] for x0, y0, x1, y1 in clear):
            continue
        ink = (255.0, 255.0, 255.0) if rng.random() < 0.75 else (0.0, 255.0, 255.0)
        backing = rng.random()
        if backing < 0.35:  # a dark band behind the text
            cv2.rectangle(image, box[:2], box[2:], (0.0, 0.0, 0.0), -1)
        elif backing < 0.7:  # a dark outline around each stroke
            cv2.putText(image, text, (x, y), font, scale, (0.0, 0.0, 0.0), thickness + 2, cv2.LINE_AA)
        cv2.putText(image, text, (x, y), font, scale, ink, thickness, cv2.LINE_AA)


MAX_YAW = 0.35  # radians (20 degrees) a plate turns away from the camera, unless asked otherwise
MAX_ROLL = 12.0  # degrees a plate turns in the image plane (a tilted camera or vehicle), likewise
# radians a camera looks down on (or up at) a plate, likewise. Checkpoint and street cameras on
# poles and gantries, and officers' phones, look down on plates by 15-45 degrees: larger values
# draw pitch in [-MAX_PITCH, max_pitch], most of it a camera above the plate.
MAX_PITCH = 0.2


def _plate_pixel_width(layout: Layout, rng: np.random.Generator) -> float:
    ranges = {Layout.ONE_LINE: (90, 340), Layout.TWO_LINE: (60, 210), Layout.MOTORBIKE: (45, 160)}
    low, high = ranges[layout]
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def _perspective_quad(
    w: float,
    h: float,
    rng: np.random.Generator,
    *,
    max_yaw: float = MAX_YAW,
    max_roll: float = MAX_ROLL,
    max_pitch: float = MAX_PITCH,
) -> np.ndarray:
    """Corners of a ``w x h`` plate seen under random yaw, pitch and roll (centred on 0)."""
    yaw = rng.uniform(-max_yaw, max_yaw)
    pitch = rng.uniform(-MAX_PITCH, max_pitch)
    corners = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]], np.float32)
    # foreshortening: the far side shrinks (a steep look from above mostly flattens the plate:
    # its top and bottom edges are nearly as far from the camera)
    keystone = float(np.clip(pitch, -MAX_PITCH, MAX_PITCH))
    depth = 1.0 + yaw * corners[:, 0] / (w / 2) * 0.5 + keystone * corners[:, 1] / (h / 2) * 0.5
    corners = corners * np.array([np.cos(yaw), np.cos(pitch)], np.float32) / depth[:, None]
    angle = np.deg2rad(rng.uniform(-max_roll, max_roll))
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], np.float32)
    corners = corners @ rotation.T
    shear = rng.uniform(-0.12, 0.12)
    corners[:, 0] += shear * corners[:, 1]
    return corners.astype(np.float32)


def _composite(image: np.ndarray, plate: np.ndarray, quad: np.ndarray) -> None:
    """Warp ``plate`` onto ``image`` (float32, in place) so its corners land on ``quad``."""
    ph, pw = plate.shape[:2]
    src = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float32)
    x0, y0 = np.floor(quad.min(axis=0)).astype(int)
    x1, y1 = np.ceil(quad.max(axis=0)).astype(int)
    height, width = image.shape[:2]
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if x1 <= x0 or y1 <= y0:
        return
    matrix = cv2.getPerspectiveTransform(src, quad - np.array([x0, y0], np.float32))
    size = (x1 - x0, y1 - y0)
    warped = cv2.warpPerspective(plate.astype(np.float32), matrix, size, flags=cv2.INTER_AREA)
    alpha = cv2.warpPerspective(np.ones((ph, pw), np.float32), matrix, size, flags=cv2.INTER_LINEAR)
    region = image[y0:y1, x0:x1]
    region[:] = region * (1 - alpha[..., None]) + warped * alpha[..., None]


def _composite_bent(image: np.ndarray, plate: np.ndarray, quad: np.ndarray, rng: np.random.Generator) -> None:
    """Like :func:`_composite`, for a bent plate (motorbike plates often are): its rows bow by
    up to a fifth of its height between the corners, which stay on ``quad``."""
    quad_w, quad_h = quad_size(quad)
    small = (max(int(quad_w), 2), max(int(quad_h), 2))  # shrink first: remap has no area averaging
    plate = cv2.resize(plate.astype(np.float32), small, interpolation=cv2.INTER_AREA)
    ph, pw = plate.shape[:2]
    bow = rng.uniform(0.06, 0.2) * ph * (1 if rng.random() < 0.5 else -1)
    height, width = image.shape[:2]
    margin = abs(bow) * 1.5 + 2
    x0, y0 = np.maximum(np.floor(quad.min(axis=0) - margin), 0).astype(int)
    x1, y1 = np.minimum(np.ceil(quad.max(axis=0) + margin), [width, height]).astype(int)
    if x1 <= x0 or y1 <= y0:
        return
    src = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float32)
    to_plate = cv2.getPerspectiveTransform(quad.astype(np.float32), src)
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    u, v = cv2.perspectiveTransform(np.dstack([xs, ys]), to_plate).transpose(2, 0, 1)
    v = v + bow * (1 - 4 * (u / pw - 0.5) ** 2)  # the middle of each row moves by ``bow``, the ends stay
    warped = cv2.remap(plate, u, v, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    alpha = cv2.remap(np.ones((ph, pw), np.float32), u, v, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    region = image[y0:y1, x0:x1]
    region[:] = region * (1 - alpha[..., None]) + warped * alpha[..., None]


def _cast_shadow(image: np.ndarray, quad: np.ndarray, rng: np.random.Generator, style: Style) -> None:
    """A hard sunlit shadow across part of the plate, from the vehicle's body, a pole or a tree.

    Training draws straight edges; held-out frames draw a pole's band or a curved edge.
    """
    centre = quad.mean(axis=0)
    extent = quad.max(axis=0) - quad.min(axis=0)
    height, width = image.shape[:2]
    x0, y0 = np.maximum(np.floor(centre - extent * 1.5), 0).astype(int)
    x1, y1 = np.minimum(np.ceil(centre + extent * 1.5), [width, height]).astype(int)
    if x1 <= x0 or y1 <= y0:
        return
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    angle = rng.uniform(0, np.pi)
    normal = np.array([np.cos(angle), np.sin(angle)], np.float32)
    offset = rng.uniform(-0.35, 0.35) * float(extent.min())
    inside = (xs - centre[0]) * normal[0] + (ys - centre[1]) * normal[1] - offset  # > 0: in the shadow
    if style == "test" and rng.random() < 0.5:  # a pole's or a cable's shadow: a band
        inside = rng.uniform(0.1, 0.3) * float(extent[1]) - np.abs(inside)
    elif style == "test":  # a tree's or an awning's curved edge
        radius = rng.uniform(1.5, 4.0) * float(extent[0])
        middle = centre + normal * (offset + radius)
        inside = radius - np.hypot(xs - middle[0], ys - middle[1])
    softness = rng.uniform(0.4, 2.5)
    shade = 0.5 * (1 + np.tanh(inside / (2 * softness)))
    darkness = rng.uniform(0.3, 0.65)  # the light left in the shadow
    image[y0:y1, x0:x1] *= (1 - shade * (1 - darkness))[..., None]


def _occlude(image: np.ndarray, quad: np.ndarray, rng: np.random.Generator) -> None:
    """A barrier arm, a mud smear or a bracket across part of the plate."""
    centre = quad.mean(axis=0)
    span = float(np.linalg.norm(quad[1] - quad[0]))
    plate_h = float(np.linalg.norm(quad[3] - quad[0]))
    kind = rng.random()
    if kind < 0.5:  # barrier arm: a long striped bar crossing the plate's lower or upper edge
        offset = rng.uniform(0.3, 0.55) * plate_h * (1 if rng.random() < 0.5 else -1)
        angle = rng.uniform(-0.3, 0.3)
        direction = np.array([np.cos(angle), np.sin(angle)])
        p1 = centre + np.array([0, offset]) - direction * span * 3
        p2 = centre + np.array([0, offset]) + direction * span * 3
        thickness = max(int(plate_h * rng.uniform(0.12, 0.25)), 2)
        cv2.line(image, tuple(p1.astype(int)), tuple(p2.astype(int)), (40, 40, 220), thickness)
        for t in np.linspace(0, 1, 14)[::2]:
            a = p1 + (p2 - p1) * t
            b = p1 + (p2 - p1) * (t + 1 / 14)
            cv2.line(image, tuple(a.astype(int)), tuple(b.astype(int)), (235, 235, 235), thickness)
    elif kind < 0.8:  # dirt smear
        for _ in range(int(rng.integers(2, 6))):
            spot = centre + rng.normal(0, 1, 2) * np.array([span * 0.3, plate_h * 0.3])
            axes = (int(span * rng.uniform(0.02, 0.07)) + 1, int(plate_h * rng.uniform(0.05, 0.15)) + 1)
            tone = float(rng.uniform(40, 110))
            cv2.ellipse(image, tuple(spot.astype(int)), axes, float(rng.uniform(0, 180)), 0, 360,
                        (tone, tone * 1.05, tone * 1.1), -1, cv2.LINE_AA)  # fmt: skip
    else:  # a bracket or tow hook covering a corner
        corner = quad[int(rng.integers(4))]
        size = int(plate_h * rng.uniform(0.2, 0.35))
        cv2.rectangle(image, tuple((corner - size / 2).astype(int)), tuple((corner + size / 2).astype(int)),
                      (30, 30, 30), -1)  # fmt: skip


def hide_plate_end(image: np.ndarray, corners: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Something in front of the plate (another vehicle's edge, a rider's leg, a post) hides one
    end of it, 10-40 % of its length, and reaches well above and below it. Drawn on a finished
    ``image`` (in place, its own sensor noise added) at the plate's true ``corners``; returns the
    corners of the part still in view."""
    tl, tr, br, bl = np.asarray(corners, np.float64)
    share = rng.uniform(0.1, 0.4)
    if rng.random() < 0.5:  # the right end
        top, bottom = tl + (1 - share) * (tr - tl), bl + (1 - share) * (br - bl)
        hidden, visible = np.array([top, tr, br, bottom]), np.array([tl, top, bottom, bl])
    else:
        top, bottom = tl + share * (tr - tl), bl + share * (br - bl)
        hidden, visible = np.array([tl, top, bottom, bl]), np.array([top, tr, br, bottom])
    up = (tl - bl) * rng.uniform(0.4, 1.0)
    hidden += np.array([up, up, -up, -up])
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(hidden).astype(np.int32)], 255, cv2.LINE_AA)
    tone = rng.uniform(20, 200, 3) + rng.normal(0, 6, image.shape)
    alpha = (mask.astype(np.float32) / 255)[..., None]
    image[:] = np.clip(image * (1 - alpha) + tone * alpha, 0, 255).astype(np.uint8)
    return visible.astype(np.float32)


def _glare(image: np.ndarray, centre: np.ndarray, radius: float, strength: float) -> None:
    height, width = image.shape[:2]
    x0, y0 = int(max(centre[0] - radius * 2, 0)), int(max(centre[1] - radius * 2, 0))
    x1, y1 = int(min(centre[0] + radius * 2, width)), int(min(centre[1] + radius * 2, height))
    if x1 <= x0 or y1 <= y0:
        return
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    falloff = np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * radius**2))
    image[y0:y1, x0:x1] += strength * falloff[..., None]


def _degrade(
    image: np.ndarray,
    rng: np.random.Generator,
    style: Style,
    *,
    overlay: float = 0.0,
    keep_clear: list[np.ndarray] | None = None,
    interlace: float = 0.0,
    faults: float = 0.0,
) -> np.ndarray:
    """Camera damage on a float32 BGR image; returns uint8 BGR after JPEG. With chance
    ``faults`` one harsh condition of :mod:`detectors.camera_faults` (rain, haze, over-sharpening,
    a low-bitrate stream) comes on top of the usual damage. With chance
    ``overlay`` the camera's on-screen text (clear of the quads in ``keep_clear``) goes on
    after the optics and sensor, before the JPEG, as cameras draw it; with chance ``interlace``
    the odd rows (the second field) are taken 2-12 px further along, as an interlaced camera
    sees a scene that moves between its fields (here the whole scene: a simplification, real
    combing is on the moving vehicle)."""
    if style == "train":
        if rng.random() < 0.4:
            sigma = rng.uniform(0.3, 1.6)
            image = cv2.GaussianBlur(image, (0, 0), sigma)
        if rng.random() < 0.3:
            image = camera_faults.motion_blur(image, int(rng.integers(3, 8)), float(rng.uniform(0, 180)))
        image = image * rng.uniform(0.6, 1.3) + rng.uniform(-40, 30)
        image += rng.normal(0, rng.uniform(0, 9), image.shape).astype(np.float32)
        quality = int(rng.integers(35, 96))
    else:
        if rng.random() < 0.5:  # defocus disc instead of a Gaussian
            radius = int(rng.integers(1, 3))
            disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
            image = cv2.filter2D(image, -1, disc.astype(np.float32) / disc.sum())
        if rng.random() < 0.3:
            image = camera_faults.motion_blur(image, int(rng.integers(3, 9)), float(rng.uniform(0, 180)))
        gamma = rng.uniform(0.6, 1.6)
        image = 255.0 * (np.clip(image, 0, 255) / 255.0) ** gamma
        # signal-dependent (shot-like) noise instead of uniform Gaussian noise
        image += rng.normal(0, 1, image.shape).astype(np.float32) * np.sqrt(np.clip(image, 1, 255)) * 0.6
        quality = int(rng.integers(25, 90))
    if faults and rng.random() < faults:
        image, low_quality = camera_faults.apply_fault(image, rng, style)
        quality = low_quality or quality
    if interlace and rng.random() < interlace:
        shift = int(rng.integers(2, 13)) * (1 if rng.random() < 0.5 else -1)
        image[1::2] = np.roll(image[1::2], shift, axis=1)
    if overlay and rng.random() < overlay:
        _draw_camera_overlay(image, rng, style, keep_clear or [])
    clipped = np.clip(image, 0, 255).astype(np.uint8)
    ok, buffer = cv2.imencode(".jpg", clipped, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buffer, cv2.IMREAD_COLOR) if ok else clipped


def _night(image: np.ndarray, rng: np.random.Generator, plate_quads: list[np.ndarray]) -> np.ndarray:
    """Infrared night look: dark grey scene, retro-reflective plates bright, headlight glare."""
    grey = cv2.cvtColor(np.clip(image, 0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY).astype(np.float32)
    dark = grey * rng.uniform(0.15, 0.4)
    height, width = grey.shape
    for quad in plate_quads:  # the plate reflects the IR flash
        mask = np.zeros((height, width), np.uint8)
        cv2.fillConvexPoly(mask, quad.astype(np.int32), 1)
        lit = np.clip(grey * rng.uniform(1.1, 1.6) + rng.uniform(0, 40), 0, 255)
        dark = np.where(mask > 0, lit, dark)
    out = np.repeat(dark[..., None], 3, axis=2)
    if rng.random() < 0.5:  # faint colour cast of a mixed-light camera
        out *= rng.uniform(0.85, 1.1, 3).astype(np.float32)
    for quad in plate_quads:
        centre = quad.mean(axis=0)
        span = float(np.linalg.norm(quad[1] - quad[0]))
        for side in (-1, 1):
            if rng.random() < 0.7:
                light = centre + np.array([side * span * rng.uniform(1.2, 2.5), -span * rng.uniform(0, 0.4)])
                _glare(out, light, span * rng.uniform(0.15, 0.4), float(rng.uniform(150, 400)))
    return out


def _as_spec(plate: PlateSpec | tuple[str, str, str]) -> PlateSpec:
    if isinstance(plate, PlateSpec):
        return plate
    text, layout, colour = plate
    return PlateSpec(plate_format.canonical(text), Layout(layout), Colour(colour))


def _place_plate(
    image: np.ndarray, plate: np.ndarray, quad: np.ndarray, rng: np.random.Generator, style: Style, *,
    night: bool, occlusion: float, shadow: float, bend: float,
) -> None:  # fmt: skip
    """Draw ``plate`` at ``quad``, bent, occluded and shadowed by chance (no sun shadows at night)."""
    if bend and rng.random() < bend:
        _composite_bent(image, plate, quad, rng)
    else:
        _composite(image, plate, quad)
    if rng.random() < occlusion:
        _occlude(image, quad, rng)
    if shadow and not night and rng.random() < shadow:
        _cast_shadow(image, quad, rng, style)


def render_scene(
    plates: list[PlateSpec] | list[tuple[str, str, str]],
    *,
    size: tuple[int, int] = (1280, 720),
    rng: np.random.Generator,
    night: bool = False,
    style: Style = "train",
    occlusion: float = 0.15,
    glare: float = 0.15,
    distractors: bool = True,
    plate_scale: float = 1.0,
    max_yaw: float = MAX_YAW,
    max_roll: float = MAX_ROLL,
    max_pitch: float = MAX_PITCH,
    overlay: float = 0.0,
    interlace: float = 0.0,
    faults: float = 0.0,
    shadow: float = 0.0,
    bend: float = 0.0,
    bare: float = 0.0,
    street: float = 0.0,
) -> tuple[np.ndarray, list[PlateTruth]]:
    """A camera frame with ``plates`` on vehicle-ish shapes, and the ground truth.

    ``plates`` are :class:`PlateSpec` or ``(text, layout, colour)`` tuples (an empty
    list gives a plate-free frame). ``size`` is ``(width, height)``. Returns an
    ``(H, W, 3) uint8 BGR`` image and one :class:`PlateTruth` per plate, in order.
    ``occlusion`` and ``glare`` are the chances of each damage per plate. ``plate_scale``
    multiplies the plates' drawn widths (above 1: vehicles closer to the camera);
    ``max_yaw`` bounds how far (radians) a plate turns away from the camera, ``max_roll``
    how far (degrees) it turns in the image plane, ``max_pitch`` how steeply (radians) the
    camera looks down on it. ``overlay`` is the chance of the camera's
    on-screen display (time, place, speed) burnt into the frame; at 0 no random number is drawn
    for it, so seeds give the frames they gave before it existed. ``interlace`` is the chance
    of an interlaced camera's combing, ``faults`` of a harsh condition such as rain or a
    low-bitrate stream, ``shadow`` of a hard shadow across a plate in daylight, ``bend`` of a
    bent plate, ``bare`` of a plate drawn without the vehicle shape around it (likewise, none
    at 0): real vehicles look like none of the drawn ones, and a detector that only ever saw
    plates on those shapes learnt to look for the shapes. ``street`` is the chance of a street's
    clutter (:mod:`detectors.street_clutter`): objects at every scale, vehicles seen from behind.
    """
    width, height = size
    image = _scene_background(size, rng, style)
    street_scene = bool(street) and rng.random() < street
    if street_scene:
        draw_dead_leaves(image, rng)
    specs = [_as_spec(p) for p in plates]
    slots = max(len(specs), 1)
    slot_w = width / slots
    quads: list[np.ndarray] = []
    plate_images = []
    for index, spec in enumerate(specs):
        plate_w = min(_plate_pixel_width(spec.layout, rng) * width / 1280 * plate_scale, slot_w * 0.8)
        mm_w, mm_h = PLATE_SIZES_MM[spec.layout]
        plate_h = plate_w * mm_h / mm_w
        render_scale = max(plate_w / mm_w * 2.0, 0.35)  # render at ~2x then downscale when warping
        plate_img = render_plate(spec.text, layout=spec.layout, colour=spec.colour, rng=rng,
                                 style=style, scale=min(render_scale, 1.2 * plate_scale))  # fmt: skip
        quad = _perspective_quad(plate_w, plate_h, rng, max_yaw=max_yaw, max_roll=max_roll,
                                 max_pitch=max_pitch)  # fmt: skip
        extent = quad.max(axis=0) - quad.min(axis=0)
        low_x = extent[0] / 2 + 4
        cx = slot_w * index + rng.uniform(low_x, max(slot_w - low_x, low_x + 1))
        cy = rng.uniform(max(height * 0.3, extent[1] / 2 + 4), height - extent[1] / 2 - 4)
        quad = quad + np.array([cx, cy], np.float32)
        vehicle_w = plate_w * rng.uniform(2.5, 5.0)
        vehicle_h = vehicle_w * rng.uniform(0.6, 0.9)
        if street_scene:
            draw_vehicle_rear(image, quad, spec.layout, rng)
        elif not (bare and rng.random() < bare):
            _draw_vehicle(image, (int(cx - vehicle_w / 2), int(cy - vehicle_h * 0.7), int(vehicle_w),
                                  int(vehicle_h)), rng)  # fmt: skip
        quads.append(quad)
        plate_images.append(plate_img)
    if distractors:
        _draw_distractor_text(image, rng, style)
    truths = []
    for spec, quad, plate_img in zip(specs, quads, plate_images, strict=True):
        _place_plate(image, plate_img, quad, rng, style, night=night, occlusion=occlusion, shadow=shadow,
                     bend=bend)  # fmt: skip
        if not night and rng.random() < glare:
            centre = quad.mean(axis=0) + rng.normal(0, 1, 2) * (quad.max(axis=0) - quad.min(axis=0)) * 0.3
            span = float(np.linalg.norm(quad[1] - quad[0]))
            _glare(image, centre, span * rng.uniform(0.08, 0.25), float(rng.uniform(80, 220)))
        x0, y0 = np.floor(quad.min(axis=0)).astype(int)
        x1, y1 = np.ceil(quad.max(axis=0)).astype(int)
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        truths.append(PlateTruth(spec.text, str(spec.layout), str(spec.colour),
                                 (int(x0), int(y0), int(x1 - x0), int(y1 - y0)), quad))  # fmt: skip
    if night:
        image = _night(image, rng, quads)
    frame = _degrade(image, rng, style, overlay=overlay, keep_clear=quads, interlace=interlace, faults=faults)
    return frame, truths


def degrade_crop(crop: np.ndarray, rng: np.random.Generator, *, style: Style = "train") -> np.ndarray:
    """Apply the scene degradations of ``style`` to a single ``(H, W, 3) uint8 BGR`` crop."""
    return _degrade(crop.astype(np.float32), rng, style)


def render_plate_patch(
    spec: PlateSpec | tuple[str, str, str],
    *,
    rng: np.random.Generator,
    style: Style = "train",
    plate_width: float | None = None,
    night: bool = False,
    occlusion: float = 0.15,
    glare: float = 0.15,
    margin: float = 0.6,
    max_yaw: float = MAX_YAW,
    max_pitch: float = MAX_PITCH,
    faults: float = 0.0,
    shadow: float = 0.0,
    bend: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """A small scene patch around one plate, damaged like :func:`render_scene` frames.

    Much cheaper than a full frame, for training the reader. ``plate_width`` is the
    plate's width in pixels (drawn like scene plates if None). Returns the
    ``(H, W, 3) uint8 BGR`` patch and the plate's ``(4, 2) float32`` corners in it.
    """
    spec = _as_spec(spec)
    if plate_width is None:
        plate_width = _plate_pixel_width(spec.layout, rng)
    mm_w, mm_h = PLATE_SIZES_MM[spec.layout]
    plate_height = plate_width * mm_h / mm_w
    plate_img = render_plate(spec.text, layout=spec.layout, colour=spec.colour, rng=rng, style=style,
                             scale=min(max(plate_width / mm_w * 2.0, 0.35), 1.2))  # fmt: skip
    quad = _perspective_quad(plate_width, plate_height, rng, max_yaw=max_yaw, max_pitch=max_pitch)
    extent = quad.max(axis=0) - quad.min(axis=0)
    pad = extent * margin + 8
    size = (int(extent[0] + 2 * pad[0]), int(extent[1] + 2 * pad[1]))
    quad = quad - quad.min(axis=0) + pad
    image = _scene_background(size, rng, style)
    if rng.random() < 0.5:
        _draw_distractor_text(image, rng, style)
    _place_plate(image, plate_img, quad.astype(np.float32), rng, style, night=night, occlusion=occlusion,
                 shadow=shadow, bend=bend)  # fmt: skip
    if not night and rng.random() < glare:
        centre = quad.mean(axis=0) + rng.normal(0, 1, 2) * extent * 0.3
        _glare(image, centre, float(plate_width * rng.uniform(0.08, 0.25)), float(rng.uniform(80, 220)))
    if night:
        image = _night(image, rng, [quad])
    return _degrade(image, rng, style, faults=faults), quad.astype(np.float32)
