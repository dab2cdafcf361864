"""``ioc anpr [--json] IMAGE...``: read the licence plates in image files.

Models load once; each image is timed alone (decode + recognition). Every image gives one
line of JSON (``--json``, the default; ``--text`` for a line a person reads)::

    {"image": PATH, "ms": 12.3, "plates": [{"text": ..., "display": ..., "confidence": ...,
      "bbox": [x, y, w, h], "layout": ..., "candidates": [{"text": ..., "confidence": ...}]}]}

and an unreadable image gives ``{"image": PATH, "ms": ..., "error": REASON}``; the
command goes on with the next image and exits 1 if any image failed. ``-`` reads an image
from standard input (``curl ... | ioc anpr -``).
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import io
import json
import os
import stat
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, get_args

import numpy as np

from ioc.schemas import LookCloserSetting

if TYPE_CHECKING:
    from detectors.jpeg import DecodedImage

__all__ = ["LOOK_CLOSER_CHOICES", "MAX_PIXELS_BY_FORMAT", "STDIN", "add_look_closer_argument",
           "load_decoders", "read_image", "read_plates", "read_stdin_image", "register", "run"]

LOOK_CLOSER_CHOICES: tuple[str, ...] = get_args(LookCloserSetting)
STDIN = "-"  # the image name that stands for standard input
# Formats whose decoders hold more than the image while decoding it, and the most pixels they may
# have: the recogniser's process (`ioc anpr FILE`, peak RSS) stays under 300 MB. A TIFF goes through a
# second, four-channel buffer (24 MP: 302 MB); at 12 MP an AVIF peaked at 369 MB, a JPEG 2000 at 353,
# at 8.3 MP (3840x2160) at 305 and 297; a GIF at 16 MP 295, 24 MP 387; a WebP at 16 MP 282, 24 MP 352
# (a PNG: 225 MB at 8.3 MP, 264 at 16, about 270 at 24). Any other format may have MAX_PIXELS.
MAX_PIXELS_BY_FORMAT = {"TIFF": 12_000_000, "GIF": 12_000_000, "WEBP": 16_000_000,
                        "AVIF": 6_000_000, "JPEG2000": 6_000_000}  # fmt: skip


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("anpr", help="recognise licence plates in image files")
    parser.add_argument("images", nargs="+", metavar="IMAGE",
                        help="image files (JPEG, PNG, ...); - for standard input")  # fmt: skip
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_false", dest="text",
                        help="one JSON object per image and line (the default)")
    output.add_argument("--text", action="store_true", help="one line per image for a person to read")
    parser.add_argument("--home-province", default=None, type=_home_province,
                        help="home province plate code(s), e.g. 20 or 20,97 (default: settings)")
    add_look_closer_argument(parser, default=None)
    parser.set_defaults(func=run, text=False)


def add_look_closer_argument(parser: argparse.ArgumentParser, *, default: str | None) -> None:
    """``--look-closer``: when to look again at full size for small plates (``LookCloser``)."""
    parser.add_argument("--look-closer", choices=LOOK_CLOSER_CHOICES, default=default,
                        help="when to look again at full size for small plates: 'always' for street "
                             "cameras (about 28 ms more per 1280x720 frame), 'never' for cameras "
                             f"framed for plates (default: {default or 'settings'})")  # fmt: skip


def _home_province(value: str) -> str:
    from detectors.plate_format import home_codes

    try:
        return ",".join(home_codes(value))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def load_decoders() -> None:
    """Import Pillow's format plugins and run OpenCV's decoder once, before any image is timed:
    the first image was charged about 33 ms for Pillow's import and plugin loading."""
    import cv2
    from PIL import Image

    Image.init()
    cv2.imdecode(cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1], cv2.IMREAD_COLOR)


def read_image(path: Path) -> DecodedImage:
    """Decode an image file, a large photo scaled down (:mod:`detectors.jpeg`); ValueError
    with a reason if it cannot be used. Formats other than JPEG and PNG are sized by Pillow
    before OpenCV decodes them from the file; one Pillow cannot size is refused rather than
    decoded blind, and none is read into memory whole (a small image padded with a gigabyte).
    A file that is not a regular one (a pipe) is copied to a temporary file first, up to
    :data:`detectors.jpeg.MAX_FILE_BYTES` (:func:`read_stdin_image`: standard input too)."""
    from PIL import Image

    from detectors.jpeg import allowed_size, decode_file, decode_path

    try:
        if not stat.S_ISREG(path.stat().st_mode):  # a pipe: it can be read once only
            with path.open("rb") as stream, _spooled(stream) as spooled:
                return read_image(spooled)
        decoded = decode_file(path)  # JPEG and PNG; its UndecodableImageError is a ValueError
        if decoded is not None:
            return decoded
        width, height = _allowed_format_size(path)
        return decode_path(path, *allowed_size(width, height, False))  # at full size, as a PNG is
    except Image.DecompressionBombError as exc:
        raise ValueError(f"image too large: {exc}") from exc
    except Image.UnidentifiedImageError:
        raise ValueError("not a readable image") from None
    except OSError as exc:
        raise ValueError(f"cannot open: {exc.strerror or exc}") from exc


def read_stdin_image() -> DecodedImage:
    """:func:`read_image` of the image on standard input."""
    try:
        with _spooled(sys.stdin.buffer) as spooled:
            return read_image(spooled)
    except OSError as exc:
        raise ValueError(f"cannot read standard input: {exc.strerror or exc}") from exc


@contextlib.contextmanager
def _spooled(stream: BinaryIO) -> Iterator[Path]:
    """A temporary file holding what ``stream`` (standard input, a pipe) gives, up to
    :data:`detectors.jpeg.MAX_FILE_BYTES`: a stream can be read once only, and an image's bytes
    held in memory while it is decoded took a 24 MP PNG's decoding from 264 to 314 MB."""
    from detectors.jpeg import MAX_FILE_BYTES

    with tempfile.NamedTemporaryFile(prefix="ioc-anpr-") as spool:
        while chunk := stream.read(1 << 20):
            if spool.tell() + len(chunk) > MAX_FILE_BYTES:
                raise ValueError(f"image too large: over the {MAX_FILE_BYTES} bytes taken from a stream")
            spool.write(chunk)
        spool.flush()
        yield Path(spool.name)


def _allowed_format_size(source: Path) -> tuple[int, int]:
    """The size of an image that is neither JPEG nor PNG, as its header says; ValueError where its
    format's limit (:data:`MAX_PIXELS_BY_FORMAT`) is exceeded."""
    (width, height), kind = _pillow_header(source)
    limit = MAX_PIXELS_BY_FORMAT.get(kind or "")
    if limit is not None and width * height > limit:
        raise ValueError(f"image too large: a {width}x{height} {kind}, over the {limit} pixels allowed "
                         f"for {kind} (JPEG and PNG may be larger)")
    return width, height


def _pillow_header(source: Path) -> tuple[tuple[int, int], str | None]:
    """The size and format in an image's header, read by Pillow (only the header: a video
    or a huge image stays on disk). A damaged file is a ValueError: Pillow's format plugins raise
    more than OSError for one (RuntimeError for an AVIF, NotImplementedError for a DDS), which
    had ended the command before the images after it."""
    from PIL import Image

    try:
        with Image.open(source) as header:
            return header.size, header.format
    except (Image.DecompressionBombError, OSError):  # read_image says which (OSError: unidentified too)
        raise
    except Exception as exc:  # noqa: BLE001 - whatever a plugin raises, the file is not readable
        raise ValueError(f"not a readable image ({type(exc).__name__}: {exc})") from exc


def read_plates(recognizer: Any, source: Path | str) -> list[Any]:
    """The plates a recogniser reads in an image file (:data:`STDIN` as a string: standard input),
    their boxes and corners in the file's pixels (a large photo is decoded scaled down); ValueError
    as :func:`read_image` raises it, :class:`detectors.recognizer.ImageError` for pixels the
    recogniser cannot use."""
    decoded = read_stdin_image() if source == STDIN else read_image(Path(source))
    return [plate.scaled(decoded.scale, within=decoded.size) for plate in recognizer.recognize(decoded.image)]


def printable_name(name: str) -> str:
    """``name`` as printed: a file name whose bytes are not UTF-8 (Python keeps them as
    surrogates, which no UTF-8 output takes) with those bytes written ``\\xe9``."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def _plate_json(plate: Any) -> dict[str, Any]:
    return {
        "text": plate.text,
        "display": plate.display,
        "confidence": plate.confidence,
        "bbox": list(plate.bbox),
        "layout": plate.layout,
        "candidates": [{"text": text, "confidence": conf} for text, conf in plate.candidates],
    }


def _describe(plate: Any) -> str:
    where = "unknown province" if plate.province is None else (
        f"province {plate.province}" + (", out of province" if plate.out_of_province else "")
    )  # fmt: skip
    return f"{plate.display} ({plate.confidence:.2f}, {plate.layout}, {plate.colour}, {where})"


def run(args: argparse.Namespace) -> int:
    from detectors.recognizer import PlateRecognizer

    home, look_closer = args.home_province, args.look_closer
    if home is None or look_closer is None:
        from ioc.config import get_settings

        settings = get_settings()
        home, look_closer = home or settings.home_province, look_closer or settings.anpr_look_closer
    recognizer = PlateRecognizer.load(home_province=home, look_closer=look_closer)
    recognizer.warm_up()
    load_decoders()
    # Output that cannot take every character (a file name or plate in Vietnamese) gets escapes
    # instead of ending the run: JSON's own \u escapes, a person's line Python's backslashes
    ascii_json = sys.stdout is not None and codecs.lookup(sys.stdout.encoding or "ascii").name != "utf-8"
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="backslashreplace")
    try:
        failures = sum(not _report(recognizer, name, as_json=not args.text, ascii_json=ascii_json)
                       for name in args.images)  # fmt: skip
    except BrokenPipeError:  # the reader went (| head): no traceback, and nothing more to write
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:  # a full disk: the lines already written stand, the rest cannot be
        print(f"ioc anpr: cannot write the output: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 1 if failures else 0


def _report(recognizer: Any, name: str, *, as_json: bool, ascii_json: bool) -> bool:
    """Read one image and print its line; False if it could not be read.

    One image per call, so its pixels are freed before the next is decoded: a loop
    holding the previous photo while decoding the next added a 25 MB 4K frame to
    the peak of a 12 MP photo's decode.
    """
    import cv2

    from detectors.recognizer import ImageError

    source, name = name, printable_name(name)  # "./-" is a file, "-" standard input
    started = time.perf_counter()
    try:
        plates = read_plates(recognizer, source)
    except (ValueError, ImageError, cv2.error) as exc:
        ms = round((time.perf_counter() - started) * 1000, 2)
        if as_json:
            failed = {"image": name, "ms": ms, "error": str(exc)}
            print(json.dumps(failed, ensure_ascii=ascii_json), flush=True)
        else:
            print(f"{name}: error: {exc}", flush=True)
        return False
    ms = round((time.perf_counter() - started) * 1000, 2)
    if as_json:
        line = {"image": name, "ms": ms, "plates": [_plate_json(p) for p in plates]}
        print(json.dumps(line, ensure_ascii=ascii_json), flush=True)
    else:
        found = "; ".join(_describe(p) for p in plates) or "no plate"
        print(f"{name}: {found} [{ms:.1f} ms]", flush=True)
    return True
