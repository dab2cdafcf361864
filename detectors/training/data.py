"""Synthetic training sets for the reader (plate strips) and the detector (small frames).

Every set is a pure function of ``(seed, n, style)``: generated in worker
processes from independent child seeds and cached under ``.cache/anpr``.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from detectors.geometry import REFINE_SIZE, order_corners, quad_size, rectify, refine_view
from detectors.plate_rendering import Colour, random_plate_spec
from detectors.synthetic import (
    MAX_ROLL,
    _draw_distractor_text,
    _scene_background,
    render_plate_patch,
    render_scene,
)

logger = logging.getLogger(__name__)

CACHE = Path(__file__).resolve().parents[2] / ".cache" / "anpr"
DETECTOR_SIZE = (512, 288)  # (width, height) the detector sees; frames are scaled to fit
DETECTOR_STRIDE = 4
# Colour shares (white, yellow, blue, red) of the reader's training plates. Blue and
# red plates are oversampled against their street shares (0.62, 0.22, 0.08, 0.08):
# at street shares the reader saw few letter-first military plates (red) and learned
# to expect digits at the left end, reading "FX7808" as "52Y7808".
READER_COLOUR_SHARES = (0.4, 0.2, 0.2, 0.2)
# Reader and refiner samples turn plates up to this far from the camera (radians, 34
# degrees; scenes default to 20): at 20-40 degrees of yaw, models trained on plates turned
# up to 20 degrees read 0.89 of held-out plates from their true corners, 0.83 end to end.
TRAIN_MAX_YAW = 0.6
READER_SET_VERSION = 3  # part of the cache name: bump when reader_sample changes
REFINER_SET_VERSION = 2  # likewise for refiner_sample
DETECTOR_SET_VERSION = 4  # likewise for detector_sample (2: on-screen text, 3: tilted frames, 4: bare plates)
DETECTOR_OVERLAY = 0.3  # share of detector frames with a camera's on-screen text (time, place)
# Share of detector frames whose plates turn up to DETECTOR_MAX_ROLL degrees in the image plane
# (a phone held askew, a camera mounted crooked) instead of synthetic.MAX_ROLL (12): one-line
# plates rolled 28-40 degrees were often missed, or found with scores under the cut of 0.3.
DETECTOR_TILTED = 0.25
DETECTOR_MAX_ROLL = 40.0
# Share of detector plates drawn without the vehicle shape around them: a detector that only
# saw plates on the drawn shapes found 117 of 207 held-out plates drawn without them (217 of
# 219 with them), so it looked for the shapes, which real vehicles do not resemble.
DETECTOR_BARE = 0.3
# Share of the closer look's detector frames with a street's clutter and vehicles seen from
# behind (detectors.street_clutter; docs/benchmarks.md, "A detector for the closer look")
STREET_SHARE = 0.25


def jitter_corners(quad: np.ndarray, rng: np.random.Generator, *, amount: float = 1.0) -> np.ndarray:
    """The corners a detector might report for ``quad``: loose, shifted, a little skewed."""
    width, height = quad_size(quad)
    centre = quad.mean(axis=0)
    scale = np.array([rng.uniform(0.96, 1.1), rng.uniform(0.93, 1.2)], np.float32)
    scale = 1 + (scale - 1) * amount
    shifted = (quad - centre) * scale + centre
    shifted += np.array([rng.normal(0, 0.02 * width), rng.normal(0, 0.04 * height)], np.float32) * amount
    noise = rng.normal(0, 1, (4, 2)) * np.array([0.02 * width, 0.05 * height]) * amount
    return order_corners(shifted + noise.astype(np.float32))


def reader_sample(rng: np.random.Generator, style: str = "train") -> tuple[np.ndarray, str, str]:
    """One ``(32, 192) uint8`` strip, its canonical text ('' for a non-plate) and layout."""
    if rng.random() < 0.04:
        return _negative_strip(rng, style)
    colour = rng.choice(list(Colour), p=READER_COLOUR_SHARES) if style == "train" else None
    spec = random_plate_spec(rng, colour=colour)
    night = rng.random() < 0.2
    patch, quad = render_plate_patch(spec, rng=rng, style=style, night=night, occlusion=0.12, glare=0.12,
                                     max_yaw=TRAIN_MAX_YAW)  # fmt: skip
    grey = cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY)
    corners = jitter_corners(quad, rng, amount=float(rng.uniform(0.2, 1.3)))
    return rectify(grey, corners, spec.layout), spec.text, str(spec.layout)


def _negative_strip(rng: np.random.Generator, style: str) -> tuple[np.ndarray, str, str]:
    """Text-like clutter that is not a plate: the reader must return nothing for it."""
    size = (int(rng.integers(120, 400)), int(rng.integers(60, 200)))
    image = _scene_background(size, rng, style)  # type: ignore[arg-type]
    _draw_distractor_text(image, rng, style)  # type: ignore[arg-type]
    grey = cv2.cvtColor(np.clip(image, 0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY)
    w, h = size
    x0, y0 = rng.uniform(0, w * 0.4), rng.uniform(0, h * 0.4)
    x1, y1 = rng.uniform(x0 + w * 0.3, w), rng.uniform(y0 + h * 0.3, h)
    corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float32)
    layout = ("one_line", "two_line", "motorbike")[int(rng.integers(3))]
    return rectify(grey, corners, layout), "", layout


def _reader_chunk(args: tuple[int, int, str]) -> tuple[np.ndarray, list[str], list[str]]:
    seed, count, style = args
    rng = np.random.default_rng(seed)
    strips, texts, layouts = [], [], []
    for _ in range(count):
        strip, text, layout = reader_sample(rng, style)
        strips.append(strip)
        texts.append(text)
        layouts.append(layout)
    return np.stack(strips), texts, layouts


def reader_set(n: int, *, seed: int, style: str = "train", workers: int = 2) -> dict[str, np.ndarray]:
    """``n`` reader samples as arrays ``strips (n, 32, 192) uint8``, ``texts``, ``layouts`` (cached)."""
    version = f"-v{READER_SET_VERSION}" if style == "train" else ""
    path = CACHE / f"reader-{style}-{seed}-{n}{version}.npz"
    if (cached := _cached(path)) is not None:
        return cached
    logger.info("generating %d reader samples (%s, seed %d)", n, style, seed)
    parts = _in_chunks(_reader_chunk, n, seed, 500, workers, style)
    result = {
        "strips": np.concatenate([p[0] for p in parts]),
        "texts": np.array([t for p in parts for t in p[1]]),
        "layouts": np.array([t for p in parts for t in p[2]]),
    }
    return _saved(path, result, compressed=True)


def detector_sample(
    rng: np.random.Generator, style: str = "train", street: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A ``(288, 512, 3) uint8`` frame, its plates' corners ``(k, 4, 2)`` and layout ids ``(k,)``;
    ``street`` is the chance of a street's clutter (``render_scene``)."""
    count = int(rng.choice([0, 1, 1, 1, 2, 2, 3]))
    specs = [random_plate_spec(rng) for _ in range(count)]
    night = rng.random() < 0.2
    max_roll = DETECTOR_MAX_ROLL if rng.random() < DETECTOR_TILTED else MAX_ROLL
    if rng.random() < 0.15:  # some frames rendered at full size and scaled down like at run time
        image, truths = render_scene(specs, rng=rng, night=night, style=style,  # type: ignore[arg-type]
                                     overlay=DETECTOR_OVERLAY, max_roll=max_roll, bare=DETECTOR_BARE,
                                     street=street)
        factor = DETECTOR_SIZE[0] / image.shape[1]
        image = cv2.resize(image, DETECTOR_SIZE, interpolation=cv2.INTER_AREA)
    else:
        image, truths = render_scene(specs, size=DETECTOR_SIZE, rng=rng, night=night,  # type: ignore[arg-type]
                                     style=style, overlay=DETECTOR_OVERLAY, max_roll=max_roll,
                                     bare=DETECTOR_BARE, street=street)
        factor = 1.0
    layouts = {"one_line": 0, "two_line": 1, "motorbike": 2}
    corners = np.array([t.corners * factor for t in truths], np.float32).reshape(-1, 4, 2)
    ids = np.array([layouts[t.layout] for t in truths], np.int64)
    return image, corners, ids


def _detector_chunk(
    args: tuple[int, int, str, float],
) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
    seed, count, style, street = args
    rng = np.random.default_rng(seed)
    images, corners, ids = [], [], []
    for _ in range(count):
        image, c, i = detector_sample(rng, style, street)
        images.append(image)
        corners.append(c)
        ids.append(i)
    return np.stack(images), corners, ids


def detector_set(
    n: int, *, seed: int, style: str = "train", workers: int = 2, street: float = 0.0
) -> dict[str, object]:
    """``n`` detector frames with padded corners ``(n, 3, 4, 2)``, layouts ``(n, 3)`` (-1 = none);
    ``street`` of them with a street's clutter (:data:`STREET_SHARE` for the closer look's detector)."""
    version = f"-v{DETECTOR_SET_VERSION}" if style == "train" else ""
    version += f"-street{street:g}" if street else ""
    path = CACHE / f"detector-{style}{version}-{seed}-{n}.npz"
    if (cached := _cached(path)) is not None:
        return cached
    logger.info("generating %d detector frames (%s, seed %d, street %g)", n, style, seed, street)
    parts = _in_chunks(_detector_chunk, n, seed, 100, workers, style, street)
    images = np.concatenate([p[0] for p in parts])
    corners = np.zeros((n, 3, 4, 2), np.float32)
    layouts = np.full((n, 3), -1, np.int64)
    flat_c = [c for p in parts for c in p[1]]
    flat_i = [i for p in parts for i in p[2]]
    for row, (c, i) in enumerate(zip(flat_c, flat_i, strict=True)):
        corners[row, : len(c)] = c
        layouts[row, : len(i)] = i
    return _saved(path, {"images": images, "corners": corners, "layouts": layouts})


def refiner_sample(rng: np.random.Generator, style: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """A ``(64, 128) uint8`` view around a badly placed quad and the true corners in view units ``(8,)``."""
    spec = random_plate_spec(rng)
    patch, quad = render_plate_patch(spec, rng=rng, style=style, night=rng.random() < 0.2, margin=0.8,
                                     max_yaw=TRAIN_MAX_YAW)  # fmt: skip
    grey = cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY)
    if rng.random() < 0.5:  # a tight or loose crop, outlined by its own border as at run time
        grey, quad, rough = _crop_outline(grey, quad, rng)
    else:
        rough = jitter_corners(quad, rng, amount=float(rng.uniform(0.3, 3.0)))
    view, to_image = refine_view(grey, rough)
    to_view = np.linalg.inv(to_image)
    truth = cv2.perspectiveTransform(quad.reshape(1, 4, 2).astype(np.float64), to_view).reshape(4, 2)
    truth = truth / np.array(REFINE_SIZE, np.float64)
    return view, truth.astype(np.float32).reshape(8)


def _crop_outline(
    grey: np.ndarray, quad: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut the plate's (perhaps padded) bounding box out of ``grey``, as a caller's crop would be.

    Returns the crop, the plate's corners in it and the crop's outline. The refiner
    must learn what ``read_crop`` shows it: nothing beyond the crop's border (the
    view repeats the edge pixels there), not the scene around the plate.
    """
    pad = (quad.max(axis=0) - quad.min(axis=0)) * rng.uniform(0.0, 0.1, 2) * (rng.random() < 0.8)
    height, width = grey.shape
    x0, y0 = np.maximum(np.floor(quad.min(axis=0) - pad), 0).astype(int)
    x1, y1 = np.minimum(np.ceil(quad.max(axis=0) + pad), [width, height]).astype(int)
    crop = np.ascontiguousarray(grey[y0:y1, x0:x1])
    h, w = crop.shape
    outline = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    return crop, (quad - np.array([x0, y0], np.float32)).astype(np.float32), outline


def _refiner_chunk(args: tuple[int, int, str]) -> tuple[np.ndarray, np.ndarray]:
    seed, count, style = args
    rng = np.random.default_rng(seed)
    views, targets = zip(*(refiner_sample(rng, style) for _ in range(count)), strict=True)
    return np.stack(views), np.stack(targets)


def refiner_set(n: int, *, seed: int, style: str = "train", workers: int = 2) -> dict[str, np.ndarray]:
    """``n`` refiner samples: ``views (n, 64, 128) uint8`` and ``corners (n, 8)`` (cached)."""
    version = f"-v{REFINER_SET_VERSION}" if style == "train" else ""
    path = CACHE / f"refiner-{style}-{seed}-{n}{version}.npz"
    if (cached := _cached(path)) is not None:
        return cached
    logger.info("generating %d refiner samples (%s, seed %d)", n, style, seed)
    parts = _in_chunks(_refiner_chunk, n, seed, 500, workers, style)
    result = {
        "views": np.concatenate([p[0] for p in parts]),
        "corners": np.concatenate([p[1] for p in parts]),
    }
    return _saved(path, result)


def _in_chunks(
    make: Callable[[tuple], Any], n: int, seed: int, chunk: int, workers: int, *options: Any
) -> list[Any]:
    """``make((child_seed, count, *options))`` for chunks of ``n`` samples, in ``workers`` processes:
    each chunk's child seed comes from ``seed`` alone, so a set does not depend on ``workers``."""
    seeds = np.random.SeedSequence(seed).generate_state((n + chunk - 1) // chunk)
    jobs = [(int(s), min(chunk, n - i * chunk), *options) for i, s in enumerate(seeds)]
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        return pool.map(make, jobs)


def _cached(path: Path) -> dict[str, np.ndarray] | None:
    if not path.exists():
        return None
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def _saved(path: Path, result: dict[str, np.ndarray], *, compressed: bool = False) -> dict[str, np.ndarray]:
    CACHE.mkdir(parents=True, exist_ok=True)
    (np.savez_compressed if compressed else np.savez)(path, **result)
    return result
