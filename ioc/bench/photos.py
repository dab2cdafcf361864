"""``ioc bench photos LABELS``: the recogniser on your own labelled photographs.

``ioc bench anpr`` measures generated data; what counts is a province's own cameras.
LABELS is a CSV file (a TSV where it ends in ``.tsv``) with a header row naming at least
``image`` (a path from ``--root``, by default the labels file's folder) and ``plates`` (the
plates a reader should get, separated by spaces, commas or semicolons, canonical ``51F86988``
or unspaced display ``51F-869.88``; empty for a plate-free photo). An optional ``camera`` column
names the camera (or kind of camera) each photo comes from, and the figures are then given for
each camera as well: which cameras read well, and which need a look at their focus, angle or
light. Other columns are ignored.
List every plate a person can read in full: a read of an unlisted plate counts as matching no
label.
``docs/photos/`` holds labels for public photos (docs/benchmarks.md says where to get them).

Each photo is decoded and read as ``ioc anpr`` does, on one core, timed alone. Printed: exact
reads of the labelled plates, reads at confidence >= 0.9 and how many of them are right,
plate-free photos with a plate reported, reads matching no label, ms per photo, and each
photo with a plate missed or misread; the last line of stdout is a JSON object with
``accuracy``, ``precision_at_0_9`` and ``ms`` among other figures.

``--variants`` also scores each photo as other cameras would give the same scene (:data:`VARIANTS`:
more or fewer pixels, a low-bitrate stream, a darker hour, haze, a bluish white balance, motion across
the frame and towards the camera, a camera turned askew, an infrared camera's grey levels, sensor noise):
where the recogniser holds up and where its confidence stops meaning what it says.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ioc.commands.anpr import add_look_closer_argument

if TYPE_CHECKING:
    import numpy as np

__all__ = ["VARIANTS", "LabelledPhoto", "Variant", "load_labels", "register", "run", "variant_of"]

_SURE = 0.9
_SEPARATORS = re.compile(r"[\s,;]+")  # between the plates of one photo


@dataclass(frozen=True)
class LabelledPhoto:
    name: str  # as the labels file gives it
    path: Path
    plates: tuple[str, ...]  # canonical texts; empty for a plate-free photo
    camera: str = ""  # the labels file's camera column, if it has one


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("photos", help="licence-plate recogniser on labelled photographs")
    parser.add_argument("labels", type=Path, metavar="LABELS",
                        help="CSV (or .tsv) with columns image, plates and optionally camera")  # fmt: skip
    parser.add_argument("--root", type=Path, default=None,
                        help="folder the image paths start from (default: the labels file's)")  # fmt: skip
    parser.add_argument("--no-pin", action="store_true", help="do not pin the process to one core")
    parser.add_argument("--models", type=Path, default=None,
                        help="folder with candidate models (default: the packaged ones)")  # fmt: skip
    add_look_closer_argument(parser, default="unsure")
    parser.add_argument("--variants", action="store_true",
                        help=f"also score each photo scaled, compressed, darkened, hazed, tinted, blurred, "
                             f"turned, in grey levels and noisy ({', '.join(VARIANTS)})")  # fmt: skip
    parser.set_defaults(func=run)


def load_labels(path: Path, root: Path | None = None) -> list[LabelledPhoto]:
    """The labelled photos of a labels file, their paths from ``root`` (by default the file's
    folder); ValueError naming the line for a bad one."""
    from detectors.plate_format import canonical, is_valid

    with path.open(newline="", encoding="utf-8-sig") as file:  # a spreadsheet's export may start with a BOM
        rows = csv.DictReader(file, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
        missing = {"image", "plates"} - set(rows.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: the header must name the columns image and plates (missing: "
                             f"{', '.join(sorted(missing))})")  # fmt: skip
        photos = []
        for row in rows:
            image = (row["image"] or "").strip()
            if not image:
                raise ValueError(f"{path}, line {rows.line_num}: no image named")
            texts = _SEPARATORS.split((row["plates"] or "").strip())
            plates = tuple(canonical(text) for text in texts if text)
            wrong = [text for text in plates if not is_valid(text)]
            if wrong:
                raise ValueError(f"{path}, line {rows.line_num}: not a Vietnamese plate: {', '.join(wrong)}")
            camera = (row.get("camera") or "").strip()
            photos.append(LabelledPhoto(image, (root or path.parent) / image, plates, camera))
    if not photos:
        raise ValueError(f"{path}: no photos listed")
    return photos


def _upscaled(image: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.resize(image, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_CUBIC)


def _downscaled(image: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.resize(image, None, fx=0.75, fy=0.75, interpolation=cv2.INTER_AREA)


def _compressed(image: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.imdecode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 40])[1], cv2.IMREAD_COLOR)


def _levels(image: np.ndarray, gain: tuple[float, float, float], lift: float = 0.0) -> np.ndarray:
    """``image``'s levels times ``gain`` (blue, green, red) plus ``lift``."""
    import numpy as np

    return (image.astype(np.float32) * np.array(gain, np.float32) + lift).astype(np.uint8)


def _smeared(image: np.ndarray, angle: float = 0.0) -> np.ndarray:
    from detectors.camera_faults import motion_blur

    return motion_blur(image, 3, angle)


def _rolled(image: np.ndarray, degrees: float) -> np.ndarray:
    """``image`` turned ``degrees`` anticlockwise about its centre, its size kept (edges repeated)."""
    import cv2

    height, width = image.shape[:2]
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    return cv2.warpAffine(image, turn, (width, height), borderMode=cv2.BORDER_REPLICATE)


def _monochrome(image: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)


def _noisy(image: np.ndarray, sigma: float = 12.0) -> np.ndarray:
    """Gaussian noise of ``sigma`` levels on every pixel and channel, the same for every run."""
    import numpy as np

    noise = np.random.default_rng(0).normal(0.0, sigma, image.shape).astype(np.float32)
    return np.clip(image.astype(np.float32) + noise, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Variant:
    description: str
    change: Callable[[np.ndarray], np.ndarray]  # the decoded BGR photo -> the photo as the variant


# --variants: the decoded photo changed as another camera would give the scene
VARIANTS = {
    "upscaled_1_5": Variant("1.5 times the pixels each way (bicubic): a camera with more pixels", _upscaled),
    "downscaled_0_75": Variant("0.75 times the pixels each way (area): a camera with fewer", _downscaled),
    "jpeg_40": Variant("re-encoded as JPEG at quality 40: a low-bitrate stream", _compressed),
    "darker_0_45": Variant("every level times 0.45: a darker hour, an under-exposed camera",
                           partial(_levels, gain=(0.45, 0.45, 0.45))),
    "hazy_0_5": Variant("half the contrast, levels lifted by 100: haze, a fogged or dirty window",
                        partial(_levels, gain=(0.5, 0.5, 0.5), lift=100.0)),
    "bluish": Variant("red times 0.6, green times 0.9: a white balance gone blue",
                      partial(_levels, gain=(1.0, 0.9, 0.6))),
    "motion_blur_3": Variant("smeared 3 pixels along the rows: a vehicle moving during the exposure",
                             _smeared),
    "motion_blur_3_vertical": Variant("smeared 3 pixels down the columns: a vehicle coming at the camera",
                                      partial(_smeared, angle=90.0)),
    "rolled_6": Variant("turned 6 degrees anticlockwise: a camera mounted askew, a handheld shot",
                        partial(_rolled, degrees=6.0)),
    "rolled_-6": Variant("turned 6 degrees clockwise", partial(_rolled, degrees=-6.0)),
    "monochrome": Variant("grey levels only: an infrared or monochrome camera", _monochrome),
    "noise_12": Variant("sensor noise of 12 levels: a camera's gain turned up at dusk", _noisy),
}  # fmt: skip


def variant_of(image: np.ndarray, variant: str) -> np.ndarray:
    """``image`` (BGR) as :data:`VARIANTS` ``variant`` describes it."""
    if variant not in VARIANTS:
        raise ValueError(f"no variant {variant!r}")
    return VARIANTS[variant].change(image)


def _read(recognizer: Any, photo: LabelledPhoto) -> tuple[list[Any], float]:
    """The plates read in one photo (in the file's pixels) and the ms it took, decode included."""
    from ioc.commands.anpr import read_plates

    started = time.perf_counter()
    plates = read_plates(recognizer, photo.path)
    return plates, (time.perf_counter() - started) * 1000


def _new_tally() -> dict[str, int]:
    return dict(plates=0, right=0, sure=0, sure_right=0, unmatched=0, plate_free=0, flagged=0)


def _count(tally: dict[str, int], photo: LabelledPhoto, plates: list[Any]) -> bool:
    """Add one photo's reads to ``tally``; whether a labelled plate was missed or a read matches none."""
    texts = {plate.text for plate in plates}
    wanted = set(photo.plates)
    tally["plates"] += len(photo.plates)
    tally["right"] += sum(text in texts for text in photo.plates)
    sure = [plate for plate in plates if plate.confidence >= _SURE]
    tally["sure"] += len(sure)
    tally["sure_right"] += sum(plate.text in wanted for plate in sure)
    tally["unmatched"] += sum(plate.text not in wanted for plate in plates)
    tally["plate_free"] += not photo.plates
    tally["flagged"] += bool(not photo.plates and plates)
    return not wanted <= texts or bool(texts - wanted)


def _score(photos: list[LabelledPhoto], recognizer: Any) -> dict[str, Any]:
    times: list[float] = []
    tally = _new_tally()
    cameras: dict[str, dict[str, int]] = {}  # each named camera's own tally
    misses, errors = [], []
    for photo in photos:
        try:
            plates, ms = _read(recognizer, photo)
        except ValueError as exc:  # an unreadable photo is reported and the run goes on
            errors.append(f"{photo.name}: {exc}")
            continue
        times.append(ms)
        if photo.camera:
            _count(cameras.setdefault(photo.camera, _new_tally()), photo, plates)
        if _count(tally, photo, plates):
            got = ", ".join(f"{plate.text} ({plate.confidence:.2f})" for plate in plates) or "nothing"
            misses.append(f"{photo.name}: labelled {' '.join(photo.plates) or 'plate-free'}; read {got}")
    return {"tally": tally, "cameras": cameras, "times": times, "misses": misses, "errors": errors}


def _score_variants(photos: list[LabelledPhoto], recognizer: Any) -> dict[str, dict[str, int]]:
    """Each :data:`VARIANTS` entry's tally; each photo is decoded once for all of them."""
    from ioc.commands.anpr import read_image

    tallies = {name: _new_tally() for name in VARIANTS}
    for photo in photos:
        try:
            image = read_image(photo.path).image
        except ValueError:  # reported with the photos as they are
            continue
        for name, variant in VARIANTS.items():
            _count(tallies[name], photo, recognizer.recognize(variant.change(image)))
    return tallies


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _figures(tally: dict[str, int]) -> dict[str, Any]:
    """A camera's or a variant's figures in the JSON summary."""
    return {
        "plates": tally["plates"],
        "accuracy": _share(tally["right"], tally["plates"]),
        "reads_at_0_9": tally["sure"],
        "precision_at_0_9": _share(tally["sure_right"], tally["sure"]),
        "false_positive_photos": tally["flagged"],
    }


def _sure_and_flagged(tally: dict[str, int]) -> str:
    return (f"reads at >= 0.9 {tally['sure']}, of them right {tally['sure_right']} "
            f"({_share(tally['sure_right'], tally['sure'])}); plate-free photos with a plate reported "
            f"{tally['flagged']}")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    import cv2
    import numpy as np

    from detectors.recognizer import PlateRecognizer
    from ioc.bench.anpr import pin_one_core
    from ioc.commands.anpr import load_decoders

    try:
        photos = load_labels(args.labels, args.root)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}")
        return 2
    pinned = "not pinned" if args.no_pin else pin_one_core()
    cv2.setNumThreads(1)
    recognizer = PlateRecognizer.load(threads=1, models_dir=args.models, look_closer=args.look_closer)
    recognizer.warm_up()
    load_decoders()  # so that the first photo is not charged for it
    outcome = _score(photos, recognizer)
    tally, times = outcome["tally"], outcome["times"]
    accuracy = _share(tally["right"], tally["plates"])
    precision = _share(tally["sure_right"], tally["sure"])
    print(f"photos: {len(photos)} ({tally['plate_free']} plate-free), {len(outcome['errors'])} could not be "
          f"read; {tally['plates']} plates labelled in those read; {pinned}; look closer: "
          f"{args.look_closer}")  # fmt: skip
    print(f"exact reads: {tally['right']} of {tally['plates']} plates ({accuracy})")
    print(f"reads at >= 0.9: {tally['sure']}, of them right {tally['sure_right']} ({precision})")
    print(f"plate-free photos with a plate reported: {tally['flagged']} of {tally['plate_free']}")
    print(f"reads matching no label: {tally['unmatched']}")
    ms = p95 = None
    if times:
        ms = round(statistics.fmean(times), 2)
        p95 = round(float(np.percentile(times, 95)), 2)  # as ioc bench anpr computes it
        print(f"ms per photo (decode and recognition): mean {ms}, p95 {p95}")
    cameras = {}
    for camera, camera_tally in sorted(outcome["cameras"].items()):
        cameras[camera] = _figures(camera_tally)
        print(f"camera {camera}: exact reads {camera_tally['right']} of {camera_tally['plates']} "
              f"({cameras[camera]['accuracy']}); {_sure_and_flagged(camera_tally)}")  # fmt: skip
    for line in outcome["misses"]:
        print(f"  missed or misread: {line}")
    for line in outcome["errors"]:
        print(f"  error: {line}")
    variants = {}
    for variant, changed_tally in (_score_variants(photos, recognizer) if args.variants else {}).items():
        variants[variant] = _figures(changed_tally)
        print(f"{variant} ({VARIANTS[variant].description}): exact reads {changed_tally['right']} of "
              f"{changed_tally['plates']} ({variants[variant]['accuracy']}); "
              f"{_sure_and_flagged(changed_tally)}")  # fmt: skip
    summary = {
        "photos": len(photos),
        "look_closer": args.look_closer,
        "plates": tally["plates"],
        "accuracy": accuracy,
        "reads_at_0_9": tally["sure"],
        "precision_at_0_9": precision,
        "plate_free_photos": tally["plate_free"],
        "false_positive_photos": tally["flagged"],
        "unmatched_reads": tally["unmatched"],
        "errors": len(outcome["errors"]),
        "ms": ms,
        "ms_p95": p95,
    }
    if cameras:
        summary["cameras"] = cameras
    if args.variants:
        summary["variants"] = variants
    print(json.dumps(summary))
    return 1 if outcome["errors"] else 0
