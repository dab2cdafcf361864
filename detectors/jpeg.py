"""JPEG decoding and encoding at the edge of the pipeline.

Frames come from the network, so :func:`decode_jpeg` trusts nothing: only JPEG and
PNG are decoded, and their declared size is checked *before* decoding, so a
100-byte file claiming 12000x12000 pixels (a decompression bomb) is refused
without allocating the 430 MB it asks for.

Large photos (an officer's phone takes 48-108 megapixels) are decoded at 1/2, 1/4 or
1/8 of their sides, to at most :data:`DECODED_PIXELS`: the recogniser never looks at a
frame at more than 1280x768 and a plate it can find there keeps its pixels, while a
full-size decode would put a recogniser process far over 300 MB. libjpeg scales a
sequential JPEG while decoding it, without holding the full-size image, so those are
accepted up to :data:`MAX_SCALED_JPEG_PIXELS`; any other image (a progressive JPEG keeps
all its coefficients, a PNG is decoded in full before it is scaled) only up to
:data:`MAX_PIXELS`. A file is best read with :func:`decode_file`, which leaves reading it
to OpenCV: a large PNG's bytes are not held while it is decoded.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

__all__ = [
    "DECODED_PIXELS",
    "DecodedImage",
    "MAX_FILE_BYTES",
    "MAX_PIXELS",
    "MAX_SCALED_JPEG_PIXELS",
    "UndecodableImageError",
    "allowed_size",
    "declared_size",
    "decode_file",
    "decode_image",
    "decode_jpeg",
    "decode_path",
    "decode_scaled",
    "encode_jpeg",
]

# larger images are refused rather than risking memory: decoding holds an image twice (OpenCV's
# buffer and the array copied from it), and a PNG at full size before it is scaled, so a 24 MP
# one peaks a recogniser process at about 260 MB and a 40 MP one went over 330 MB
MAX_PIXELS = 24_000_000
MAX_SCALED_JPEG_PIXELS = 120_000_000  # a sequential JPEG's limit: a 108 MP phone photo, decoded at 1/4
DECODED_PIXELS = 16_800_000  # larger images are decoded scaled down (4096x4096; a 64 MP photo at 1/2)
_SCALED_FLAGS = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2,
                 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}  # fmt: skip
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# start-of-frame markers carry the size: SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC)
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_SEQUENTIAL_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC9})  # baseline, extended, arithmetic sequential
_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD9)})  # TEM, RSTn, SOI: no length field
_START_OF_SCAN = 0xDA
# a file's first bytes, where its size is looked for: a JPEG's frame header follows its EXIF
# (at most 64 KiB), colour-profile and XMP segments
_HEAD_BYTES = 256 * 1024
# how far into a JPEG file its frame header is looked for at most (metadata segments are 64 KiB
# each): a file with none there is refused, not read whole (a gigabyte of junk after the marker)
_LONGEST_HEAD_BYTES = 8 * 1024 * 1024
# a file OpenCV cannot read by its name (a name that is not UTF-8) is read into memory, up to this
MAX_FILE_BYTES = 64 * 1024 * 1024


class UndecodableImageError(ValueError):
    """The bytes are not an image OpenCV can decode."""


@dataclass(frozen=True)
class DecodedImage:
    """An ``(H, W, 3) uint8 BGR`` image whose sides are ``1/scale`` of the file's: multiply
    positions found in it by ``scale`` to get the file's pixels, of which there are ``size``
    (width, height; as shown, its EXIF orientation applied). A side scaled down is rounded (up by
    libjpeg), so a position times ``scale`` can be up to ``scale - 1`` pixels past the file's edge."""

    image: np.ndarray
    scale: int
    size: tuple[int, int]


def _decoded(image: np.ndarray, scale: int, width: int, height: int) -> DecodedImage:
    """``image`` decoded at ``1/scale`` from a file declaring ``width`` x ``height``: the declared
    sides swapped where its EXIF orientation turned it (a phone photo taken upright). A file
    within ``scale`` pixels of square may decode square either way and is taken as not turned."""
    rows, columns = image.shape[:2]

    def fits(decoded: int, declared: int) -> bool:
        return abs(decoded * scale - declared) < scale

    turned = not (fits(columns, width) and fits(rows, height)) and fits(columns, height) and fits(rows, width)
    return DecodedImage(image, scale, (height, width) if turned else (width, height))


def _jpeg_frame(data: bytes) -> tuple[int, int, int] | None:
    """``(width, height, start-of-frame marker)`` from a JPEG's frame header."""
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
            return width, height, marker
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        if length < 2:
            return None
        i += 2 + length
    return None


def _header(data: bytes) -> tuple[int, int, bool] | None:
    """``(width, height, whether libjpeg can scale it while decoding)`` for a JPEG or PNG."""
    if data[:8] == _PNG_SIGNATURE and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height, False
    if data[:2] == b"\xff\xd8" and (frame := _jpeg_frame(data)) is not None:
        width, height, marker = frame
        return width, height, marker in _SEQUENTIAL_SOF_MARKERS
    return None


def declared_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` as a JPEG or PNG header declares it (nothing is decoded);
    None when ``data`` is neither or its header is cut short."""
    header = _header(data)
    return None if header is None else header[:2]


def decode_scaled(data: bytes, width: int, height: int) -> DecodedImage:
    """Decode with OpenCV at the largest of 1, 1/2, 1/4 or 1/8 of ``width`` x ``height``
    (the declared size) that has at most :data:`DECODED_PIXELS`; :class:`UndecodableImageError`
    when OpenCV cannot. An EXIF orientation is applied, as ``cv2.imdecode`` does by default."""
    scale = _scale(width, height)
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), _SCALED_FLAGS[scale])
    except cv2.error as exc:
        raise UndecodableImageError(f"cannot decode {len(data)} bytes as an image: {exc.err}") from exc
    if image is None or image.size == 0:
        raise UndecodableImageError(f"cannot decode {len(data)} bytes as an image")
    return _decoded(image, scale, width, height)


def _scale(width: int, height: int) -> int:
    return next((s for s in (1, 2, 4) if width * height <= DECODED_PIXELS * s * s), 8)


def decode_jpeg(data: bytes) -> np.ndarray:
    """Decode JPEG (or PNG) bytes to an ``(H, W, 3) uint8 BGR`` image, scaled down to at
    most :data:`DECODED_PIXELS` where larger (:func:`decode_image` tells by how much)."""
    return decode_image(data).image


def decode_image(data: bytes) -> DecodedImage:
    """Decode JPEG (or PNG) bytes, scaled down to at most :data:`DECODED_PIXELS` where larger.

    Raises :class:`UndecodableImageError` for anything else, for a header that declares
    no pixels or more than its limit (:data:`MAX_SCALED_JPEG_PIXELS` for a sequential JPEG,
    :data:`MAX_PIXELS` for any other), and for data OpenCV cannot decode.
    """
    header = _header(data)
    if header is None:
        raise UndecodableImageError(f"{len(data)} bytes are not a JPEG or PNG image with a readable header")
    width, height = allowed_size(*header)
    return decode_scaled(data, width, height)


def decode_file(path: Path) -> DecodedImage | None:
    """:func:`decode_image` of a file, read by OpenCV itself so that its bytes are not held while
    it is decoded (a 24 MP PNG's can be 70 MB); None for a file that is neither JPEG nor PNG.
    A JPEG file cut short is decoded as far as it goes (libjpeg greys the rest and warns on
    stderr), where :func:`decode_image` refuses its bytes: a photo copied in part still shows
    what it holds.

    Raises :class:`UndecodableImageError` as :func:`decode_image` does, and OSError when the
    file cannot be read.
    """
    with path.open("rb") as file:
        head = file.read(_HEAD_BYTES)
        header = _header(head)
        if header is None and len(head) == _HEAD_BYTES and head.startswith(b"\xff\xd8"):
            head += file.read(_LONGEST_HEAD_BYTES - _HEAD_BYTES)  # a JPEG whose frame header lies further in
            header = _header(head)
            if header is None:
                raise UndecodableImageError(f"no JPEG frame header in the first {len(head)} bytes")
    if header is None:
        return None
    return decode_path(path, *allowed_size(*header))


def decode_path(path: Path, width: int, height: int) -> DecodedImage:
    """The image file at ``path``, whose header declares ``width`` x ``height`` (checked by the
    caller: :func:`allowed_size`), decoded by OpenCV from the file, scaled as :func:`decode_scaled`
    scales: its bytes are not held while it is decoded. A file OpenCV cannot read by its name is
    read into memory, up to :data:`MAX_FILE_BYTES`.

    Raises :class:`UndecodableImageError` when it cannot be decoded, OSError when it cannot be read.
    """
    scale = _scale(width, height)
    try:
        image = cv2.imread(str(path), _SCALED_FLAGS[scale]) if _utf8_name(path) else None
    except cv2.error:
        image = None
    if image is not None and image.size:
        return _decoded(image, scale, width, height)
    size = path.stat().st_size  # OpenCV could not, or not by this name: from the bytes
    if size > MAX_FILE_BYTES:
        raise UndecodableImageError(f"cannot decode the file by its name, and its {size} bytes are over "
                                    f"the {MAX_FILE_BYTES} read into memory")
    return decode_scaled(path.read_bytes(), width, height)


def _utf8_name(path: Path) -> bool:
    """OpenCV takes a file name as UTF-8; a name that is not (its bytes kept as surrogates, as
    Python keeps a Latin-1 name) crashed imread with a segmentation fault."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def allowed_size(width: int, height: int, scalable: bool) -> tuple[int, int]:
    """``(width, height)`` as declared (``scalable``: a sequential JPEG, which libjpeg scales while
    decoding); :class:`UndecodableImageError` when it is no pixels or more than its limit."""
    if width * height == 0:
        raise UndecodableImageError(f"image declares {width}x{height} pixels")
    limit = MAX_SCALED_JPEG_PIXELS if scalable else MAX_PIXELS
    if width * height > limit:
        raise UndecodableImageError(f"image too large: {width}x{height} pixels, over the {limit} allowed")
    return width, height


def encode_jpeg(image: np.ndarray, *, quality: int = 85) -> bytes:
    """Encode a BGR image as JPEG bytes."""
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buffer.tobytes()
