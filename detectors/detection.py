"""Finding plates in a frame: the ONNX CenterNet-style detector and its decoding.

The frame is scaled to fit 640x384 (letterboxed, the canvas cut to the frame's shape), the
network predicts a plate-centre heat map on a stride-4 grid plus each plate's four corners
and layout; peaks of the heat map become detections in frame coordinates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from detectors.geometry import REFINE_SIZE, refine_view, view_to_image
from detectors.onnx_session import cpu_session
from detectors.plate_format import Layout

__all__ = ["INPUT_SIZE", "SMALLEST_PLATE", "CornerRefiner", "Detection", "FirstLevel", "PlateDetector"]

# (width, height); both multiples of 32, the network's coarsest stride. The network is
# trained on 512x288 frames but is fully convolutional: at 640x384 a 1280x720 frame is
# halved exactly (area averaging) and plates 45-100 px wide stay findable. Measured on
# held-out frames (two seeds, 281 and 283 plates): 14 and 16 plates never detected at
# 512x288, 5 and 3 at 640x384, no plate-free frame flagged; the detector costs 4 ms
# instead of 2.3 ms on one core. At 704 and 768 px wide large plates were missed.
INPUT_SIZE = (640, 384)
# Pyramid levels (halvings of the letterboxed frame): the network finds plates up to about
# 170 px wide at its input, so a plate filling a third of a 1280x720 frame or more was
# missed at full size alone. Coarser levels only report confident peaks: their false peaks
# cost a refinement and a read each.
PYRAMID = (1, 2, 4)
_COARSE_THRESHOLD = 0.5
# The fine pass's bands overlap by this many canvas pixels: a plate's centre lies 32 px or more
# inside one of them
_BAND_OVERLAP = 64
# About the narrowest synthetic plate (px at the input) that detect finds; real ones at that
# width are found less often
SMALLEST_PLATE = 22
# Twice the input: small plates in a frame the input shrinks (see detect_small)
FINE_SIZE = (INPUT_SIZE[0] * 2, INPUT_SIZE[1] * 2)
# The fine pass looks at frames whose sides the input shrinks below this share (wider than
# 853 px or taller than 512): real plates in 1280x720 street photos, 40-100 px wide, mostly
# scored under the detection threshold at half size and were found at full size
# (docs/benchmarks.md, "Real photographs")
_FINE_BELOW = 0.75
# A frame whose levels span a narrow range in a colour channel (the brightest and darkest 0.1 %
# apart by less than _NARROW_LEVELS: under-exposed, hazy, or a white balance gone astray) has
# that channel stretched for the network, its levels times up to _MAX_GAIN so that they span
# _STRETCHED_LEVELS. Real street photos with their levels times 0.45 had 14 of 50 plates never
# detected and none misread; at half contrast, 8 never detected and one misread; with red times
# 0.6 and green 0.9, 9 never detected (`ioc bench photos --variants`). The reader is given the
# frame as it is. A night frame keeps its lit plate and lamps among its highlights and is seldom
# stretched.
_LEVEL_SHARE = 0.1  # percent of the sampled levels at each end left out
_NARROW_LEVELS = 160
_STRETCHED_LEVELS = 250
_MAX_GAIN = 3.0
_STRIDE = 4
# Canvas sides are multiples of the network's coarsest stride (32) at every pyramid level
_CANVAS_STEP = 32 * PYRAMID[-1]
_CORNER_UNIT = 16.0
_LAYOUTS = (Layout.ONE_LINE, Layout.TWO_LINE, Layout.MOTORBIKE)


@dataclass(frozen=True)
class Detection:
    """A plate found in a frame: ``corners (4, 2) float32`` clockwise from top-left, in frame pixels."""

    corners: np.ndarray
    score: float
    layout: Layout


def _oriented(frame: np.ndarray, canvas_size: tuple[int, int]) -> tuple[int, int]:
    """``canvas_size`` standing as ``frame`` does: its long side across for a frame at least as
    wide as tall, upright for a frame taller than wide (the same size however often it is asked).

    The network is fully convolutional, so a canvas may stand either way. A phone photo held
    upright (1080x1920) is then seen at a third of its size instead of a fifth, and looked at
    closer at two thirds instead of 0.4. Held-out portrait photos (150 a seed, `ioc bench anpr
    --portrait`), seeds 2026 and 99: 0.827 -> 0.853 and 0.820 -> 0.847 read right, 39.3 -> 44.9
    and 41.3 -> 39.6 ms a photo (more plates read sure at the first look, fewer closer looks);
    plate-free ones about 48 -> 63 ms (docs/benchmarks.md, "Phone photos held upright").
    """
    height, width = frame.shape[:2]
    short, long = sorted(canvas_size)
    return (short, long) if height > width else (long, short)


def _fit_scale(frame: np.ndarray, canvas_size: tuple[int, int]) -> float:
    """The scale at which ``frame`` just fits ``canvas_size`` (:func:`_oriented` like the frame)."""
    height, width = frame.shape[:2]
    fit_width, fit_height = _oriented(frame, canvas_size)
    return min(fit_width / width, fit_height / height)


def letterbox(frame: np.ndarray, canvas_size: tuple[int, int] = INPUT_SIZE) -> tuple[np.ndarray, float]:
    """``frame`` scaled to fit ``canvas_size`` (turned upright for a frame taller than wide) on a
    grey canvas, and the scale used.

    The canvas is no larger than the scaled frame rounded up to :data:`_CANVAS_STEP`: a
    1080x1920 portrait photo is 384x640 at the detector's input (turned), and a 1920x1080 frame
    640x384; a square 2000x2000 collage 384x384, not 640x384 of which two fifths grey (the
    network is fully convolutional; the grey cost time and memory).
    """
    height, width = frame.shape[:2]
    canvas_size = _oriented(frame, canvas_size)
    scale = _fit_scale(frame, canvas_size)
    size = (max(int(round(width * scale)), 1), max(int(round(height * scale)), 1))
    canvas_size = (min(canvas_size[0], -(-size[0] // _CANVAS_STEP) * _CANVAS_STEP),
                   min(canvas_size[1], -(-size[1] // _CANVAS_STEP) * _CANVAS_STEP))  # fmt: skip
    factor = min(int(1 / scale), width, height)  # a sliver of an image keeps a pixel across
    if factor >= 2:  # integer-factor area averaging is fast; finish with a gentle linear step
        frame = cv2.resize(frame, (0, 0), fx=1 / factor, fy=1 / factor, interpolation=cv2.INTER_AREA)
    if frame.shape[1::-1] != size:
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)
    if size == canvas_size:
        return frame, scale
    canvas = np.full((canvas_size[1], canvas_size[0], 3), 114, np.uint8)
    canvas[: size[1], : size[0]] = frame
    return canvas, scale


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ax0, ay0 = a.min(axis=0)
    ax1, ay1 = a.max(axis=0)
    bx0, by0 = b.min(axis=0)
    bx1, by1 = b.max(axis=0)
    iw = max(0.0, min(ax1, bx1) - max(ax0, bx0))
    ih = max(0.0, min(ay1, by1) - max(ay0, by0))
    inter = iw * ih
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    return float(inter / union) if union > 0 else 0.0


@dataclass(frozen=True)
class FirstLevel:
    """:meth:`PlateDetector.first_level`'s plates (``detections``) and what the coarse levels need."""

    canvas: np.ndarray  # the letterboxed frame, levels stretched
    scale: float  # of the canvas to the frame
    candidates: list[Detection]  # every peak of the level, before the distinct best are chosen
    detections: list[Detection]
    threshold: float
    limit: int


class PlateDetector:
    """The ONNX plate detector. ``detect`` is thread-safe (onnxruntime sessions are)."""

    def __init__(self, path: Path, *, threads: int = 1) -> None:
        self._session = cpu_session(path, threads=threads)

    def _maps(self, canvas: np.ndarray) -> np.ndarray:
        """The network's ``(12, H / 4, W / 4)`` output for an ``(H, W, 3)`` canvas."""
        blob = canvas.transpose(2, 0, 1)[None].astype(np.float32) * np.float32(1 / 255)
        return self._session.run(None, {"image": blob})[0][0]

    def detect(self, frame: np.ndarray, *, threshold: float = 0.3, limit: int = 8) -> list[Detection]:
        """Plates in an ``(H, W, 3) uint8 BGR`` frame, highest score first.

        The letterboxed frame and its halvings (:data:`PYRAMID`) each go through the
        network; a plate too large for the network's view in one is found in a smaller one.
        """
        return self.with_coarse_levels(self.first_level(frame, threshold=threshold, limit=limit))

    def first_level(self, frame: np.ndarray, *, threshold: float = 0.3, limit: int = 8) -> FirstLevel:
        """The plates :meth:`detect` finds at the pyramid's first level alone (the letterboxed frame);
        :meth:`with_coarse_levels` adds the others'. A caller that reads a plate sure there may
        stop: the coarse levels find only plates over about 170 px wide at the input, and cost
        the first level's frame a quarter more (and the reads of their false peaks)."""
        canvas, scale = letterbox(frame)
        canvas = _stretched(canvas)
        candidates = _peaks(self._maps(canvas), threshold, scale, limit)
        return FirstLevel(canvas, scale, candidates, _distinct_best(candidates, limit), threshold, limit)

    def with_coarse_levels(self, first: FirstLevel) -> list[Detection]:
        """What :meth:`detect` gives: ``first``'s candidates and the coarse levels', the best
        distinct ones; those kept from ``first.detections`` are the same objects."""
        candidates = list(first.candidates)
        threshold = max(first.threshold, _COARSE_THRESHOLD)  # their false peaks cost a read each
        for factor in PYRAMID[1:]:
            size = (first.canvas.shape[1] // factor, first.canvas.shape[0] // factor)
            level = cv2.resize(first.canvas, size, interpolation=cv2.INTER_AREA)
            candidates += _peaks(self._maps(level), threshold, first.scale / factor, first.limit)
        return _distinct_best(candidates, first.limit)

    @staticmethod
    def input_scale(frame: np.ndarray) -> float:
        """The scale at which :meth:`detect` sees ``frame`` (0.5 for 1280x720)."""
        return _fit_scale(frame, INPUT_SIZE)

    def detect_small(
        self, frame: np.ndarray, *, threshold: float = 0.3, limit: int = 8, known: Sequence[np.ndarray] = ()
    ) -> list[Detection]:
        """Plates of a frame the network's input shrinks (a 720p, 1080p or 4K camera, a phone
        photo) too small for :meth:`detect`, other than those at the ``known`` corners (plates
        already read); none in a frame the input shrinks by less than :data:`_FINE_BELOW`.

        :meth:`detect` finds synthetic plates down to about :data:`SMALLEST_PLATE` * (frame width /
        640) wide: 44 px in a 1280x720 frame, 66 px in a 1920x1080 one, 132 px in a 3840x2160 one; real
        ones at its input are found less often. Here the frame goes through the network at
        :data:`FINE_SIZE`, which costs about 4.5 times as much as at its input (26.6 against
        5.8 ms for a 1280x720 frame on one core).
        """
        if _fit_scale(frame, INPUT_SIZE) >= _FINE_BELOW:
            return []
        canvas, scale = letterbox(frame, FINE_SIZE)
        canvas = _stretched(canvas)
        candidates = []
        for top, bottom in _bands(canvas.shape[0]):
            peaks = _peaks(self._maps(canvas[top:bottom]), threshold, scale, limit, top=top)
            candidates += [c for c in peaks if all(_distinct(c.corners, quad) for quad in known)]
        return _distinct_best(candidates, limit)


def _stretched(canvas: np.ndarray) -> np.ndarray:
    """``canvas`` with each colour channel's levels stretched where they span a narrow range
    (:data:`_NARROW_LEVELS`), else itself."""
    step = max(canvas.shape[1] // 80, 1)  # about 4,000 pixels are enough, and cost 0.1 ms
    sample = canvas[::step, ::step].reshape(-1, 3)
    low, high = np.percentile(sample, [_LEVEL_SHARE, 100 - _LEVEL_SHARE], axis=0)
    narrow = high - low < _NARROW_LEVELS
    if not narrow.any():
        return canvas
    gain = np.where(narrow, np.minimum(_STRETCHED_LEVELS / np.maximum(high - low, 1.0), _MAX_GAIN), 1.0)
    levels = np.arange(256, dtype=np.float32)[:, None]
    table = np.clip((levels - np.where(narrow, low, 0.0)) * gain, 0, 255).astype(np.uint8)
    return cv2.LUT(canvas, table.reshape(256, 1, 3))


def _bands(height: int) -> list[tuple[int, int]]:
    """The rows ``(top, bottom)`` of a canvas ``height`` high that the fine pass runs the network
    on one at a time: bands as high as the input plus :data:`_BAND_OVERLAP`, evenly spread. The
    network keeps the memory of the largest input it has run: `ioc anpr` on four plate-free
    1280x720 frames and two street photos peaked at 258 MB with the whole 1280x768 canvas at
    once, at 220 MB in bands (the same reads; 178 MB without the fine pass)."""
    band = INPUT_SIZE[1] + _BAND_OVERLAP
    if height <= band:
        return [(0, height)]
    count = -(-(height - _BAND_OVERLAP) // INPUT_SIZE[1])
    step = (height - band) / (count - 1)
    tops = [int(round(i * step / 32)) * 32 for i in range(count)]  # the network's coarsest stride
    return [(top, min(top + band, height)) for top in tops]


def _distinct_best(candidates: list[Detection], limit: int) -> list[Detection]:
    """The best-scoring ``limit`` candidates that are distinct plates (:func:`_distinct`)."""
    detections: list[Detection] = []
    for candidate in sorted(candidates, key=lambda d: d.score, reverse=True):
        if all(_distinct(candidate.corners, kept.corners) for kept in detections):
            detections.append(candidate)
            if len(detections) >= limit:
                break
    return detections


def _peaks(maps: np.ndarray, threshold: float, scale: float, limit: int, *, top: int = 0) -> list[Detection]:
    """The ``limit * 2`` strongest heat-map peaks of one pyramid level (or of its band from canvas
    row ``top``), in frame coordinates."""
    heat = maps[0]
    peaks = (heat >= cv2.dilate(heat, np.ones((3, 3), np.uint8))) & (heat > threshold)
    ys, xs = np.nonzero(peaks)
    order = np.argsort(-heat[ys, xs])[: limit * 2]
    found = []
    for y, x in zip(ys[order], xs[order], strict=True):
        centre = np.array([(x + 0.5) * _STRIDE, (y + 0.5) * _STRIDE + top], np.float32)
        corners = (centre + maps[1:9, y, x].reshape(4, 2) * _CORNER_UNIT) / scale
        layout = _LAYOUTS[int(np.argmax(maps[9:12, y, x]))]
        found.append(Detection(corners.astype(np.float32), float(heat[y, x]), layout))
    return found


def _distinct(candidate: np.ndarray, kept: np.ndarray) -> bool:
    """Whether the plate at corners ``candidate`` is another than the one at ``kept``: little
    overlap, and neither centre inside the other (plates do not nest; a part of a large plate
    is not a plate)."""
    if _iou(candidate, kept) >= 0.3:
        return False
    return not (_contains(kept, candidate.mean(axis=0)) or _contains(candidate, kept.mean(axis=0)))


def _contains(quad: np.ndarray, point: np.ndarray) -> bool:
    return cv2.pointPolygonTest(quad.reshape(-1, 1, 2), (float(point[0]), float(point[1])), False) >= 0


class CornerRefiner:
    """The ONNX corner refiner: moves rough corners onto the plate's edges. Thread-safe."""

    def __init__(self, path: Path, *, threads: int = 1) -> None:
        self._session = cpu_session(path, threads=threads)

    def refine(self, grey: np.ndarray, quads: list[np.ndarray], *, passes: int = 2) -> list[np.ndarray]:
        """Refined ``(4, 2) float32`` corners for each rough quad in ``grey`` ``(H, W) uint8``."""
        return self.refine_steps(grey, quads, passes=passes)[-1] if quads else []

    def refine_steps(
        self, grey: np.ndarray, quads: list[np.ndarray], *, passes: int = 2
    ) -> list[list[np.ndarray]]:
        """The corners after each of ``passes`` refinement passes (the last is the best single guess).

        Successive passes differ by a fraction of a pixel to a few pixels; reading
        the plate at more than one of them averages out the refiner's jitter.
        """
        current = [np.asarray(q, np.float32) for q in quads]
        if not current:
            return [current]
        size = np.array(REFINE_SIZE, np.float32)
        steps = []
        for _ in range(passes):
            views, inverses = zip(*(refine_view(grey, q) for q in current), strict=True)
            batch = np.stack(views).astype(np.float32)[:, None] * np.float32(1 / 255)
            predicted = self._session.run(None, {"view": batch})[0].reshape(-1, 4, 2) * size
            current = [view_to_image(p, inv) for p, inv in zip(predicted, inverses, strict=True)]
            steps.append(current)
        return steps or [current]
