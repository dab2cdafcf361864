"""Vietnamese licence-plate recognition: find plates in a frame (or take a tight crop) and read them.

``PlateRecognizer.load()`` loads the three small ONNX models once (detector,
corner refiner and strip reader, about 1.7 MB together); ``recognize(image)``
accepts a whole camera frame or a tight plate crop. A recogniser holds no mutable state after loading
and onnxruntime sessions may be run from several threads, so one instance can
be shared by a thread pool; loading one per thread works too (about 25 MB each).
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from detectors import partial_plates, plate_format
from detectors.detection import SMALLEST_PLATE, CornerRefiner, Detection, FirstLevel, PlateDetector
from detectors.geometry import READER_WIDTH, layout_from_aspect, order_corners, quad_size, rectify
from detectors.interlacing import is_interlaced, one_field
from detectors.jpeg import MAX_PIXELS  # larger inputs are refused rather than risking memory
from detectors.plate_colours import is_colourless, plate_colour, scene_cast_saturation, thumbnail
from detectors.plate_format import Layout
from detectors.reading import ALPHABET, Reading, StripReader, character_columns, decode, holds_characters

__all__ = ["MAX_PIXELS", "MAX_SIDE", "ImageError", "LookCloser", "PlateRecognizer", "PlateResult"]

MAX_SIDE = 32_766  # OpenCV's warps take no image with a side of SHRT_MAX (32,767) or more

MODELS_DIR = Path(__file__).with_name("models")
# Either entry point may get a tight crop of one plate. The crop path is tried on images up
# to this size, and on larger ones where the detector read nothing sure: the detector does
# not find a plate that fills the whole image, and a high-resolution crop can be 2000 px wide.
_SMALL_IMAGE = 800
# read_crop looks at an image this long on a side or more as a frame where it reads nothing as a
# crop: a scene given as a crop (a 640x360 camera frame read nothing before). Smaller ones are taken
# for crops: of 300 held-out tight crops (at most 393 px long) 15 read nothing, and looking at those
# as frames cost about 16 ms each and read none of them
_SCENE_SIDE = 400
_SMALL_FRAME_ROWS = 64  # an image under twice this height is a crop, not an interlaced frame
# A tight crop narrower than this (a two-row plate's strip width) that reads nothing is read
# again enlarged twice (see PlateRecognizer._read_as_crop)
_ENLARGE_BELOW = READER_WIDTH // 2


class LookCloser(StrEnum):
    """When a frame the detector's input shrinks is looked at again at full size for small plates
    (:meth:`PlateDetector.detect_small`: about 28 ms more for a 1280x720 frame on one core).

    A camera framed for plates (a checkpoint, a toll gate: plates 100 px wide and more) needs it
    rarely, a street camera (vehicles near and far) often: its near plates read sure stop the
    default from looking for the far ones, unless they were found only just. Legible plates read
    in real street photos (`ioc bench photos`, docs/photos), never / unsure / always: 6 / 22 / 22
    of 28 in eleven frames about 1280x720, 2 / 4 / 4 of 7 in a 2000x2000 collage (2026-12-06).
    """

    NEVER = "never"  # a plate-free 1280x720 frame takes about 16 ms instead of 50
    UNSURE = "unsure"  # no sure read (in frames over 1280x720, or of nothing or a small plate), or a plate
    # found only just (its detection under _CLEAR_DETECTION)
    ALWAYS = "always"  # street cameras: far plates beside the near ones, and near ones (the detector's
    # coarse pyramid levels) beside far ones read sure


_SURE = 0.9
_EVIDENCE_HEIGHT = 64
# A plate filling more than this share of the image keeps its colour in an infrared frame: a
# tight crop of a white plate can be as grey as an infrared frame, and its colour is then the
# plate's own (white).
_CROP_SHARE = 0.25
# A plate read covering less than this share of an image makes it a scene (see _is_scene)
_SCENE_SHARE = 1 / 16
# Detections read per frame, best first. A street photo can hold many plates: at 6, frames of
# eight motorbikes read 172 of 240 plates, at 12 223 (16: 223); 1-2-plate frames cost the same.
_MAX_PLATES = 12
_FRAME_PASSES = 3  # corner refinement passes for detections in a frame
_FRAME_LOOKS = 2  # of which the last this many are read and averaged (a crop has the time for one)
# A read at the final corners this sure (calibrated) is not looked at again at earlier ones: on
# 200 held-out frames the same plates read, no confidence moved by more than 0.02 or across 0.9
_SETTLED = 0.99
# As LookCloser.UNSURE, the detector looks closer (detect_small) at a frame with no sure read that its input
# shrinks below this share, and at a smaller one it shrinks when nothing was read at all: real
# 1280x720 street photos, 28 legible plates in 11, read 7 without a closer look, 17 with it
# where nothing was read, 18 wherever nothing was sure. Held-out 1280x720 frames of one or two
# plates took 18.0 -> 18.9 ms (-> 21.6 ms wherever nothing was sure), plate-free ones 14.5 -> 42.4.
_LOOK_CLOSER_BELOW = 0.5
# ... and at any frame it shrinks with no sure read where a plate read is narrower than this at
# the detector's input: twice the narrowest it finds (detectors.detection.SMALLEST_PLATE), so
# plates a little further away are past its reach. Real street photos 1257-1306 px wide (input
# scale 0.50-0.51), 28 legible plates in 11: 17 -> 20 read right; held-out 1280x720 frames of one
# or two plates about 1-1.5 ms a frame more (seeds 2026 and 99, `ioc bench anpr`), the same plates read
_LOOK_CLOSER_UNDER = 2 * SMALLEST_PLATE
# An unsure read is looked at again with its corners moved by these shares of the plate's width
# and height (see PlateRecognizer._look_again_if_in_doubt)
_NUDGES = np.array([[0.01, 0.03], [-0.01, -0.03], [0.01, -0.03], [-0.01, 0.03]], np.float32)
# A detection at least this sure is clear. One that reads unsure or not at all is worth a second
# attempt: with the other row arrangement, and, where it read nothing in a frame with no sure read,
# at its own corners (see PlateRecognizer._read_detections). A plate read from a detection less
# sure than this makes LookCloser.UNSURE look closer, its read sure or not: the detector scores
# this scene's plates near its cut, and misses others under it (real photos 52 -> 55 of 64 plates
# read, as with ALWAYS; no closer look added in 200 held-out 1280x720 frames; docs/benchmarks.md).
_CLEAR_DETECTION = 0.5
# Motion blurs along the rows that unsure plates are deconvolved for, in pixels of the frame
# (PlateRecognizer._look_again_deblurred), and the Richardson-Lucy iterations for each
_DEBLUR_LENGTHS = (3, 5)
_DEBLUR_ITERATIONS = 10


# A plate read this wide at the detector's input (or wider) may be part of a plate too wide for the
# first level of its pyramid (about 170 px): the coarse levels are looked at even where it read sure
_COARSE_LEVELS_FROM = 120
# A plate read and the detection it was read from
_Read = tuple[Detection, "PlateResult"]


class ImageError(ValueError):
    """The input is not a usable image (empty, wrong shape or dtype, too large)."""


@dataclass(frozen=True)
class PlateResult:
    """One recognised plate.

    ``text`` is canonical (``51F86988``), ``display`` has separators; ``confidence``
    is calibrated (reads at >= 0.9 were right >= 99 % on validation data);
    ``bbox`` is ``(x, y, w, h)`` and ``corners`` four ``[x, y]`` clockwise from
    top-left, both in input-image pixels; ``candidates`` are the top readings
    ``(text, confidence)`` best first (the first is ``text``); ``crop`` is the
    rectified plate as ``(H, W, 3) uint8 BGR``; ``detection_score`` is how sure the detector was
    that a plate is there (1.0 for an image read whole as a plate's crop).
    """

    text: str
    display: str
    confidence: float
    layout: str
    colour: str
    province: str | None
    out_of_province: bool | None
    bbox: tuple[int, int, int, int]
    corners: list[list[float]]
    candidates: list[tuple[str, float]]
    crop: np.ndarray | None = field(default=None, compare=False, repr=False)
    detection_score: float = field(default=1.0, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (everything but the crop)."""
        return {
            "text": self.text,
            "display": self.display,
            "confidence": self.confidence,
            "bbox": list(self.bbox),
            "layout": self.layout,
            "colour": self.colour,
            "province": self.province,
            "out_of_province": self.out_of_province,
            "corners": self.corners,
            "candidates": [[text, conf] for text, conf in self.candidates],
        }

    def scaled(self, factor: float, *, within: tuple[int, int] | None = None) -> PlateResult:
        """The same plate with its box and corners in the pixels of an image ``factor`` times
        as large: a photo decoded scaled down (:class:`detectors.jpeg.DecodedImage`), or a crop
        read enlarged (``factor`` 0.5); the box still covers the corners, within the image's
        ``(width, height)`` where given (a scaled-down side is rounded, up by libjpeg: times
        ``factor`` it can be longer than the image's)."""
        if factor == 1:
            return self
        x, y, w, h = self.bbox
        corners = [[round(cx * factor, 1), round(cy * factor, 1)] for cx, cy in self.corners]
        x0, y0 = math.floor(x * factor), math.floor(y * factor)
        x1, y1 = math.ceil((x + w) * factor), math.ceil((y + h) * factor)
        if within is not None:
            x1, y1 = min(x1, within[0]), min(y1, within[1])
        return dataclasses.replace(self, bbox=(x0, y0, x1 - x0, y1 - y0), corners=corners)


@dataclass(frozen=True)
class _Calibration:
    """Piecewise-linear map from the reader's raw string probability to a calibrated confidence."""

    raw: tuple[float, ...] = (0.0, 1.0)
    calibrated: tuple[float, ...] = (0.0, 1.0)
    min_confidence: float = 0.05
    min_detection: float = 0.3

    def __call__(self, raw: float) -> float:
        return float(np.interp(raw, self.raw, self.calibrated))

    @classmethod
    def load(cls, path: Path) -> _Calibration:
        if not path.exists():
            return cls()
        data = json.loads(path.read_text())
        return cls(tuple(data["raw"]), tuple(data["calibrated"]), data.get("min_confidence", 0.05),
                   data.get("min_detection", 0.3))  # fmt: skip


def as_bgr(image: np.ndarray) -> np.ndarray:
    """Validate ``image`` and return it as ``(H, W, 3) uint8 BGR`` (grey and BGRA are converted)."""
    if not isinstance(image, np.ndarray):
        raise ImageError(f"expected a numpy array, got {type(image).__name__}")
    if image.ndim not in (2, 3) or image.size == 0 or min(image.shape[:2]) < 1:
        raise ImageError(f"empty or malformed image of shape {image.shape}")
    if image.shape[0] * image.shape[1] > MAX_PIXELS:
        raise ImageError(f"image of {image.shape[1]}x{image.shape[0]} exceeds {MAX_PIXELS} pixels")
    if max(image.shape[:2]) > MAX_SIDE:
        raise ImageError(f"image of {image.shape[1]}x{image.shape[0]} is over {MAX_SIDE} pixels on a side")
    if image.dtype != np.uint8:
        raise ImageError(f"expected uint8 pixels, got {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    channels = image.shape[2]
    if channels == 3:
        return image
    if channels == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if channels == 1:
        return cv2.cvtColor(image[:, :, 0], cv2.COLOR_GRAY2BGR)
    raise ImageError(f"expected 1, 3 or 4 channels, got {channels}")


def _colours_in_the_scene_light(results: list[PlateResult], frame: np.ndarray) -> list[PlateResult]:
    """The plates' colours as the scene's light allows (:mod:`detectors.plate_colours`): unknown in
    an infrared frame, and white for a coloured-looking one no more saturated than tinted light
    makes white. A plate filling much of the image (a tight crop) keeps its colour: the image is
    the plate."""
    in_scene = {id(r) for r in results if _plate_share(r, frame) <= _CROP_SHARE}
    if not in_scene:
        return results
    small = thumbnail(frame)
    if is_colourless(small):
        return [dataclasses.replace(r, colour="unknown") if id(r) in in_scene else r for r in results]
    coloured = {id(r) for r in results if id(r) in in_scene and r.colour != "white" and r.crop is not None}
    if not coloured:
        return results
    cast = scene_cast_saturation(small)
    return [
        dataclasses.replace(r, colour=plate_colour(r.crop, cast_saturation=cast)) if id(r) in coloured else r
        for r in results
    ]


def _is_scene(results: list[PlateResult], frame: np.ndarray) -> bool:
    """Whether a plate was read that covers little of the image: the image is a scene, and
    reading it whole as one plate's crop (7 ms at 1280x720) finds nothing (0 of 27 such
    held-out frames; of 90 large tight crops, none had so small a read)."""
    return any(_plate_share(r, frame) < _SCENE_SHARE for r in results)


def _plate_share(result: PlateResult, frame: np.ndarray) -> float:
    """The share of the image the plate's box covers (near 1 for a tight crop)."""
    _, _, width, height = result.bbox
    return width * height / (frame.shape[0] * frame.shape[1])


def _evidence_crop(image: np.ndarray, corners: np.ndarray, layout: Layout) -> np.ndarray:
    mm_w, mm_h = {Layout.ONE_LINE: (520, 110), Layout.TWO_LINE: (330, 165), Layout.MOTORBIKE: (190, 140)}[
        layout
    ]
    width = int(round(_EVIDENCE_HEIGHT * mm_w / mm_h))
    dst = np.array([[0, 0], [width, 0], [width, _EVIDENCE_HEIGHT], [0, _EVIDENCE_HEIGHT]], np.float32)
    matrix = cv2.getPerspectiveTransform(corners.astype(np.float32), dst)
    return cv2.warpPerspective(image, matrix, (width, _EVIDENCE_HEIGHT), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)  # fmt: skip


class PlateRecognizer:
    """Finds and reads Vietnamese plates. Thread-safe after :meth:`load`."""

    def __init__(
        self,
        detector: PlateDetector,
        reader: StripReader,
        *,
        refiner: CornerRefiner | None = None,
        closer_detector: PlateDetector | None = None,
        home_province: str = "20",
        calibration: _Calibration | None = None,
        look_closer: LookCloser | str = LookCloser.UNSURE,
    ) -> None:
        self._detector = detector
        self._reader = reader
        self._refiner = refiner
        self._closer_detector = closer_detector or detector
        self.home_province = home_province
        plate_format.home_codes(home_province)  # a code no province uses fails here, not at a plate
        self._calibration = calibration or _Calibration()
        self.look_closer = LookCloser(look_closer)

    @classmethod
    def load(
        cls,
        *,
        home_province: str = "20",
        models_dir: Path | None = None,
        threads: int = 1,
        look_closer: LookCloser | str = LookCloser.UNSURE,
    ) -> PlateRecognizer:
        """Load the models from ``models_dir`` (the packaged ones by default); ``threads`` per session."""
        folder = models_dir or MODELS_DIR
        refiner_path, street_path = folder / "refiner.onnx", folder / "street_detector.onnx"
        return cls(
            PlateDetector(folder / "detector.onnx", threads=threads),
            StripReader(folder / "reader.onnx", threads=threads),
            refiner=CornerRefiner(refiner_path, threads=threads) if refiner_path.exists() else None,
            closer_detector=PlateDetector(street_path, threads=threads) if street_path.exists() else None,
            home_province=home_province,
            calibration=_Calibration.load(folder / "calibration.json"),
            look_closer=look_closer,
        )

    def warm_up(self) -> None:
        """Read a drawn plate, as a crop and in a 16:9 frame looked at closer too, so the first
        real image is not charged for onnxruntime's and OpenCV's set-up (about 5 ms at 1280x720,
        and about 40 ms more for the first frame that looks closer)."""
        plate = np.full((60, 280, 3), 230, np.uint8)
        cv2.putText(plate, "51F-869.88", (8, 45), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (20, 20, 20), 3)
        self.read_crop(plate)
        frame = np.full((720, 1280, 3), 90, np.uint8)
        frame[500:560, 500:780] = plate
        self.recognize(frame, look_closer=LookCloser.ALWAYS)

    # ------------------------------------------------------------------ public entry points

    def recognize(
        self, image: np.ndarray, *, look_closer: LookCloser | str | None = None
    ) -> list[PlateResult]:
        """All plates in ``image`` (a ``(H, W, 3) uint8 BGR`` frame or a tight plate crop), best first;
        ``look_closer`` overrides :attr:`look_closer` for this image (a camera's own setting).

        Raises :class:`ImageError` for unusable input. A frame without a plate gives ``[]``.
        """
        mode = self.look_closer if look_closer is None else LookCloser(look_closer)
        return self._recognize(as_bgr(image), mode)

    def _recognize(self, frame: np.ndarray, mode: LookCloser, *, as_crop: bool = True) -> list[PlateResult]:
        """:meth:`recognize` of a valid frame; ``as_crop`` False where the caller read it as a tight
        crop already."""
        threshold = self._calibration.min_detection
        first = self._detector.first_level(frame, threshold=threshold, limit=_MAX_PLATES)
        found, read = self._read_levels(frame, first, mode)
        results = _suppress_duplicates([result for _, result in read])
        best = max((r.confidence for r in results), default=0.0)
        if self._looks_closer(mode, frame, results, best):
            # Only plates read count as known: a false detection that read nothing, often a
            # large outline, must not hide the small plates inside it. The closer look's own
            # detector was fine-tuned on street clutter too (detectors.street_clutter)
            known = [np.asarray(r.corners, np.float32) for r in results]
            closer = self._closer_detector
            small = closer.detect_small(frame, threshold=threshold, limit=_MAX_PLATES, known=known)
            if small:
                results = _suppress_duplicates(results + self._read_detections(frame, small))
                best = max((r.confidence for r in results), default=0.0)
        if any(r.confidence < _SURE for r in results) or not results:
            results = self._read_fields_if_interlaced(frame, found, results)
            best = max((r.confidence for r in results), default=0.0)
        crop_sized = max(frame.shape[:2]) <= _SMALL_IMAGE
        if as_crop and (crop_sized or (best < _SURE and not _is_scene(results, frame))):
            crop_result = self._read_as_crop(frame)
            if crop_result is not None and crop_result.confidence > best:
                elsewhere = [r for r in results if not _overlaps(r.bbox, crop_result.bbox)]
                results = [crop_result, *elsewhere]
        if results:
            results = _colours_in_the_scene_light(results, frame)
        return sorted(results, key=lambda r: r.confidence, reverse=True)

    def _looks_closer(
        self, mode: LookCloser, frame: np.ndarray, results: list[PlateResult], best: float
    ) -> bool:
        """Whether to look for small plates (:class:`LookCloser` ``mode``); ``best`` is the surest
        read's confidence. ``detect_small`` itself skips frames the input hardly shrinks."""
        if mode != LookCloser.UNSURE:
            return mode == LookCloser.ALWAYS
        if any(r.detection_score < _CLEAR_DETECTION for r in results):
            return True  # plates found only just: others in the scene may be under the cut
        if best >= _SURE:
            return False
        scale = self._detector.input_scale(frame)
        small = any(r.bbox[2] * scale < _LOOK_CLOSER_UNDER for r in results)
        return not results or scale < _LOOK_CLOSER_BELOW or small

    def _read_fields_if_interlaced(
        self, frame: np.ndarray, found: list[Detection], results: list[PlateResult]
    ) -> list[PlateResult]:
        """For a combed frame (``detectors.interlacing``), also read it rebuilt from one field;
        where both read a plate, the surer read stays. Only frames with an unsure plate or none
        pay for the check (0.25 ms at 1280x720), only combed ones for the second reading."""
        if frame.shape[0] < 2 * _SMALL_FRAME_ROWS or not is_interlaced(frame, [d.corners for d in found]):
            return results
        field = one_field(frame)
        found = self._detector.detect(field, threshold=self._calibration.min_detection, limit=_MAX_PLATES)
        return _suppress_duplicates(results + self._read_detections(field, found), any_text=True)

    def read_crop(self, crop: np.ndarray) -> PlateResult | None:
        """Read a tight (or nearly tight) crop of one plate; None if nothing plate-like is readable.

        An image of a frame's size (:data:`_SCENE_SIDE` on a side or more) that reads nothing as
        a crop is looked at as a frame, and its surest plate returned: either entry point takes
        either kind of image. A smaller image that reads nothing costs nothing more."""
        image = as_bgr(crop)
        result = self._read_as_crop(image)
        if result is None and max(image.shape[:2]) >= _SCENE_SIDE:
            return next(iter(self._recognize(image, self.look_closer, as_crop=False)), None)
        return result

    # ------------------------------------------------------------------ internals

    def _read_as_crop(self, crop: np.ndarray) -> PlateResult | None:
        """Read an image that is (nearly) one plate; one narrower than :data:`_ENLARGE_BELOW`
        that reads nothing is read again enlarged twice (cubic).

        The reader's warp enlarges a small crop linearly, which blurs its strokes more than a
        cubic enlargement first does. Only crops that read nothing are read again: enlarging
        every small crop read a real 61x48 motorbike crop but lost held-out crops that read right
        linearly (600, seed 11: 0.885 -> 0.878). As a second attempt, real photos 50 -> 51 of 64
        (that crop, `99H141390`), generated crops 28-120 px wide (two seeds, 600 each) 356 -> 358
        and 353 -> 357 right, no read at >= 0.9 added; `ioc bench anpr`'s 300 crops 0.903 -> 0.907;
        2,250 small patches of real plate-free images (screenshots and figures full of text) and
        1,000 of generated clutter gave no read either way (docs/benchmarks.md).
        """
        result = self._read_outline(crop)
        height, width = crop.shape[:2]
        if result is not None or min(height, width) < 4 or max(width, height) >= _ENLARGE_BELOW:
            return result
        enlarged = cv2.resize(crop, (2 * width, 2 * height), interpolation=cv2.INTER_CUBIC)
        result = self._read_outline(enlarged)
        return None if result is None else result.scaled(0.5)

    def _read_outline(self, crop: np.ndarray) -> PlateResult | None:
        """Read an image that is (nearly) one plate: its outline is the rough quad for the refiner."""
        height, width = crop.shape[:2]
        if min(height, width) < 4:
            return None
        whole = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
        detection = Detection(whole, 1.0, layout_from_aspect(width, height))
        results = self._read_detections(crop, [detection], keep_all=True, passes=1, looks=1, outline=True,
                                        look_again=False)  # fmt: skip
        return results[0] if results else None

    def _read_levels(
        self, frame: np.ndarray, first: FirstLevel, mode: LookCloser
    ) -> tuple[list[Detection], list[_Read]]:
        """The detections of the pyramid's levels that were looked at, and the plates read from
        them: as :meth:`_read_each` reads every level's detections (``PlateDetector.detect``), the
        same reads in the same order, but the coarse levels are looked at only where that can
        change them.

        The first level's detections are read first. The coarse levels find plates over about
        170 px wide at the input (a third of a 1280x720 frame), and their false peaks cost a read
        each: they are skipped where a plate read sure, unless the camera looks closer always or a
        plate read is wide enough to be part of a larger one (a close-up's `14F6771` read sure
        from part of `14F67715`). Held-out frames of one or two plates: 28.1 -> 24.1 ms.
        """
        read, unread = self._read_once(frame, first.detections)
        sure = any(result.confidence >= _SURE for _, result in read)
        wide = any(result.bbox[2] * first.scale >= _COARSE_LEVELS_FROM for _, result in read)
        if mode != LookCloser.ALWAYS and sure and not wide:
            return first.detections, read  # no retry either: a plate read sure
        found = self._detector.with_coarse_levels(first)
        seen = {id(detection) for detection in first.detections}
        more, more_unread = self._read_once(frame, [d for d in found if id(d) not in seen])
        order = {id(detection): i for i, detection in enumerate(found)}  # a displaced one is not
        read = sorted((p for p in read + more if id(p[0]) in order), key=lambda p: order[id(p[0])])
        unread = sorted((d for d in unread + more_unread if id(d) in order), key=lambda d: order[id(d)])
        return found, read + self._read_unread(frame, read, unread)

    def _read_detections(
        self, frame: np.ndarray, detections: list[Detection], *, keep_all: bool = False, **options: Any
    ) -> list[PlateResult]:
        """The plates read from ``detections`` (:meth:`_read_each` with ``options``), the surest of
        overlapping reads of the same text only, unless ``keep_all``."""
        results = [result for _, result in self._read_each(frame, detections, **options)]
        return results if keep_all else _suppress_duplicates(results)

    def _read_each(self, frame: np.ndarray, detections: list[Detection], **options: Any) -> list[_Read]:
        """Each plate read from ``detections`` (:meth:`_read_once` with ``options``), with the
        detection it was read from; those that read nothing read again where nothing was sure
        (:meth:`_read_unread`)."""
        read, unread = self._read_once(frame, detections, **options)
        return read + self._read_unread(frame, read, unread)

    def _read_unread(self, frame: np.ndarray, read: list[_Read], unread: list[Detection]) -> list[_Read]:
        """Where nothing in ``read`` is sure, the clear detections whose refined corners read
        nothing (``unread``) read at their own corners (see :meth:`_read_once`)."""
        if not unread or any(result.confidence >= _SURE for _, result in read):
            return []
        return self._read_once(frame, unread, look_again=False, refine=False)[0]

    def _read_once(
        self,
        frame: np.ndarray,
        detections: list[Detection],
        *,
        passes: int = _FRAME_PASSES,
        looks: int = _FRAME_LOOKS,
        outline: bool = False,
        look_again: bool = True,
        refine: bool = True,
    ) -> tuple[list[_Read], list[Detection]]:
        """Refine, rectify, read and decode each detection: each plate read, with its detection,
        and the clear detections that read nothing.

        Each plate is read at the corners of the last ``looks`` refinement passes and
        the string probabilities are averaged, which evens out corner jitter; a plate
        settled at its final corners is read there only (:meth:`_look_at_earlier_corners`).
        ``outline`` says the detections are crop outlines, whose layout guess (from
        the crop's aspect, which a tilted plate distorts) is worth less than the
        aspect of the refined corners. ``look_again`` reads unsure plates again at
        nudged corners; not tight crops, whose goal is 3 ms each: that added 1 ms per crop.
        In a frame with no sure read, a clear detection whose refined corners read nothing is
        read again at the detector's own corners: the refiner, which never saw hard shadows, can
        take a shadow's edge for the plate's (held-out shadowed frames, seed 515: 142 -> 146 of
        200 plates read right; other sets and plate-free frames as before). Most frames have
        false detections that read nothing (grilles, signs): done in every frame, this cost 1.1 ms
        a frame of one or two plates; only where nothing was sure, 0.1-0.2 ms (plate-free frames,
        where nothing ever is, about 0.5 ms).
        """
        detections = [d for d in detections if d.score >= self._calibration.min_detection]
        if not detections:
            return [], []
        grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        steps = [[d.corners if outline else order_corners(d.corners) for d in detections]]
        refine = refine and self._refiner is not None
        if refine:
            steps = self._refiner.refine_steps(grey, steps[0], passes=passes)
            steps = [[order_corners(c) for c in step] for step in steps[-looks:]]
        corners = steps[-1]
        shapes = [self._shape(d, c, outline=outline) for d, c in zip(detections, corners, strict=True)]
        strips = [rectify(grey, c, s) for c, s in zip(corners, shapes, strict=True)]
        final = self._reader.read(np.stack(strips))
        looks = [[decode(p, two_row=s != Layout.ONE_LINE)] for p, s in zip(final, shapes, strict=True)]
        self._look_at_earlier_corners(grey, steps[:-1], shapes, final, looks)
        if look_again:
            readings = self._look_again_if_in_doubt(grey, corners, shapes, looks)
        else:
            readings = [_average(plate_looks) for plate_looks in looks]
        if look_again:
            self._look_again_deblurred(grey, corners, shapes, readings, final)
        results, unread = [], []
        for detection, quad, shape, reading, columns in zip(detections, corners, shapes, readings, final,
                                                            strict=True):  # fmt: skip
            clear = detection.score >= _CLEAR_DETECTION
            unsure = not reading.texts or reading.scores[0] < 0.3
            if unsure and clear and _ambiguous_shape(quad):  # try the other row arrangement
                other = Layout.TWO_LINE if shape == Layout.ONE_LINE else Layout.ONE_LINE
                other_columns = self._reader.read(rectify(grey, quad, other)[None])[0]
                retry = decode(other_columns, two_row=other != Layout.ONE_LINE)
                if retry.texts and (not reading.texts or retry.scores[0] > reading.scores[0]):
                    reading, shape, columns = retry, other, other_columns
            result = self._result(frame, detection, quad, shape, reading, columns, outline=outline)
            if result is not None:
                results.append((detection, result))
            elif clear and refine and not outline:
                unread.append(detection)
        return results, unread

    def _look_at_earlier_corners(
        self,
        grey: np.ndarray,
        earlier: list[list[np.ndarray]],
        shapes: list[Layout],
        final: np.ndarray,
        looks: list[list[Reading]],
    ) -> None:
        """Put each unsettled plate's reads at the ``earlier`` passes' corners before its read at
        the final ones (``looks[i]``, from the strip whose columns are ``final[i]``).

        A plate is settled, and read once, where its strip holds no characters (about half the
        detections in held-out frames are grilles, signs or lamps; no detection that gave a read
        had so empty a strip) or its read is beyond doubt (:data:`_SETTLED`). The reader is the
        dearest network per image (0.6 ms a strip on one core): `ioc bench anpr` read the same
        plates in every set as with every look read, 20.4 against 22.9 ms per frame.
        """
        unsettled = [i for i, (plate_looks, columns) in enumerate(zip(looks, final, strict=True))
                     if holds_characters(columns) and not self._settled(plate_looks[0])]  # fmt: skip
        if not earlier or not unsettled:
            return
        strips = [rectify(grey, step[i], shapes[i]) for step in earlier for i in unsettled]
        probs = self._reader.read(np.stack(strips))
        probs = probs.reshape(len(earlier), len(unsettled), -1, len(ALPHABET) + 1)
        for k, i in enumerate(unsettled):
            looks[i] = [decode(look[k], two_row=shapes[i] != Layout.ONE_LINE) for look in probs] + looks[i]

    def _settled(self, reading: Reading) -> bool:
        return bool(reading.texts) and self._calibration(reading.scores[0]) >= _SETTLED

    def _look_again_if_in_doubt(
        self, grey: np.ndarray, corners: list[np.ndarray], shapes: list[Layout], looks: list[list[Reading]]
    ) -> list[Reading]:
        """Each plate's looks averaged, a doubtful plate's after reading it again at nudged corners.

        Strips warped from corners moved by a pixel or two, averaged with the first looks,
        settle an unsure read (below :data:`_SURE`) of a plate narrower than its strip (one
        the warp enlarges, where a pixel of corner error is much of a character) a little
        more often right than wrong: held-out frames of five seeds +6 of about 1,600 plates,
        more reads at >= 0.9 and their precision unchanged, about 0.5 ms a frame. Nudging
        wider plates too lost as many close-ups as it gained elsewhere. Reads at 0.9 or more
        but not beyond doubt (:data:`_SETTLED`) are looked at again too: a real plate's read
        sure but wrong rarely stays sure at nudged corners (real photos scaled, compressed or
        darkened: 7 of 191 reads at >= 0.9 wrong before, 1 of 181 after; docs/benchmarks.md).
        One reader call takes the nudged strips of every such plate. A plate with no reading
        at all is left alone: nudging read none of those and cost about 5 ms a frame.
        """
        readings = [_average(plate_looks) for plate_looks in looks]
        doubtful = [i for i, r in enumerate(readings) if r.texts and not self._settled(r)
                    and _enlarged(corners[i], shapes[i])]  # fmt: skip
        if not doubtful:
            return readings
        strips = [rectify(grey, quad, shapes[i]) for i in doubtful for quad in _nudged(corners[i])]
        probs = self._reader.read(np.stack(strips))
        probs = probs.reshape(len(doubtful), len(_NUDGES), -1, len(ALPHABET) + 1)
        for i, plate_probs in zip(doubtful, probs, strict=True):
            again = [decode(p, two_row=shapes[i] != Layout.ONE_LINE) for p in plate_probs]
            readings[i] = _average(looks[i] + again)
        return readings

    def _look_again_deblurred(
        self,
        grey: np.ndarray,
        corners: list[np.ndarray],
        shapes: list[Layout],
        readings: list[Reading],
        columns: np.ndarray,
    ) -> None:
        """Read each small unsure plate again with a motion blur along its rows undone, in place.

        A vehicle moving while the shutter is open smears its plate along the rows, and the
        reader, trained on sharper strips, reads such a plate unsure or with a character wrong
        (the real street photos' `59-Y3` as `59-T3`). The plate's neighbourhood is deconvolved
        for each of :data:`_DEBLUR_LENGTHS` (the blur is not known), and the surest of those
        looks, where it is surer than the plate's reading, is averaged with it: taking that look
        alone read as many plates right but made wrong reads sure (real photos smeared 3 px: 2 of
        40 reads at >= 0.9 wrong, none averaged). Only plates narrower than their strip, which
        the warp enlarges: a wider one is shrunk, and its blur with it, and deconvolving it too
        lost more plates than it gained (held-out frames 0.919 -> 0.911, and 1.4 ms a frame more).
        Sure reads are left alone, and a plate that read nothing: most of those are not plates.
        """
        unsure = [i for i, r in enumerate(readings) if r.texts and self._calibration(r.scores[0]) < _SURE
                  and _enlarged(corners[i], shapes[i])]  # fmt: skip
        if not unsure:
            return
        strips = [_deblurred_strip(grey, corners[i], shapes[i], length)
                  for i in unsure for length in _DEBLUR_LENGTHS]  # fmt: skip
        probs = self._reader.read(np.stack(strips))
        probs = probs.reshape(len(unsure), len(_DEBLUR_LENGTHS), *probs.shape[1:])
        for i, plate_probs in zip(unsure, probs, strict=True):
            looks = [decode(p, two_row=shapes[i] != Layout.ONE_LINE) for p in plate_probs]
            best = max(range(len(looks)), key=lambda k: looks[k].scores[0] if looks[k].texts else 0.0)
            if looks[best].texts and looks[best].scores[0] > readings[i].scores[0]:
                readings[i] = _average([readings[i], looks[best]])
                if readings[i].texts[0] == looks[best].texts[0]:
                    columns[i] = plate_probs[best]

    @staticmethod
    def _shape(detection: Detection, corners: np.ndarray, *, outline: bool = False) -> Layout:
        """Row arrangement to read with: the detector's layout, unless the quad's shape clearly disagrees.

        A crop's outline carries no layout evidence of its own, so there the refined
        quad's aspect decides.
        """
        width, height = quad_size(corners)
        by_aspect = layout_from_aspect(width, height)
        if outline:
            return by_aspect
        if (detection.layout == Layout.ONE_LINE) != (by_aspect == Layout.ONE_LINE):
            aspect = width / max(height, 1e-6)
            if aspect > 3.8 or aspect < 2.6:
                return by_aspect
        return detection.layout

    def _result(
        self,
        frame: np.ndarray,
        detection: Detection,
        corners: np.ndarray,
        shape: Layout,
        reading: Reading,
        columns: np.ndarray,
        *,
        outline: bool = False,
    ) -> PlateResult | None:
        """The plate read from the strip whose column probabilities are ``columns``, its
        confidences lowered if it is only part of one (:mod:`detectors.partial_plates`)."""
        if not reading.texts:
            return None
        text = reading.texts[0]
        layout = _final_layout(text, shape, corners, columns)
        partial = partial_plates.is_partial(corners, frame.shape, columns, text, layout, outline=outline)
        factor = partial_plates.PARTIAL_PLATE_FACTOR if partial else 1.0
        confidences = [factor * self._calibration(s) for s in reading.scores]
        if confidences[0] < self._calibration.min_confidence:
            return None
        province = plate_format.province_of(text)
        crop = _evidence_crop(frame, corners, layout)
        height, width = frame.shape[:2]
        x0, y0 = np.clip(np.floor(corners.min(axis=0)), 0, [width, height]).astype(int)
        x1, y1 = np.clip(np.ceil(corners.max(axis=0)), 0, [width, height]).astype(int)
        return PlateResult(
            text=text,
            display=plate_format.display(text, layout),
            confidence=round(confidences[0], 4),
            layout=str(layout),
            colour=plate_colour(crop),
            province=province,
            out_of_province=plate_format.out_of_province(province, self.home_province),
            bbox=(int(x0), int(y0), int(x1 - x0), int(y1 - y0)),
            corners=[[round(float(x), 1), round(float(y), 1)] for x, y in corners],
            candidates=[(t, round(c, 4)) for t, c in zip(reading.texts, confidences, strict=True)],
            crop=crop,
            detection_score=detection.score,
        )


def _deblurred_strip(grey: np.ndarray, quad: np.ndarray, shape: Layout, length: int) -> np.ndarray:
    """The plate's strip after Richardson-Lucy deconvolution of a ``length``-px blur along the rows."""
    height, width = grey.shape[:2]
    x0, y0 = np.clip(np.floor(quad.min(axis=0)) - 2 * length, 0, [width, height]).astype(int)
    x1, y1 = np.clip(np.ceil(quad.max(axis=0)) + 2 * length, 0, [width, height]).astype(int)
    if x1 - x0 < 2 or y1 - y0 < 2:  # corners wandered out of the frame: nothing to deconvolve
        return rectify(grey, quad, shape)
    region = grey[y0:y1, x0:x1].astype(np.float32) + 1.0
    psf = np.full((1, length), 1.0 / length, np.float32)  # symmetric: its own mirror image
    estimate = region.copy()
    for _ in range(_DEBLUR_ITERATIONS):
        blurred = cv2.filter2D(estimate, -1, psf, borderType=cv2.BORDER_REPLICATE)
        estimate *= cv2.filter2D(region / np.maximum(blurred, 1e-3), -1, psf, borderType=cv2.BORDER_REPLICATE)
    sharp = np.clip(estimate - 1.0, 0, 255).astype(np.uint8)
    return rectify(sharp, quad - np.array([x0, y0], np.float32), shape)


def _strip_width(shape: Layout) -> int:
    """How wide the reader's strip shows a plate of ``shape`` (each row of a two-row plate: half)."""
    return READER_WIDTH if shape == Layout.ONE_LINE else READER_WIDTH // 2


def _enlarged(quad: np.ndarray, shape: Layout) -> bool:
    """Whether the plate at ``quad`` is narrower than its strip, so that the warp enlarges it."""
    return quad_size(quad)[0] < _strip_width(shape)


def _nudged(quad: np.ndarray) -> list[np.ndarray]:
    """``quad`` moved diagonally by each of :data:`_NUDGES` (shares of its width and height)."""
    size = np.array(quad_size(quad), np.float32)
    return [quad + nudge * size for nudge in _NUDGES]


def _average(readings: list[Reading]) -> Reading:
    """One reading from several looks at a plate: each string's probability averaged over the looks."""
    if len(readings) == 1:
        return readings[0]
    totals: dict[str, float] = {}
    for reading in readings:
        for text, score in zip(reading.texts, reading.scores, strict=True):
            totals[text] = totals.get(text, 0.0) + score / len(readings)
    top = max(len(r.texts) for r in readings)
    ranked = sorted(totals.items(), key=lambda item: item[1], reverse=True)[:top]
    return Reading(tuple(t for t, _ in ranked), tuple(s for _, s in ranked))


def _ambiguous_shape(corners: np.ndarray) -> bool:
    """Whether the quad's aspect leaves one row versus two rows in doubt."""
    width, height = quad_size(corners)
    return 2.3 <= width / max(height, 1e-6) <= 4.0


def _final_layout(text: str, shape: Layout, corners: np.ndarray, columns: np.ndarray) -> Layout:
    """The layout to report for a plate read with the rows of ``shape`` from the strip whose
    column probabilities are ``columns``.

    A two-row read is the two-row layout its text fits (:func:`plate_format.layouts`). Where it
    fits both (``30F78286``: ``30F`` over ``782.86`` on a car, ``30-F7`` over ``8286`` on a
    motorbike), how many characters were read in the top row decides (a two-row strip is the
    top row's columns, then the bottom row's), and where that fits neither, the plate's
    outline: a two-line car plate is about twice as wide as high, a motorbike plate about 1.36
    times. The outline alone was wrong for real two-line car plates, often about 1.3-1.4 (street
    photos).
    """
    if shape == Layout.ONE_LINE:
        return Layout.ONE_LINE
    fits = plate_format.layouts(text) & {Layout.TWO_LINE, Layout.MOTORBIKE}
    if len(fits) == 1:
        return next(iter(fits))
    on_top = int((character_columns(columns, text) < len(columns) / 2).sum())
    by_rows = [layout for layout in (Layout.TWO_LINE, Layout.MOTORBIKE)
               if plate_format.top_row_length(text, layout) == on_top]  # fmt: skip
    if len(by_rows) == 1:
        return by_rows[0]
    by_aspect = layout_from_aspect(*quad_size(corners))
    return Layout.MOTORBIKE if by_aspect == Layout.MOTORBIKE else Layout.TWO_LINE


def _overlaps(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


def _suppress_duplicates(results: list[PlateResult], *, any_text: bool = False) -> list[PlateResult]:
    """The surest of overlapping reads of the same text (of any text: ``any_text``)."""
    kept: list[PlateResult] = []
    for result in sorted(results, key=lambda r: r.confidence, reverse=True):
        if not any((any_text or k.text == result.text) and _overlaps(k.bbox, result.bbox) for k in kept):
            kept.append(result)
    return kept
