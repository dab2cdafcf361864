"""JPEG decoding and encoding at the edge of the pipeline."""

from __future__ import annotations

import cv2
import numpy as np


class UndecodableImageError(ValueError):
    """The bytes are not an image OpenCV can decode."""


def decode_jpeg(data: bytes) -> np.ndarray:
    """Decode JPEG (or PNG) bytes to an ``(H, W, 3) uint8 BGR`` image."""
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.size == 0:
        raise UndecodableImageError(f"cannot decode {len(data)} bytes as an image")
    return image


def encode_jpeg(image: np.ndarray, *, quality: int = 85) -> bytes:
    """Encode a BGR image as JPEG bytes."""
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buffer.tobytes()
