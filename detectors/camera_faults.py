"""Harsh conditions for synthetic frames: rain, haze, over-sharpening, a low-bitrate stream.

Roadside cameras see these every week, and the renderer's ordinary damage (blur, noise,
JPEG 25-95) has none of them. A one-off probe of the shipped reader on held-out frames
(2026-12-04) lost 4.4 points to rain streaks and 2.5 to JPEG quality 12-20. As with the
rest of :mod:`detectors.synthetic`, ``style="train"`` and ``style="test"`` draw each fault
in a different way (lines or blurred drops for rain, flat or graded haze, an unsharp mask or
a Laplacian, different rescaling), so a model trained on one is measured on the other.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

Style = Literal["train", "test"]
FAULTS = ("rain", "haze", "sharpening", "low_bitrate")


def apply_fault(image: np.ndarray, rng: np.random.Generator, style: Style) -> tuple[np.ndarray, int | None]:
    """One fault, drawn at random, on a float32 BGR image (0-255).

    Returns the image and, for a low-bitrate stream, the JPEG quality to encode it at
    (else None: the caller's usual quality).
    """
    fault = FAULTS[int(rng.integers(len(FAULTS)))]
    if fault == "rain":
        return _rain(image, rng, style), None
    if fault == "haze":
        return _haze(image, rng, style), None
    if fault == "sharpening":
        return _sharpen(image, rng, style), None
    return _low_bitrate(image, rng, style)


def motion_blur(image: np.ndarray, length: int, angle: float) -> np.ndarray:
    """The smear of what moves during the exposure: ``length`` pixels along ``angle`` degrees
    (0 along the rows, counter-clockwise). Vehicles in every style, falling rain here."""
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0
    rotation = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), angle, 1.0)
    kernel = cv2.warpAffine(kernel, rotation, (length, length))
    return cv2.filter2D(image, -1, kernel / max(kernel.sum(), 1e-6))


def _rain(image: np.ndarray, rng: np.random.Generator, style: Style) -> np.ndarray:
    """Bright near-vertical streaks of falling rain, and the dimmer light of a rainy day."""
    height, width = image.shape[:2]
    layer = np.zeros((height, width), np.float32)
    slant = float(rng.uniform(-0.35, 0.35))  # radians from vertical, the same for every drop
    density = rng.uniform(0.3, 1.5) * height * width / 1000  # drops per 1,000 pixels
    if style == "train":  # drawn lines
        for _ in range(int(density)):
            x, y = rng.uniform(0, width), rng.uniform(0, height)
            length = rng.uniform(0.02, 0.08) * height
            end = (int(x + np.sin(slant) * length), int(y + np.cos(slant) * length))
            cv2.line(layer, (int(x), int(y)), end, float(rng.uniform(25, 90)), 1, cv2.LINE_AA)
        layer = cv2.GaussianBlur(layer, (0, 0), 0.6)
    else:  # drops smeared along their fall by the exposure
        drops = rng.random((height, width)) < density / (height * width)
        layer[drops] = rng.uniform(900, 2500, int(drops.sum())).astype(np.float32)
        length = max(int(rng.uniform(0.03, 0.09) * height) | 1, 3)
        layer = motion_blur(layer, length, 90.0 + float(np.degrees(slant)))
    dim = float(rng.uniform(0.7, 0.95))
    return image * dim + layer[..., None]


def _haze(image: np.ndarray, rng: np.random.Generator, style: Style) -> np.ndarray:
    """Fog, mist or a dirty housing window: contrast lost towards a bright airlight."""
    airlight = float(rng.uniform(170, 240))
    if style == "train":
        keep = float(rng.uniform(0.45, 0.8))
        return image * keep + airlight * (1 - keep)
    height = image.shape[0]
    far, near = sorted(rng.uniform(0.35, 0.9, 2))  # the top of the frame is further away
    keep = np.linspace(far, near, height, dtype=np.float32)[:, None, None]
    tint = np.array([1.05, 1.0, 0.95], np.float32) * airlight  # BGR: a little blue
    return image * keep + tint * (1 - keep)


def _sharpen(image: np.ndarray, rng: np.random.Generator, style: Style) -> np.ndarray:
    """A camera's over-eager edge enhancement: bright and dark halos along every stroke."""
    if style == "train":
        blurred = cv2.GaussianBlur(image, (0, 0), float(rng.uniform(0.8, 2.0)))
        return image + float(rng.uniform(0.6, 2.0)) * (image - blurred)
    laplacian = cv2.Laplacian(image, cv2.CV_32F, ksize=1)
    return image - float(rng.uniform(0.4, 1.2)) * laplacian


def _low_bitrate(image: np.ndarray, rng: np.random.Generator, style: Style) -> tuple[np.ndarray, int]:
    """A stream squeezed into too few bits: resolution lost, then heavy block compression."""
    height, width = image.shape[:2]
    factor = float(rng.uniform(0.5, 0.85))
    small = (max(int(width * factor), 1), max(int(height * factor), 1))
    if style == "train":
        shrunk = cv2.resize(image, small, interpolation=cv2.INTER_AREA)
        image = cv2.resize(shrunk, (width, height), interpolation=cv2.INTER_LINEAR)
        return image, int(rng.integers(8, 26))
    shrunk = cv2.resize(image, small, interpolation=cv2.INTER_LINEAR)
    image = cv2.resize(shrunk, (width, height), interpolation=cv2.INTER_CUBIC)
    return image, int(rng.integers(10, 23))
