"""JPEG decoding and encoding at the edge of the pipeline.

Frames come from the network, so :func:`decode_jpeg` trusts nothing: only JPEG and
PNG are decoded, and their declared size is checked *before* decoding, so a
100-byte file claiming 12000x12000 pixels (a decompression bomb) is refused
without allocating the 430 MB it asks for.
"""

from __future__ import annotations

import struct

import cv2
import numpy as np

__all__ = ["MAX_PIXELS", "UndecodableImageError", "declared_size", "decode_jpeg", "encode_jpeg"]

MAX_PIXELS = 40_000_000  # larger images are refused rather than risking memory
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# start-of-frame markers carry the size: SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC)
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD9)})  # TEM, RSTn, SOI: no length field
_START_OF_SCAN = 0xDA


class UndecodableImageError(ValueError):
    """The bytes are not an image OpenCV can decode."""


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _STANDALONE_MARKERS:
            i += 2
            continue
        if marker == _START_OF_SCAN:
            return None  # image data before any frame header
        if marker in _SOF_MARKERS:
            if i + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        if length < 2:
            return None
        i += 2 + length
    return None


def declared_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` as a JPEG or PNG header declares it (nothing is decoded);
    None when ``data`` is neither or its header is cut short."""
    if data[:8] == _PNG_SIGNATURE and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def decode_jpeg(data: bytes, *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode JPEG (or PNG) bytes to an ``(H, W, 3) uint8 BGR`` image.

    Raises :class:`UndecodableImageError` for anything else, for a header that
    declares no pixels or more than ``max_pixels``, and for data OpenCV cannot decode.
    """
    size = declared_size(data)
    if size is None:
        raise UndecodableImageError(f"{len(data)} bytes are not a JPEG or PNG image with a readable header")
    width, height = size
    if width * height == 0:
        raise UndecodableImageError(f"image declares {width}x{height} pixels")
    if width * height > max_pixels:
        raise UndecodableImageError(f"image declares {width}x{height} pixels, over the {max_pixels} allowed")
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise UndecodableImageError(f"cannot decode {len(data)} bytes as an image: {exc.err}") from exc
    if image is None or image.size == 0:
        raise UndecodableImageError(f"cannot decode {len(data)} bytes as an image")
    return image


def encode_jpeg(image: np.ndarray, *, quality: int = 85) -> bytes:
    """Encode a BGR image as JPEG bytes."""
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buffer.tobytes()
