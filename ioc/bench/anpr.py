"""``ioc bench anpr``: speed and accuracy of the plate recogniser on one CPU core.

The test data is generated with ``style="test"``: fonts, backgrounds and
degradations that training never used. Measured:

- ms per 1280x720 frame with one or two plates (detection and reading) and frames/s;
- ms per tight plate crop (``read_crop``);
- exact full-plate accuracy on frames and on crops, by layout and colour;
- of the frame plates read right, the share reported with their true layout, and in daylight
  frames with their true colour;
- how often reads with confidence >= 0.9 are right (calibration);
- plate-free frames on which anything was reported (false positives);
- exact accuracy on close-ups (one plate drawn 1.5-3 times as wide as in the frames above),
  on angled views (one plate turned up to 40 degrees instead of 20), on tilted views (one
  plate turned up to 40 degrees in the image plane instead of 12: a phone held askew) and on
  large frames (2560x1440, one plate as many pixels wide as in a 1280x720 frame), with ms per
  large frame, on portrait photos (1080x1920: a phone held upright), with plate-free
  portrait photos, on pitched views (a camera looking down on the plate by up to 46
  degrees instead of 11: a pole, a gantry or an officer's phone), on plates with a hard
  sun shadow across them, on bent plates, on plates drawn without the vehicle shape
  around them (real vehicles look like none of the drawn ones), and on far plates (drawn
  0.5-0.8 times as wide as in the frames above: street frames, where most plates real photos
  lost were small);
- exact accuracy and ms per frame on street frames (a near vehicle and a far one, seen from
  behind among a street's clutter: what ``--look-closer`` decides about), the far plates apart;
- exact accuracy of vehicles seen in 5 frames as they approach, frame by frame and by the
  passage vote (the stream's passages);
- peak resident memory of the recogniser's process (:mod:`ioc.bench._recognizer_process`: not the
  one drawing the images) before the large frames, and after them;
- how fast the core was: a fixed pure-Python loop timed before and after (a shared VM's hour moves
  every ms figure with it; compare figures measured at about the same loop time).

The processes are pinned to one core, with OpenCV and onnxruntime single-threaded.
The last line of stdout is a JSON object with ``frame_ms``, ``crop_ms`` and
``accuracy`` among other figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import statistics
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from ioc.commands.anpr import add_look_closer_argument

__all__ = ["pin_one_core", "register", "run"]

_ANGLED_MAX_YAW = 0.7  # radians (40 degrees); checkpoint frames above turn plates up to 20
_TILTED_MAX_ROLL = 40.0  # degrees in the image plane; checkpoint frames above turn plates up to 12
_PITCHED_MAX_PITCH = 0.8  # radians (46 degrees) a camera looks down; checkpoint frames above up to 11
_PORTRAIT = (1080, 1920)  # (width, height) of a phone photo taken upright
_FAR_SCALE = (0.5, 0.8)  # plate widths in far frames, against the checkpoint frames above
_NEAR_SCALE = (1.0, 1.6)  # the near vehicle's plate in a street frame; the far one's is _FAR_SCALE
_PASSAGE_SCALES = (0.8, 0.9, 1.0, 1.1, 1.2)  # a vehicle's plate in its 5 frames, as it approaches
_SURE = 0.9  # reads at this confidence or more must be right >= 99 % of the time (the calibration's promise)
_REFERENCE_ADDITIONS = 10_000_000  # the reference loop's length


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("anpr", help="licence-plate recogniser: speed, accuracy, false positives")
    parser.add_argument("--frames", type=int, default=200, help="held-out frames with 1-2 plates")
    parser.add_argument("--crops", type=int, default=300, help="held-out tight plate crops")
    parser.add_argument("--negatives", type=int, default=100, help="plate-free frames")
    parser.add_argument("--overlaid", type=int, default=100,
                        help="frames with one plate and the camera's on-screen text, and as many "
                             "plate-free frames with that text")  # fmt: skip
    parser.add_argument("--interlaced", type=int, default=100,
                        help="one-plate frames from an interlaced camera (fields 2-12 px apart)")  # fmt: skip
    parser.add_argument("--harsh", type=int, default=100,
                        help="one-plate frames in rain, haze, over-sharpened or from a low-bitrate "
                             "stream")  # fmt: skip
    parser.add_argument("--close-ups", type=int, default=100,
                        help="frames with one plate drawn 1.5-3x as wide (street photos)")  # fmt: skip
    parser.add_argument("--angled", type=int, default=100, help="frames with one plate turned up to 40°")
    parser.add_argument("--tilted", type=int, default=100,
                        help="frames with one plate turned up to 40° in the image plane")  # fmt: skip
    parser.add_argument("--large", type=int, default=100,
                        help="2560x1440 frames, one plate as many pixels wide as at 1280x720")  # fmt: skip
    parser.add_argument("--portrait", type=int, default=100,
                        help="1080x1920 photos (a phone held upright) of one plate, and as many "
                             "plate-free ones")  # fmt: skip
    parser.add_argument("--pitched", type=int, default=100,
                        help="frames with one plate seen from up to 46° above")  # fmt: skip
    parser.add_argument("--shadowed", type=int, default=100,
                        help="daylight frames with one plate under a hard shadow's edge")  # fmt: skip
    parser.add_argument("--bent", type=int, default=100, help="frames with one bent plate")
    parser.add_argument("--cut", type=int, default=100,
                        help="frames with one plate cut by the frame's edge (a vehicle entering the "
                             "view)")  # fmt: skip
    parser.add_argument("--end-hidden", type=int, default=100,
                        help="frames with one end of the plate (10-40 %%) hidden by something in "
                             "front")  # fmt: skip
    parser.add_argument("--bare", type=int, default=100,
                        help="frames with one plate drawn without the vehicle shape around it")  # fmt: skip
    parser.add_argument("--far", type=int, default=100,
                        help="frames with one plate drawn 0.5-0.8x as wide (further away)")  # fmt: skip
    parser.add_argument("--street", type=int, default=100,
                        help="street frames: a near and a far vehicle from behind in clutter")  # fmt: skip
    parser.add_argument("--passages", type=int, default=60,
                        help="vehicles seen in 5 frames each, read alone and by the vote")  # fmt: skip
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--no-pin", action="store_true", help="do not pin the process to one core")
    parser.add_argument("--models", type=Path, default=None,
                        help="folder with candidate models (default: the packaged ones)")  # fmt: skip
    add_look_closer_argument(parser, default="unsure")
    parser.set_defaults(func=run)


def pin_one_core() -> str:
    """Pin this process to one core (the lowest it may run on); says which, for the report."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned"
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return f"pinned to core {core}"


def _reference_loop_s() -> float:
    """Seconds a pure-Python loop of :data:`_REFERENCE_ADDITIONS` additions takes on this core: the
    core's speed in this hour, beside figures that scale with it."""
    started = time.perf_counter()
    total = 0
    for i in range(_REFERENCE_ADDITIONS):
        total += i
    return round(time.perf_counter() - started, 3)


def _matches(result: Any, truth: Any) -> bool:
    x, y, w, h = result.bbox
    cx, cy = truth.corners.mean(axis=0)
    return x <= cx <= x + w and y <= cy <= y + h


def _scored(results: list[Any], truth: Any, confident: Counter) -> tuple[Any | None, bool]:
    """The read over ``truth``'s plate (the surest, if several) and whether it is right; a read
    at >= 0.9 is counted in ``confident`` (``reads``, ``right``)."""
    found = next((r for r in results if _matches(r, truth)), None)
    right = found is not None and found.text == truth.text
    if found is not None and found.confidence >= _SURE:
        confident["reads"] += 1
        confident["right"] += right
    return found, right


def _frames(args: argparse.Namespace, recognizer: Any, rng: np.random.Generator) -> dict[str, Any]:
    from detectors.plate_rendering import random_plate_spec
    from detectors.synthetic import render_scene

    times, per_group, confident = [], defaultdict(Counter), Counter()
    hits = total = false_reads = layouts_right = 0
    colours = Counter()  # of plates read right in daylight: night frames are infrared, colourless
    for _ in range(args.frames):
        specs = [random_plate_spec(rng) for _ in range(1 if rng.random() < 0.6 else 2)]
        night = rng.random() < 0.2
        image, truths = render_scene(specs, rng=rng, night=night, style="test")
        results, ms = recognizer.timed_recognize(image)
        times.append(ms)
        claimed = set()
        for truth in truths:
            found, right = _scored(results, truth, confident)
            if found is not None:
                claimed.add(id(found))
            total += 1
            hits += right
            layouts_right += right and found.layout == truth.layout
            if right and not night:
                colours["read"] += 1
                colours["right"] += found.colour == truth.colour
            elif right:
                colours["night_read"] += 1
                colours["night_unknown"] += found.colour == "unknown"
            for key in (f"layout:{truth.layout}", f"colour:{truth.colour}"):
                per_group[key]["total"] += 1
                per_group[key]["right"] += right
        false_reads += sum(id(r) not in claimed for r in results)
    return {"times": times, "hits": hits, "total": total, "groups": per_group, "confident": confident,
            "false_reads": false_reads, "layouts_right": layouts_right,
            "colours": colours}  # fmt: skip


def _crops(args: argparse.Namespace, recognizer: Any, rng: np.random.Generator) -> dict[str, Any]:
    """Crops rendered first, then read back to back: rendering between reads evicted the
    models from the CPU caches and charged that to reading (3.8 ms/crop that way against
    about 2 ms read back to back, both measured on the development machine)."""
    from detectors.plate_rendering import random_plate_spec
    from detectors.synthetic import render_plate_patch

    crops = []
    for _ in range(args.crops):
        spec = random_plate_spec(rng)
        patch, quad = render_plate_patch(spec, rng=rng, style="test", night=rng.random() < 0.2, margin=0.6)
        pad = (quad.max(axis=0) - quad.min(axis=0)) * rng.uniform(0.0, 0.08, 2)
        x0, y0 = np.maximum(np.floor(quad.min(axis=0) - pad), 0).astype(int)
        x1, y1 = np.ceil(quad.max(axis=0) + pad).astype(int)
        crops.append((spec, np.ascontiguousarray(patch[y0:y1, x0:x1])))
    times, hits, confident = [], 0, Counter()
    for spec, crop in crops:
        result, ms = recognizer.timed_read_crop(crop)
        times.append(ms)
        right = result is not None and result.text == spec.text
        hits += right
        if result is not None and result.confidence >= _SURE:
            confident["reads"] += 1
            confident["right"] += right
    return {"times": times, "hits": hits, "confident": confident}


def _negatives(count: int, recognizer: Any, rng: np.random.Generator, **scene: Any) -> int:
    """Plate-free frames (``scene``: further ``render_scene`` options) with anything reported."""
    from detectors.synthetic import render_scene

    flagged = 0
    for _ in range(count):
        image, _ = render_scene([], rng=rng, night=rng.random() < 0.2, style="test", **scene)
        flagged += bool(recognizer.recognize(image))
    return flagged


def _one_plate_frames(
    count: int, recognizer: Any, rng: np.random.Generator, *, scale: tuple[float, float] = (1.0, 1.0),
    mosaic: int = 1, night_share: float = 0.2, **scene: Any,
) -> dict[str, Any]:  # fmt: skip
    """Accuracy and ms per frame on ``count`` frames of one plate each, the plate drawn ``scale``
    times as wide as in the frames above (a range), ``night_share`` of them infrared night
    frames; ``scene`` holds further ``render_scene`` options. A frame is ``mosaic`` x ``mosaic``
    scenes of 1280x720, one with the plate: a larger frame with plates of the same pixel size
    (rendering one whole took far more memory)."""
    from detectors.plate_rendering import random_plate_spec
    from detectors.synthetic import render_scene

    hits, confident, times = 0, Counter(), []
    for _ in range(count):
        spec, night = random_plate_spec(rng), rng.random() < night_share
        tiles = mosaic * mosaic
        holder = int(rng.integers(tiles)) if tiles > 1 else 0  # (the sets drawn before stay the same)
        scenes = [render_scene([spec] if i == holder else [], rng=rng, night=night, style="test",
                               plate_scale=float(rng.uniform(*scale)), **scene) for i in range(tiles)]
        rows = [np.hstack([image for image, _ in scenes[r * mosaic : (r + 1) * mosaic]])
                for r in range(mosaic)]
        image = np.ascontiguousarray(np.vstack(rows))
        (truth,) = scenes[holder][1]
        height, width = scenes[holder][0].shape[:2]
        offset = np.array([holder % mosaic * width, holder // mosaic * height], np.float32)
        truth = dataclasses.replace(truth, corners=truth.corners + offset)
        results, ms = recognizer.timed_recognize(image)
        times.append(ms)
        hits += _scored(results, truth, confident)[1]
    return {"accuracy": hits / count if count else None, "confident": confident,
            "ms": statistics.mean(times) if times else None}  # fmt: skip


def _street_frames(count: int, recognizer: Any, rng: np.random.Generator) -> dict[str, Any]:
    """Accuracy (all plates, and the far ones) and ms per frame on ``count`` 1280x720 street
    frames: two 640x720 halves among a street's clutter (``render_scene(street=1.0)``), one with a
    near vehicle's plate (:data:`_NEAR_SCALE`), one with a far one's (:data:`_FAR_SCALE`)."""
    from detectors.plate_rendering import random_plate_spec
    from detectors.synthetic import render_scene

    hits, far_hits, confident, times = 0, 0, Counter(), []
    for _ in range(count):
        night, far_side = rng.random() < 0.2, int(rng.integers(2))
        halves, truths = [], []
        for side in range(2):
            scale = _FAR_SCALE if side == far_side else _NEAR_SCALE
            # plates are drawn as wide as in a frame twice as wide: a half is 640 px
            plate_scale = 2 * float(rng.uniform(*scale))
            image, (truth,) = render_scene([random_plate_spec(rng)], size=(640, 720), rng=rng, night=night,
                                           style="test", street=1.0, plate_scale=plate_scale)  # fmt: skip
            halves.append(image)
            truths.append(dataclasses.replace(truth, corners=truth.corners + np.float32([640 * side, 0])))
        frame = np.ascontiguousarray(np.hstack(halves))
        results, ms = recognizer.timed_recognize(frame)
        times.append(ms)
        for side, truth in enumerate(truths):
            right = _scored(results, truth, confident)[1]
            hits += right
            far_hits += right and side == far_side
    if not count:
        return {"accuracy": None, "far_accuracy": None, "confident": confident, "ms": None}
    return {"accuracy": hits / (2 * count), "far_accuracy": far_hits / count, "confident": confident,
            "ms": statistics.mean(times)}


def _partial_plate_frames(
    count: int, recognizer: Any, rng: np.random.Generator, *, hide_end: bool = False
) -> Counter:
    """Reads, and reads at >= 0.9 and how many of those are wrong, on ``count`` one-plate frames
    cut through the plate at one side (10-60 % of its width or height out of view): what a
    camera sees as a vehicle enters. With ``hide_end``, the frame stays whole and something in
    front hides one end of the plate instead. Either part often reads as a shorter valid plate."""
    from detectors.plate_rendering import random_plate_spec
    from detectors.synthetic import hide_plate_end, render_scene

    outcome: Counter = Counter()
    for _ in range(count):
        spec = random_plate_spec(rng)
        image, (truth,) = render_scene([spec], rng=rng, night=rng.random() < 0.2, style="test")
        (left, top), (right, bottom) = truth.corners.min(axis=0), truth.corners.max(axis=0)
        side, share = int(rng.integers(4)), float(rng.uniform(0.1, 0.6))
        if hide_end:
            hide_plate_end(image, truth.corners, rng)
        elif side == 0:
            image = image[:, int(left + share * (right - left)):]
        elif side == 1:
            image = image[:, : int(right - share * (right - left))]
        elif side == 2:
            image = image[int(top + share * (bottom - top)):]
        else:
            image = image[: int(bottom - share * (bottom - top))]
        for result in recognizer.recognize(np.ascontiguousarray(image)):
            outcome["reads"] += 1
            if result.confidence >= _SURE:
                outcome["sure"] += 1
                outcome["sure_wrong"] += result.text != truth.text
    return outcome


def _passages(count: int, recognizer: Any, rng: np.random.Generator) -> dict[str, Any]:
    """Exact accuracy of single frames and of the passage vote (:func:`detectors.passages.vote`)
    over ``count`` vehicles seen in :data:`_PASSAGE_SCALES` frames each, as they approach.

    Each vehicle's frames share one scene, plate, font, damage and blur (drawn from one seed,
    only the plate's size changing): consecutive frames of one camera differ far less than
    independent views, so the vote is not credited with independence it would not have.
    Each frame gets its own sensor noise and JPEG compression.
    """
    from detectors.jpeg import decode_jpeg, encode_jpeg
    from detectors.passages import Observation, vote
    from detectors.plate_rendering import random_plate_spec
    from detectors.synthetic import render_scene

    frames_right = passages_right = 0
    for _ in range(count):
        spec, seed, night = random_plate_spec(rng), int(rng.integers(2**31)), rng.random() < 0.2
        observations, truth_text = [], spec.text
        for index, scale in enumerate(_PASSAGE_SCALES):
            image, (truth,) = render_scene([spec], rng=np.random.default_rng(seed), night=night, style="test",
                                           plate_scale=scale)  # fmt: skip
            noisy = np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)
            image = decode_jpeg(encode_jpeg(noisy, quality=int(rng.integers(60, 90))))
            found = [r for r in recognizer.recognize(image) if _matches(r, truth)]
            if found:
                read = found[0]
                frames_right += read.text == truth_text
                observations.append(Observation(str(index), float(index) / 5, read.text, read.confidence,
                                                tuple(read.candidates)))  # fmt: skip
        passages_right += bool(observations) and vote(observations).text == truth_text
    frames = count * len(_PASSAGE_SCALES)
    return {"frame_accuracy": frames_right / frames if frames else None,
            "accuracy": passages_right / count if count else None}  # fmt: skip


def _rounded(value: float | None, digits: int = 4) -> float | None:
    """``value`` rounded, or None for a figure not measured (a set asked for none of)."""
    return None if value is None else round(value, digits)


def _confident(outcome: dict[str, Any]) -> str:
    """Of one set's reads at confidence >= 0.9, how many were right (calibration holds per set?)."""
    reads = outcome["confident"]["reads"]
    return f"; at >= 0.9: {outcome['confident']['right']} of {reads} right" if reads else ""


def run(args: argparse.Namespace) -> int:
    from ioc.bench._recognizer_process import RecognizerProcess

    pinned = "not pinned" if args.no_pin else pin_one_core()  # before the child starts: it inherits the core
    rng = np.random.default_rng(args.seed)
    with RecognizerProcess(models_dir=args.models, look_closer=args.look_closer) as recognizer:
        loop_before = _reference_loop_s()
        frames = _frames(args, recognizer, rng)
        crops = _crops(args, recognizer, rng)
        negatives = _negatives(args.negatives, recognizer, rng)
        # vehicles close to the camera (street photos, handheld shots): plates up to ~1000 px wide
        close_ups = _one_plate_frames(args.close_ups, recognizer, rng, scale=(1.5, 3.0))
        angled = _one_plate_frames(args.angled, recognizer, rng, max_yaw=_ANGLED_MAX_YAW)
        rss_mb = recognizer.peak_rss_mb()
        # a higher-resolution camera with a wider view: the plates keep their pixel size. Last, and
        # its memory apart: reading frames four times as large needs larger buffers
        large = _one_plate_frames(args.large, recognizer, rng, mosaic=2)
        large_rss_mb = recognizer.peak_rss_mb()
        # drawn last so the sets above stay as they were
        tilted = _one_plate_frames(args.tilted, recognizer, rng, max_roll=_TILTED_MAX_ROLL)
        passages = _passages(args.passages, recognizer, rng)
        # the time, place and speed that cameras burn into their frames: text that is not a plate
        overlaid = _one_plate_frames(args.overlaid, recognizer, rng, overlay=1.0)
        overlaid_negatives = _negatives(args.overlaid, recognizer, rng, overlay=1.0)
        interlaced = _one_plate_frames(args.interlaced, recognizer, rng, interlace=1.0)
        harsh = _one_plate_frames(args.harsh, recognizer, rng, faults=1.0)
        portrait = _one_plate_frames(args.portrait, recognizer, rng, size=_PORTRAIT)
        portrait_negatives = _negatives(args.portrait, recognizer, rng, size=_PORTRAIT)
        pitched = _one_plate_frames(args.pitched, recognizer, rng, max_pitch=_PITCHED_MAX_PITCH)
        shadowed = _one_plate_frames(args.shadowed, recognizer, rng, shadow=1.0, night_share=0.0)
        bent = _one_plate_frames(args.bent, recognizer, rng, bend=1.0)
        cut = _partial_plate_frames(args.cut, recognizer, rng)
        end_hidden = _partial_plate_frames(args.end_hidden, recognizer, rng, hide_end=True)
        bare = _one_plate_frames(args.bare, recognizer, rng, bare=1.0)
        far = _one_plate_frames(args.far, recognizer, rng, scale=_FAR_SCALE)
        street = _street_frames(args.street, recognizer, rng)
        loop_after = _reference_loop_s()

    renderer_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    frame_ms = statistics.mean(frames["times"]) if frames["times"] else None
    crop_ms = statistics.mean(crops["times"]) if crops["times"] else None
    accuracy = frames["hits"] / frames["total"] if frames["total"] else None
    layout_accuracy = frames["layouts_right"] / frames["hits"] if frames["hits"] else None
    colours = frames["colours"]
    colour_accuracy = colours["right"] / colours["read"] if colours["read"] else None
    crop_accuracy = crops["hits"] / args.crops if args.crops else None
    confident = (frames["confident"] + crops["confident"] + close_ups["confident"] + angled["confident"]
                 + large["confident"] + tilted["confident"] + overlaid["confident"]
                 + interlaced["confident"] + harsh["confident"] + portrait["confident"]
                 + pitched["confident"] + shadowed["confident"] + bent["confident"] + bare["confident"]
                 + far["confident"] + street["confident"])
    precision_09 = confident["right"] / confident["reads"] if confident["reads"] else None
    print(f"one core ({pinned}); held-out style: unseen fonts, backgrounds, degradations; "
          f"look closer: {args.look_closer}")
    print(f"frames: {args.frames} at 1280x720, {frames['total']} plates")
    if frame_ms is not None:
        print(f"  {frame_ms:.2f} ms/frame (p50 {statistics.median(frames['times']):.2f}, "
              f"p95 {np.percentile(frames['times'], 95):.2f}), {1000 / frame_ms:.1f} frames/s")  # fmt: skip
    if accuracy is not None:
        print(f"  exact plate accuracy {accuracy:.3f}; extra reads not on a plate: {frames['false_reads']}")
    if layout_accuracy is not None:
        print(f"  layout right for {layout_accuracy:.3f} of the plates read right")
    if colour_accuracy is not None:
        print(f"  colour right for {colour_accuracy:.3f} of the plates read right in daylight; in infrared "
              f"night frames {colours['night_unknown']} of {colours['night_read']} reported with unknown "
              f"colour (the others' frames have a colour cast)")
    for key, counts in sorted(frames["groups"].items()):
        print(f"    {key:18s} {counts['right'] / counts['total']:.3f} ({counts['total']})")
    if crop_ms is not None:
        print(f"crops: {args.crops}: {crop_ms:.2f} ms/crop, exact accuracy {crop_accuracy:.3f}")
    if precision_09 is not None:
        plates = (frames["total"] + args.crops + args.close_ups + args.angled + args.large + args.tilted
                  + args.overlaid + args.interlaced + args.harsh + args.portrait + args.pitched
                  + args.shadowed + args.bent + args.bare + args.far + 2 * args.street)
        share = confident["reads"] / plates
        print(
            f"confidence >= 0.9: {confident['reads']} reads ({share:.1%} of plates), {precision_09:.4f} right"
        )
    print(f"plate-free frames with a reported plate: {negatives} of {args.negatives}")
    if args.overlaid:
        print(f"with the camera's on-screen text: plate-free frames with a reported plate "
              f"{overlaid_negatives} of {args.overlaid}; one-plate frames, exact accuracy "
              f"{overlaid['accuracy']:.3f}{_confident(overlaid)}")
    one_plate_sets = (
        ("close-ups (plate 1.5-3x as wide)", args.close_ups, close_ups),
        ("angled views (yaw up to 40 degrees)", args.angled, angled),
        ("tilted views (roll up to 40 degrees)", args.tilted, tilted),
        ("large frames (2560x1440, plates as wide as at 1280x720)", args.large, large),
        ("interlaced frames (fields 2-12 px apart)", args.interlaced, interlaced),
        ("harsh conditions (rain, haze, over-sharpening, low bitrate)", args.harsh, harsh),
        ("portrait photos (1080x1920)", args.portrait, portrait),
        ("pitched views (camera up to 46 degrees above)", args.pitched, pitched),
        ("shadowed plates (a pole's band or a curved edge, daylight)", args.shadowed, shadowed),
        ("bent plates (rows bowed by up to a fifth of the height)", args.bent, bent),
        ("bare plates (no vehicle shape drawn around them)", args.bare, bare),
        ("far plates (drawn 0.5-0.8x as wide)", args.far, far),
    )
    for name, count, outcome in one_plate_sets:
        if count:
            speed = f", {outcome['ms']:.1f} ms/frame" if outcome is large or outcome is portrait else ""
            print(f"{name}: {count}, exact accuracy {outcome['accuracy']:.3f}{speed}{_confident(outcome)}")
    if args.street:
        print(f"street frames (a near and a far vehicle among clutter, from behind): {args.street}, exact "
              f"accuracy {street['accuracy']:.3f}, far plates {street['far_accuracy']:.3f}, "
              f"{street['ms']:.1f} ms/frame{_confident(street)}")
    if args.portrait:
        print(f"plate-free portrait photos with a reported plate: {portrait_negatives} of {args.portrait}")
    if args.cut:
        print(f"plates cut by the frame's edge: {args.cut} frames, {cut['reads']} reads, {cut['sure']} at "
              f">= 0.9, of which {cut['sure_wrong']} wrong")
    if args.end_hidden:
        print(f"plates with one end hidden by something in front: {args.end_hidden} frames, "
              f"{end_hidden['reads']} reads, {end_hidden['sure']} at >= 0.9, of which "
              f"{end_hidden['sure_wrong']} wrong")
    if args.passages:
        print(f"passages: {args.passages} vehicles x {len(_PASSAGE_SCALES)} frames as they approach, exact "
              f"accuracy {passages['frame_accuracy']:.3f} per frame, {passages['accuracy']:.3f} by the vote")
    print(f"peak RSS of the recogniser's process {rss_mb:.0f} MB before the large frames, "
          f"{large_rss_mb:.0f} MB after them; of the benchmark's own (drawing the images) "
          f"{renderer_rss_mb:.0f} MB")  # fmt: skip
    print(f"core speed: a loop of {_REFERENCE_ADDITIONS:,} additions took {loop_before:.2f} s before the "
          f"sets and {loop_after:.2f} s after them")
    summary = {
        "look_closer": args.look_closer,
        "frame_ms": _rounded(frame_ms, 3),
        "frames_per_s": None if frame_ms is None else round(1000 / frame_ms, 2),
        "crop_ms": _rounded(crop_ms, 3),
        "accuracy": _rounded(accuracy),
        "crop_accuracy": _rounded(crop_accuracy),
        "layout_accuracy": _rounded(layout_accuracy),
        "colour_accuracy": _rounded(colour_accuracy),
        "plates": frames["total"],
        "extra_reads": frames["false_reads"],
        "precision_at_0_9": _rounded(precision_09),
        "reads_at_0_9": confident["reads"],
        "false_positive_frames": negatives,
        "negative_frames": args.negatives,
        "overlaid_false_positive_frames": overlaid_negatives,
        "overlaid_negative_frames": args.overlaid,
        "overlaid_accuracy": _rounded(overlaid["accuracy"]),
        "interlaced_accuracy": _rounded(interlaced["accuracy"]),
        "harsh_accuracy": _rounded(harsh["accuracy"]),
        "portrait_accuracy": _rounded(portrait["accuracy"]),
        "portrait_ms": _rounded(portrait["ms"], 2),
        "portrait_false_positive_frames": portrait_negatives,
        "close_up_accuracy": _rounded(close_ups["accuracy"]),
        "angled_accuracy": _rounded(angled["accuracy"]),
        "tilted_accuracy": _rounded(tilted["accuracy"]),
        "pitched_accuracy": _rounded(pitched["accuracy"]),
        "shadowed_accuracy": _rounded(shadowed["accuracy"]),
        "bent_accuracy": _rounded(bent["accuracy"]),
        "bare_accuracy": _rounded(bare["accuracy"]),
        "far_accuracy": _rounded(far["accuracy"]),
        "street_accuracy": _rounded(street["accuracy"]),
        "street_far_accuracy": _rounded(street["far_accuracy"]),
        "street_ms": _rounded(street["ms"], 2),
        "cut_reads_at_0_9": cut["sure"] if args.cut else None,
        "cut_wrong_at_0_9": cut["sure_wrong"] if args.cut else None,
        "end_hidden_reads_at_0_9": end_hidden["sure"] if args.end_hidden else None,
        "end_hidden_wrong_at_0_9": end_hidden["sure_wrong"] if args.end_hidden else None,
        "large_frame_accuracy": _rounded(large["accuracy"]),
        "large_frame_ms": _rounded(large["ms"], 2),
        "passage_frame_accuracy": _rounded(passages["frame_accuracy"]),
        "passage_accuracy": _rounded(passages["accuracy"]),
        "rss_mb": round(rss_mb, 1),
        "rss_mb_with_large_frames": round(large_rss_mb, 1),
        "renderer_rss_mb": round(renderer_rss_mb, 1),
        "reference_loop_s": [loop_before, loop_after],
    }
    print(json.dumps(summary))
    return 0
