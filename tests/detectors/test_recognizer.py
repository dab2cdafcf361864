"""The plate recogniser on generated held-out images (fonts, backgrounds and damage unseen in training)."""

from __future__ import annotations

import copy
import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from detectors import plate_format
from detectors.camera_faults import motion_blur
from detectors.detection import PlateDetector
from detectors.geometry import rectify
from detectors.plate_format import Layout
from detectors.plate_rendering import PLATE_SIZES_MM, PlateSpec, random_plate_spec, render_plate
from detectors.reading import Reading, StripReader
from detectors.recognizer import (
    MODELS_DIR,
    ImageError,
    LookCloser,
    PlateRecognizer,
    PlateResult,
    _deblurred_strip,
)
from detectors.synthetic import hide_plate_end, render_plate_patch, render_scene

LAYOUTS = ("one_line", "two_line", "motorbike")
COLOURS = ("white", "yellow", "blue", "red")


@pytest.fixture(scope="module")
def recognizer() -> Iterator[PlateRecognizer]:
    yield PlateRecognizer.load(home_province="20")


def _spec(rng: np.random.Generator, layout: str, colour: str) -> PlateSpec:
    return PlateSpec(plate_format.random_plate_text(rng, layout=layout), layout, colour)  # type: ignore[arg-type]


def _found(results: list[PlateResult], truth) -> PlateResult | None:  # noqa: ANN001 - PlateTruth
    cx, cy = truth.corners.mean(axis=0)
    for result in results:
        x, y, w, h = result.bbox
        if x <= cx <= x + w and y <= cy <= y + h:
            return result
    return None


def test_reads_every_layout_and_colour_in_scenes(recognizer: PlateRecognizer) -> None:
    rng = np.random.default_rng(100)
    right: dict[tuple[str, str], int] = {}
    for layout in LAYOUTS:
        for colour in COLOURS:
            hits = 0
            for index in range(3):
                spec = _spec(rng, layout, colour)
                image, truths = render_scene([spec], rng=rng, style="test", night=index == 2, occlusion=0.0)
                result = _found(recognizer.recognize(image), truths[0])
                hits += result is not None and result.text == spec.text
            right[(layout, colour)] = hits
    assert all(hits >= 1 for hits in right.values()), right
    assert sum(right.values()) >= 0.8 * 3 * len(right), right


def test_held_out_accuracy_and_result_fields(recognizer: PlateRecognizer) -> None:
    rng = np.random.default_rng(99)
    total = right = wrong_layout = 0
    for _ in range(60):
        specs = [random_plate_spec(rng) for _ in range(int(rng.integers(1, 3)))]
        image, truths = render_scene(specs, rng=rng, style="test", night=rng.random() < 0.2)
        results = recognizer.recognize(image)
        assert [r.confidence for r in results] == sorted((r.confidence for r in results), reverse=True)
        for truth in truths:
            total += 1
            result = _found(results, truth)
            if result is None or result.text != truth.text:
                continue
            right += 1
            assert result.display == plate_format.display(truth.text, result.layout)
            wrong_layout += result.layout != truth.layout
            assert result.province == plate_format.province_of(truth.text)
            assert result.out_of_province == (None if result.province is None else result.province != "20")
            assert 0.0 <= result.confidence <= 1.0
            assert result.candidates[0][0] == result.text
            assert len(result.corners) == 4 and result.crop is not None and result.crop.ndim == 3
    # A regression guard, not the goal: `ioc bench anpr` measures 0.90 on 271 held-out plates
    # (the goal is 0.95). About 90 plates here: 0.80 leaves two standard deviations of sampling.
    assert right / total >= 0.80, f"{right} of {total}"
    # two-line car plates whose text a motorbike plate could also carry (75U82787) were all
    # reported as motorbikes; the outline decides now (the benchmark: 0 of 501 wrong)
    assert wrong_layout <= 1, f"{wrong_layout} of {right} plates read right have the wrong layout"


def test_colour_classes(recognizer: PlateRecognizer) -> None:
    rng = np.random.default_rng(12)
    hits = 0
    for colour in COLOURS:
        for layout in LAYOUTS:
            plate = render_plate(plate_format.random_plate_text(rng, layout=layout), layout=layout,
                                 colour=colour, rng=rng, style="test", scale=0.6)  # fmt: skip
            result = recognizer.read_crop(plate)
            hits += result is not None and result.colour == colour
    assert hits >= 10


def test_a_merged_home_province_has_each_of_its_codes() -> None:
    """Thái Nguyên since 2025 (20, and Bắc Kạn's 97): plates of either code are home."""
    merged = PlateRecognizer.load(home_province="20,97")
    rng = np.random.default_rng(8)
    for text, away in (("20A12345", False), ("97C67890", False), ("29K24680", True)):
        plate = render_plate(text, layout="one_line", colour="white", rng=rng, style="test")
        result = merged.read_crop(plate)
        assert result is not None and result.text == text
        assert result.province == text[:2] and result.out_of_province is away


def test_an_unknown_home_province_is_refused() -> None:
    with pytest.raises(ValueError, match="not a province code"):
        PlateRecognizer.load(home_province="2O")


def test_colour_of_coloured_plates_in_daylight_scenes(recognizer: PlateRecognizer) -> None:
    """Blue and red plates carry bold white characters, which once outnumbered the
    background pixels and made the plate read as white (3 of these 23 were)."""
    rng = np.random.default_rng(7)
    right = found_plates = 0
    for colour in ("blue", "red", "yellow"):
        for layout in LAYOUTS:
            for _ in range(3):
                spec = _spec(rng, layout, colour)
                image, truths = render_scene([spec], rng=rng, style="test", occlusion=0.0)
                result = _found(recognizer.recognize(image), truths[0])
                if result is not None:
                    found_plates += 1
                    right += result.colour == colour
    assert found_plates >= 20 and right >= found_plates - 1, f"{right} of {found_plates}"


@pytest.mark.parametrize(
    ("tint", "coloured"),
    [((0.7, 0.9, 1.0), "yellow"), ((0.5, 0.8, 1.0), "yellow"), ((1.0, 0.85, 0.6), "blue")],
    ids=["low-sun", "sodium-lamp", "blue-sky-shade"],
)
def test_white_plates_in_tinted_light_stay_white_and_coloured_ones_coloured(
    recognizer: PlateRecognizer, tint: tuple[float, float, float], coloured: str
) -> None:
    """Tinted light (or a camera's white balance off) tints a white plate too: half the white plates
    in a low sun's light were reported yellow (commercial vehicles), nearly all under sodium lamps,
    and most in a blue sky's shade blue (government vehicles)."""
    rng = np.random.default_rng(21)
    right = found_plates = 0
    for colour in ("white", coloured):
        for layout in LAYOUTS:
            for _ in range(3):
                spec = _spec(rng, layout, colour)
                image, truths = render_scene([spec], rng=rng, style="test", occlusion=0.0)
                tinted = np.clip(image * np.array(tint, np.float32), 0, 255).astype(np.uint8)  # BGR
                result = _found(recognizer.recognize(tinted), truths[0])
                if result is not None:
                    found_plates += 1
                    right += result.colour == colour
    assert found_plates >= 16 and right >= found_plates - 1, f"{right} of {found_plates}"


def test_infrared_frames_give_no_colour_grey_crops_keep_theirs(recognizer: PlateRecognizer) -> None:
    rng = np.random.default_rng(4)
    image, truths = render_scene([_spec(rng, "one_line", "yellow")], rng=rng, style="test", occlusion=0.0)
    infrared = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    in_colour = _found(recognizer.recognize(image), truths[0])
    in_infrared = _found(recognizer.recognize(infrared), truths[0])
    assert in_colour is not None and in_colour.colour == "yellow"
    assert in_infrared is not None and in_infrared.colour == "unknown"
    # a tight crop is all plate: a grey one is a white plate, whichever entry point reads it
    plate = render_plate(plate_format.random_plate_text(rng, layout="one_line"), layout="one_line",
                         colour="white", rng=rng, style="test", scale=0.6)  # fmt: skip
    grey_crop = cv2.cvtColor(cv2.cvtColor(plate, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    assert [r.colour for r in recognizer.recognize(grey_crop)][:1] == ["white"]
    assert recognizer.read_crop(grey_crop).colour == "white"


def test_plate_free_frames_give_nothing(recognizer: PlateRecognizer) -> None:
    rng = np.random.default_rng(5)
    for index in range(8):
        image, _ = render_scene([], rng=rng, style="test", night=index % 4 == 0)
        assert recognizer.recognize(image) == []
    assert recognizer.recognize(np.zeros((720, 1280, 3), np.uint8)) == []
    assert recognizer.recognize(np.full((720, 1280, 3), 255, np.uint8)) == []


def test_camera_on_screen_text_is_not_a_plate(recognizer: PlateRecognizer) -> None:
    """Cameras burn the time, place and speed into their frames: digits and letters a reader
    could take for a plate."""
    rng = np.random.default_rng(12)
    for index in range(8):
        image, _ = render_scene([], rng=rng, style="test", night=index % 4 == 0, overlay=1.0)
        assert recognizer.recognize(image) == []


def test_harsh_conditions_keep_plates_read_and_sure_reads_right(recognizer: PlateRecognizer) -> None:
    """Rain, haze, over-sharpening and low-bitrate streams (drawn in the held-out style): most
    plates still read, what is reported sure is right, and a plate-free frame stays empty."""
    rng = np.random.default_rng(41)
    right, sure, sure_right = 0, 0, 0
    for _ in range(16):
        spec = random_plate_spec(rng)
        image, (truth,) = render_scene([spec], rng=rng, style="test", faults=1.0, occlusion=0.0)
        found = _found(recognizer.recognize(image), truth)
        right += found is not None and found.text == spec.text
        if found is not None and found.confidence >= 0.9:
            sure += 1
            sure_right += found.text == spec.text
    assert right >= 12, right  # 13 of these 16 with the models of 2026-12-04, night
    assert sure >= 10 and sure_right == sure
    for index in range(6):
        image, _ = render_scene([], rng=rng, style="test", night=index % 3 == 0, faults=1.0)
        assert recognizer.recognize(image) == []


def test_plates_rolled_far_in_the_image_plane_are_read(recognizer: PlateRecognizer) -> None:
    """A phone held askew or a crooked camera: plates turned 25-40 degrees in the image plane."""
    rng = np.random.default_rng(43)
    right = total = 0
    while total < 12:
        spec = random_plate_spec(rng)
        image, (truth,) = render_scene([spec], rng=rng, style="test", max_roll=40.0, occlusion=0.0)
        (left, top), (right_x, right_y) = truth.corners[0], truth.corners[1]
        if abs(np.degrees(np.arctan2(right_y - top, right_x - left))) < 25:
            continue
        total += 1
        right += spec.text in [p.text for p in recognizer.recognize(image)]
    assert right >= 10  # 11 of these 12; 8 with the detector trained on rolls up to 12 degrees


@pytest.fixture
def batches(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many strips each call of the reader took, in order."""
    sizes: list[int] = []
    read = StripReader.read
    monkeypatch.setattr(StripReader, "read", lambda self, strips: sizes.append(len(strips)) or read(self, strips))  # noqa: E501
    return sizes


def _grey_scene() -> tuple[np.ndarray, np.random.Generator]:
    """A grey held-out scene to cut strips from, and the generator that drew it."""
    rng = np.random.default_rng(12)
    image, _ = render_scene([_spec(rng, "one_line", "white")], rng=rng, style="test")
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), rng


def test_only_plates_in_doubt_narrower_than_the_strip_are_read_again(
    recognizer: PlateRecognizer, batches: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading a plate again at nudged corners costs 4 strips: it pays for plates read unsure or
    sure but not beyond doubt, narrower than their strip, not for reads beyond doubt (most
    plates) nor wider plates (close-ups lost as many as they gained), so only those are read
    again, all in one reader call."""
    grey, rng = _grey_scene()

    def quad(width: float) -> np.ndarray:
        return np.array([[100, 100], [100 + width, 100], [100 + width, 130], [100, 130]], np.float32)

    settled, unsure = Reading(("51F86988",), (0.9995,)), Reading(("51F86988", "51F86989"), (0.3, 0.2))
    sure = Reading(("51F86988", "51F86989"), (0.95, 0.03))  # calibrated to about 0.97: not beyond doubt
    assert 0.9 <= recognizer._calibration(0.95) < 0.99 <= recognizer._calibration(0.9995)
    looks = [[settled, settled], [unsure, unsure], [unsure, unsure], [unsure, unsure], [sure, sure]]
    one_line, two_row = plate_format.Layout.ONE_LINE, plate_format.Layout.TWO_LINE
    shapes = [one_line, one_line, one_line, two_row, one_line]  # a two-row plate's rows are strips of 96 px
    corners = [quad(120), quad(120), quad(400), quad(120), quad(120)]
    readings = recognizer._look_again_if_in_doubt(grey, corners, shapes, looks)
    assert batches == [8]  # the small plates in doubt alone, in one call
    assert readings[0] == settled and readings[2] == unsure and readings[3] == unsure
    assert readings[1] != unsure and readings[4] != sure  # averaged with the 4 new looks
    batches.clear()
    again = recognizer._look_again_if_in_doubt(grey, [quad(120)], shapes[:1], [[settled, settled]])
    assert again == [settled]
    assert batches == []
    # a tight crop (read in about 3 ms) is not read again, even when small and unsure
    patch, corners = render_plate_patch(_spec(rng, "one_line", "white"), rng=rng, style="test", occlusion=0.0)
    x0, y0 = np.maximum(np.floor(corners.min(axis=0)), 0).astype(int)
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int)
    scale = 40 / (x1 - x0)  # 40 px wide: read unsure
    crop = cv2.resize(patch[y0:y1, x0:x1], None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    # reported however unsure, to see that it was read unsure
    everything = dataclasses.replace(recognizer._calibration, min_confidence=0.0)
    monkeypatch.setattr(recognizer, "_calibration", everything)
    result = recognizer.read_crop(crop)
    assert result is not None and result.confidence < 0.9
    assert batches and all(size == 1 for size in batches), batches


def test_only_unsettled_plates_are_read_at_earlier_corners(
    recognizer: PlateRecognizer, batches: list[int]
) -> None:
    """A frame's plate is read at its final corners, and at the earlier passes' only where that
    read is not beyond doubt and the strip holds characters: the reader is the recogniser's
    dearest network per image, and grilles, signs and sure plates need no second look."""
    grey, _ = _grey_scene()
    quad = np.array([[100, 100], [220, 100], [220, 130], [100, 130]], np.float32)
    inked = np.zeros((48, 37), np.float32)
    inked[:, 0] = 1.0
    inked[10:30, 0], inked[10:30, 6] = 0.0, 1.0  # 20 columns of a character: ink
    blank = np.zeros((48, 37), np.float32)
    blank[:, 0] = 1.0
    sure, unsure = Reading(("51F86988",), (0.9995,)), Reading(("51F86988", "51F86989"), (0.3, 0.2))
    empty = Reading((), ())
    looks = [[sure], [unsure], [empty], [empty]]
    final = np.stack([inked, inked, blank, inked])  # the last: characters, but no valid plate read yet
    shapes = [plate_format.Layout.ONE_LINE] * 4
    earlier = [[quad] * 4]  # one earlier pass
    recognizer._look_at_earlier_corners(grey, earlier, shapes, final, looks)
    assert batches == [2]  # the unsure plate and the inked one, in one call
    assert [len(plate_looks) for plate_looks in looks] == [1, 2, 1, 2]
    assert looks[1][-1] == unsure and looks[3][-1] == empty  # the earlier look goes first
    batches.clear()
    recognizer._look_at_earlier_corners(grey, [], shapes[:1], final[:1], [[unsure]])  # a crop: one look
    assert batches == []


@pytest.mark.parametrize("layout", LAYOUTS)
def test_tight_crops_through_both_entry_points(recognizer: PlateRecognizer, layout: str) -> None:
    rng = np.random.default_rng(len(layout))
    right_crop = right_recognize = right_large = 0
    for _ in range(5):
        spec = _spec(rng, layout, "white")
        patch, quad = render_plate_patch(spec, rng=rng, style="test", occlusion=0.0, glare=0.0)
        x0, y0 = np.maximum(np.floor(quad.min(axis=0)), 0).astype(int)
        x1, y1 = np.ceil(quad.max(axis=0)).astype(int)
        crop = np.ascontiguousarray(patch[y0:y1, x0:x1])
        result = recognizer.read_crop(crop)
        right_crop += result is not None and result.text == spec.text
        results = recognizer.recognize(crop)
        right_recognize += bool(results) and results[0].text == spec.text
        # the same crop from a high-resolution camera (larger than the frames the detector sees)
        large = cv2.resize(crop, None, fx=1600 / crop.shape[1], fy=1600 / crop.shape[1])
        results = recognizer.recognize(large)
        right_large += bool(results) and results[0].text == spec.text
    assert right_crop >= 4 and right_recognize >= 4 and right_large >= 4, (right_crop, right_recognize,
                                                                            right_large)  # fmt: skip


def test_a_small_crop_that_reads_nothing_is_read_again_enlarged(recognizer: PlateRecognizer) -> None:
    """A one-line plate about 80 px wide, cropped with a 5 % margin: the warp's linear enlargement reads
    nothing, the crop enlarged twice (cubic) first reads it; its box is in the crop's pixels."""
    rng = np.random.default_rng(335)
    spec = random_plate_spec(rng)
    patch, quad = render_plate_patch(spec, rng=rng, style="test", margin=0.6, occlusion=0, glare=0,
                                     plate_width=float(rng.uniform(50, 100)))  # fmt: skip
    pad = (quad.max(axis=0) - quad.min(axis=0)) * 0.05
    x0, y0 = np.maximum(np.floor(quad.min(axis=0) - pad), 0).astype(int)
    x1, y1 = np.ceil(quad.max(axis=0) + pad).astype(int)
    crop = np.ascontiguousarray(patch[y0:y1, x0:x1])
    assert spec.text == "31Y34035" and crop.shape[1] < 96
    assert recognizer._read_outline(crop) is None  # read as it is: nothing
    for result in (recognizer.read_crop(crop), recognizer.recognize(crop)[0]):
        assert result.text == spec.text
        x, y, w, h = result.bbox  # the plate fills most of the crop, and the box is inside it
        assert min(x, y) >= 0 and x + w <= crop.shape[1] and y + h <= crop.shape[0]
        assert w > 0.8 * crop.shape[1]


def test_a_small_plate_smeared_along_its_rows_is_read_with_the_blur_undone(
    recognizer: PlateRecognizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A two-line plate 75 px wide in a 1280x720 frame smeared 4 px along the rows, as a vehicle
    moving during the exposure: read right only once the blur is deconvolved."""
    rng = np.random.default_rng(148)
    image, truths = render_scene([random_plate_spec(rng)], rng=rng, style="test", occlusion=0.0, glare=0.0)
    smeared = motion_blur(image, 4, 0.0)
    assert truths[0].text == "76H82666" and truths[0].bbox[2] < 96
    assert [result.text for result in recognizer.recognize(smeared)] == [truths[0].text]
    monkeypatch.setattr(PlateRecognizer, "_look_again_deblurred", lambda self, *args: None)
    assert truths[0].text not in [result.text for result in recognizer.recognize(smeared)]


def test_deconvolution_brings_a_smeared_strip_back_towards_the_sharp_one() -> None:
    patch, quad = render_plate_patch(("51F86988", "one_line", "white"), rng=np.random.default_rng(3),
                                     style="test", plate_width=120.0, occlusion=0.0, glare=0.0)  # fmt: skip
    grey = cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY)
    sharp = rectify(grey, quad, Layout.ONE_LINE).astype(np.float32)
    smeared = motion_blur(grey, 5, 0.0)
    error_smeared = np.abs(rectify(smeared, quad, Layout.ONE_LINE) - sharp).mean()
    error_restored = np.abs(_deblurred_strip(smeared, quad, Layout.ONE_LINE, 5) - sharp).mean()
    assert error_restored < 0.8 * error_smeared  # 19 against 29 levels


def test_a_result_scaled_down_keeps_its_corners_in_its_box() -> None:
    plate = PlateResult(text="51F86988", display="51F-869.88", confidence=0.95, layout="one_line",
                        colour="white", province="51", out_of_province=True, bbox=(3, 5, 81, 21),
                        corners=[[3.4, 5.2], [83.6, 6.0], [83.9, 25.7], [3.1, 25.1]],
                        candidates=[("51F86988", 0.95)])  # fmt: skip
    assert plate.scaled(2).bbox == (6, 10, 162, 42)
    assert plate.scaled(2, within=(160, 50)).bbox == (6, 10, 154, 40)  # an odd side was rounded up
    half = plate.scaled(0.5)
    assert half.bbox == (1, 2, 41, 11) and half.corners[1] == [41.8, 3.0]
    x, y, w, h = half.bbox
    assert all(x <= cx <= x + w and y <= cy <= y + h for cx, cy in half.corners)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_plates_close_to_the_camera(recognizer: PlateRecognizer, layout: str) -> None:
    """Plates drawn three times as wide as at a checkpoint (street photos, handheld shots):
    up to 1000 px in a 1280x720 frame, beyond what the detector's network sees at full size."""
    rng = np.random.default_rng(30 + len(layout))
    right = 0
    for colour in COLOURS:
        spec = _spec(rng, layout, colour)
        image, truths = render_scene([spec], rng=rng, style="test", occlusion=0.0, plate_scale=3.0)
        result = _found(recognizer.recognize(image), truths[0])
        right += result is not None and result.text == spec.text
    assert right >= 3, f"{right} of {len(COLOURS)}"


def test_the_coarse_levels_are_looked_at_only_where_the_first_read_nothing_sure(
    recognizer: PlateRecognizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The detector's halvings find plates over a third of a 1280x720 frame wide, and their false
    peaks cost a read each: a frame whose plate reads sure at the input's size skips them, a close-up
    whose plate is found there only does not."""
    shapes: list[tuple[int, ...]] = []
    run = recognizer._detector._maps
    monkeypatch.setattr(recognizer._detector, "_maps",
                        lambda canvas: shapes.append(canvas.shape) or run(canvas))  # fmt: skip
    rng = np.random.default_rng(12)
    spec = _spec(rng, "one_line", "white")
    checkpoint, _ = render_scene([spec], rng=rng, style="test", occlusion=0.0, glare=0.0)
    [plate] = recognizer.recognize(checkpoint)
    assert (plate.text, plate.confidence >= 0.9) == (spec.text, True)
    assert shapes == [(384, 640, 3)]
    shapes.clear()
    close_up, _ = render_scene([spec], rng=rng, style="test", occlusion=0.0, glare=0.0, plate_scale=3.0)
    assert spec.text in [p.text for p in recognizer.recognize(close_up)]
    assert shapes[:3] == [(384, 640, 3), (192, 320, 3), (96, 160, 3)]


def test_a_close_up_read_sure_from_part_of_its_plate_is_looked_at_coarser(
    recognizer: PlateRecognizer,
) -> None:
    """A plate too wide for the detector's first level was found there in part and read sure as a
    shorter plate (`14F6771`); a read that wide has the coarse levels looked at even though sure."""
    rng = np.random.default_rng()
    rng.bit_generator.state = {"bit_generator": "PCG64", "has_uint32": 0, "uinteger": 3354648040, "state": {
        "state": 65132830692009023288274430526699536732, "inc": 194290289479364712180083596243593368443}}
    spec = random_plate_spec(rng)  # drawn as `ioc bench anpr --close-ups` draws them
    image, truths = render_scene([spec], rng=rng, style="test", plate_scale=float(rng.uniform(1.5, 3.0)))
    assert spec.text == "14F67715"
    assert [p.text for p in recognizer.recognize(image) if p.confidence >= 0.9] == ["14F67715"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_small_plates_in_a_large_frame(recognizer: PlateRecognizer, layout: str) -> None:
    """A 2560x1440 frame (a higher-resolution camera, a phone photo) whose plates are as many
    pixels wide as at a 1280x720 checkpoint: scaled to the detector's input, many are too
    small to find."""
    rng = np.random.default_rng(50 + len(layout))
    right = 0
    for colour in COLOURS:
        spec = _spec(rng, layout, colour)
        image, truths = render_scene([spec], size=(2560, 1440), rng=rng, style="test", occlusion=0.0,
                                     plate_scale=0.5)
        result = _found(recognizer.recognize(image), truths[0])
        right += result is not None and result.text == spec.text
    assert right >= 3, f"{right} of {len(COLOURS)}"


@pytest.mark.parametrize(
    ("text", "layout", "seed"),
    [("29X504899", "motorbike", 3), ("29X504899", "motorbike", 6), ("51F86988", "one_line", 22)],
)
def test_a_closer_look_finds_a_small_plate_in_a_frame_where_nothing_was_read(
    recognizer: PlateRecognizer, text: str, layout: str, seed: int
) -> None:
    """A 1280x720 frame is halved for the detector: a small plate there may read nothing. Then the
    frame is looked at again at full size (real street photos: 7 -> 17 of 28 legible plates)."""
    image, _ = render_scene([(text, layout, "white")], rng=np.random.default_rng(seed), style="test",
                            occlusion=0.0, glare=0.0, plate_scale=0.45)  # fmt: skip
    without = copy.copy(recognizer)
    without._closer_detector = copy.copy(recognizer._closer_detector)
    without._closer_detector.detect_small = lambda *args, **kwargs: []  # type: ignore[method-assign]
    assert text not in [p.text for p in without.recognize(image)]
    assert [p.text for p in recognizer.recognize(image)] == [text]


def test_the_closer_look_uses_its_own_detector_where_the_models_have_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``street_detector.onnx`` (fine-tuned on street clutter) serves the closer look only; a
    models folder without it (a candidate being measured) looks closer with the detector."""
    frame = np.full((720, 1280, 3), 90, np.uint8)  # nothing read: the default looks closer
    looked: list[PlateDetector] = []
    detect_small = PlateDetector.detect_small
    monkeypatch.setattr(PlateDetector, "detect_small", lambda self, *args, **kwargs: looked.append(self)
                        or detect_small(self, *args, **kwargs))  # fmt: skip
    for name in ("detector", "reader", "refiner", "street_detector"):
        (tmp_path / f"{name}.onnx").symlink_to(MODELS_DIR / f"{name}.onnx")
    (tmp_path / "calibration.json").symlink_to(MODELS_DIR / "calibration.json")
    with_street = PlateRecognizer.load(models_dir=tmp_path)
    assert with_street.recognize(frame) == []
    (tmp_path / "street_detector.onnx").unlink()
    without = PlateRecognizer.load(models_dir=tmp_path)
    assert without.recognize(frame) == []
    assert len(looked) == 2
    assert looked[0] is with_street._closer_detector and looked[0] is not with_street._detector
    assert looked[1] is without._detector


@pytest.mark.parametrize("seed", [2, 9])
def test_a_street_camera_looks_closer_for_far_plates_beside_a_near_one_read_sure(
    recognizer: PlateRecognizer, seed: int
) -> None:
    """A near plate read sure stops the default (``unsure``) from looking for small ones; a street
    camera's ``always`` finds the far motorbike too, and ``never`` reads only what the first look
    found. A camera's own setting, given with the image, overrides the recogniser's."""
    rng = np.random.default_rng(seed)
    near, _ = render_scene([("51F86988", "one_line", "white")], size=(640, 720), rng=rng, style="test",
                           occlusion=0.0, glare=0.0, plate_scale=2.0)  # fmt: skip
    far, _ = render_scene([("29X504899", "motorbike", "white")], size=(640, 720), rng=rng, style="test",
                          occlusion=0.0, glare=0.0, plate_scale=0.9)  # fmt: skip
    frame = np.ascontiguousarray(np.hstack([near, far]))
    read = {}
    for mode in LookCloser:
        policy = copy.copy(recognizer)
        policy.look_closer = mode
        read[mode] = [p.text for p in policy.recognize(frame)]
        other = LookCloser.NEVER if mode == LookCloser.ALWAYS else LookCloser.ALWAYS
        policy.look_closer = other
        assert [p.text for p in policy.recognize(frame, look_closer=mode)] == read[mode]
    assert read[LookCloser.NEVER] == read[LookCloser.UNSURE] == ["51F86988"]
    assert sorted(read[LookCloser.ALWAYS]) == ["29X504899", "51F86988"]
    never = copy.copy(recognizer)
    never.look_closer = LookCloser.NEVER
    assert never.recognize(np.ascontiguousarray(np.hstack([np.full_like(near, 90), far]))) == []


@pytest.mark.parametrize(
    ("size", "width", "confidence", "looks"),
    [
        ((1280, 720), 70, 0.6, True),  # 35 px at the input: plates further away are past its reach
        ((1268, 732), 70, 0.6, True),  # a street photo the input shrinks a little less than half
        ((1280, 720), 160, 0.6, False),  # a checkpoint's plate read unsure: far ones are not likely
        ((1280, 720), 70, 0.95, False),  # read sure
        ((1920, 1080), 160, 0.6, True),  # the input shrinks the frame to a third
    ],
)
def test_the_default_looks_closer_where_an_unsure_plate_is_near_the_detectors_limit(
    recognizer: PlateRecognizer, size: tuple[int, int], width: int, confidence: float, looks: bool
) -> None:
    """``unsure`` looks closer at a frame with no sure read where a plate read is narrower than
    twice the smallest the detector finds at its input: small plates read unsure are a street
    camera's, with plates further away that only the closer look finds (real street photos,
    47 -> 50 of 64 plates read)."""
    frame = np.zeros((size[1], size[0], 3), np.uint8)
    read = PlateResult("51F86988", "51F-869.88", confidence, "one_line", "white", "51", True,
                       (300, 400, width, width // 4), [], [("51F86988", confidence)])  # fmt: skip
    assert recognizer._looks_closer(LookCloser.UNSURE, frame, [read], confidence) is looks
    assert recognizer._looks_closer(LookCloser.ALWAYS, frame, [read], confidence)
    assert not recognizer._looks_closer(LookCloser.NEVER, frame, [read], confidence)


@pytest.mark.parametrize(
    ("score", "confidence", "looks"), [(0.4, 0.99, True), (0.4, 0.6, True), (0.8, 0.99, False)]
)
def test_the_default_looks_closer_where_a_plate_was_found_only_just(
    recognizer: PlateRecognizer, score: float, confidence: float, looks: bool
) -> None:
    """A plate read from a detection under the clear score (0.5), even read sure, makes ``unsure``
    look closer: the detector scores that scene's plates near its cut, so others may lie under it
    (a real street frame's near plate scored 0.33 and read 1.00, and the far one was missed)."""
    frame = np.zeros((720, 1280, 3), np.uint8)
    read = PlateResult("51F86988", "51F-869.88", confidence, "one_line", "white", "51", True,
                       (300, 400, 160, 40), [], [("51F86988", confidence)],
                       detection_score=score)  # fmt: skip
    assert recognizer._looks_closer(LookCloser.UNSURE, frame, [read], confidence) is looks
    assert not recognizer._looks_closer(LookCloser.NEVER, frame, [read], confidence)


@pytest.mark.parametrize(("gain", "offset", "seed"), [(0.35, 0, 30), (0.5, 100, 8)], ids=["dark", "hazy"])
def test_plates_in_a_street_frame_of_narrow_levels_are_found(
    recognizer: PlateRecognizer, gain: float, offset: float, seed: int
) -> None:
    """A frame whose levels span a narrow range is stretched for the detector: in these street
    frames, at a third of their levels or at half their contrast, a plate was never detected
    (real street photos changed the same ways: 37 -> 48 and 42 -> 49 of 64 plates read)."""
    plates = [("51F86988", "one_line", "white"), ("29X504899", "motorbike", "yellow"),
              ("30F78286", "two_line", "white")]  # fmt: skip
    image, _ = render_scene(plates, rng=np.random.default_rng(seed), style="test", occlusion=0.0, glare=0.0,
                            street=1.0)  # fmt: skip
    narrow = np.clip(image.astype(np.float32) * gain + offset, 0, 255).astype(np.uint8)
    assert sorted(r.text for r in recognizer.recognize(narrow)) == sorted(text for text, _, _ in plates)


@pytest.mark.parametrize(
    ("text", "layout", "seed"), [("17Z72887", "one_line", 0), ("62D46404", "two_line", 1)]
)
def test_a_plate_cut_by_the_frame_edge_is_never_read_sure(
    recognizer: PlateRecognizer, text: str, layout: str, seed: int
) -> None:
    """A vehicle entering the view shows part of its plate, which reads as a shorter valid plate
    (``17Z7288``: four-digit serials exist) and was reported at 0.997; the same plate wholly in
    view, however close to the edge, stays sure."""
    image, (truth,) = render_scene([(text, layout, "white")], rng=np.random.default_rng(seed), style="test",
                                   occlusion=0.0, glare=0.0)  # fmt: skip
    left, right = truth.corners[:, 0].min(), truth.corners[:, 0].max()
    whole = recognizer.recognize(np.ascontiguousarray(image[:, : int(right + 0.03 * (right - left))]))
    assert [(p.text, p.confidence >= 0.9) for p in whole] == [(text, True)]
    cut = recognizer.recognize(np.ascontiguousarray(image[:, : int(right - 0.2 * (right - left))]))
    assert cut and all(p.confidence < 0.9 for p in cut)


@pytest.mark.parametrize(
    ("text", "layout", "seed"),
    [("51F86988", "one_line", 3), ("30A12345", "two_line", 1), ("79G179083", "motorbike", 6)],
)
def test_a_plate_with_one_end_hidden_is_never_read_sure(
    recognizer: PlateRecognizer, text: str, layout: str, seed: int
) -> None:
    """Something in front hides one end, and the part in view reads as a shorter valid plate
    (``51F8698``, ``30A2345``, ``79G7908``) that was reported at 0.999: the four-digit serial
    shows the dot of a five-digit one, and the motorbike plate's part in view is too narrow for
    the two-line car plate its text makes it."""
    image, (truth,) = render_scene([(text, layout, "white")], rng=np.random.default_rng(seed), style="test",
                                   occlusion=0.0, glare=0.0)  # fmt: skip
    assert [(p.text, p.confidence >= 0.9) for p in recognizer.recognize(image)] == [(text, True)]
    hide_plate_end(image, truth.corners, np.random.default_rng(seed))
    hidden = recognizer.recognize(image)
    assert hidden and all(p.confidence < 0.9 for p in hidden)


@pytest.mark.parametrize(("text", "layout"), [("52P5688", "one_line"), ("92F0277", "two_line"),
                                              ("29X51234", "motorbike")])  # fmt: skip
def test_whole_plates_with_four_digit_serials_stay_sure(
    recognizer: PlateRecognizer, text: str, layout: str
) -> None:
    for seed in range(4):
        image, _ = render_scene([(text, layout, "white")], rng=np.random.default_rng(seed), style="test",
                                occlusion=0.0, glare=0.0)  # fmt: skip
        assert [(p.text, p.confidence >= 0.9) for p in recognizer.recognize(image)] == [(text, True)], seed


@pytest.mark.parametrize("layout", ["two_line", "motorbike"])
@pytest.mark.parametrize("text", ["30F78286", "75U82787"])
def test_a_text_both_two_row_layouts_fit_is_laid_out_as_its_rows_were_read(
    recognizer: PlateRecognizer, text: str, layout: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``30F78286`` is ``30F`` over ``782.86`` on a car, ``30-F7`` over ``8286`` on a motorbike. Real
    two-line car plates are often about as square as a motorbike's (seen on street photos), so
    the characters read in the top row decide, not the outline's aspect."""
    monkeypatch.setitem(PLATE_SIZES_MM, Layout.TWO_LINE, (240, 175))  # as square as a motorbike plate
    for seed in range(3):
        image, _ = render_scene([(text, layout, "white")], rng=np.random.default_rng(seed), style="test",
                                occlusion=0.0, glare=0.0)  # fmt: skip
        assert [(p.text, p.layout) for p in recognizer.recognize(image)] == [(text, layout)], seed


class _StrayRefiner:
    """A corner refiner gone astray: every plate's corners moved three plate heights down (as the
    real one, which never saw hard shadows, can move them to a shadow's edge or a grille)."""

    def refine_steps(
        self, grey: np.ndarray, quads: list[np.ndarray], *, passes: int = 2
    ) -> list[list[np.ndarray]]:
        moved = [q + np.array([0, 3 * np.ptp(q[:, 1])], np.float32) for q in quads]
        return [moved] * passes


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_clear_detection_is_read_at_its_own_corners_when_refined_ones_read_nothing(
    recognizer: PlateRecognizer, layout: str
) -> None:
    stray = copy.copy(recognizer)
    stray._refiner = _StrayRefiner()  # type: ignore[assignment]  # a test double for a failure mode
    for seed in (0, 3):
        spec = _spec(np.random.default_rng(seed), layout, "white")
        rng = np.random.default_rng(seed)
        image, _ = render_scene([spec], rng=rng, style="test", occlusion=0.0, glare=0.0)
        assert [p.text for p in stray.recognize(image)] == [spec.text], seed


def test_crowded_street_photos(recognizer: PlateRecognizer) -> None:
    """Eight motorbikes side by side in a 1920x1080 photo: plates beyond the six best detections
    are read too (18 of these 24 plates were read while six was the limit, 23 after;
    over three seeds 15-18 before, 19-23 after)."""
    rng = np.random.default_rng(93)
    right = 0
    for _ in range(3):
        specs = [random_plate_spec(rng) for _ in range(8)]
        image, _ = render_scene(specs, size=(1920, 1080), rng=rng, style="test", plate_scale=3.0)
        texts = {p.text for p in recognizer.recognize(image)}
        right += sum(spec.text in texts for spec in specs)
    assert right >= 21, right


def test_portrait_photos(recognizer: PlateRecognizer) -> None:
    """A phone held upright (1080x1920) is seen on an upright canvas at a third of its size; its
    small plates are looked for again at twice that. A false detection that read nothing used to
    hide them: 8 of these 12 were read before 2026-12-05, 10 after (over four seeds 6-8 before,
    9-11 after)."""
    rng = np.random.default_rng(61)
    right = 0
    for index in range(12):
        spec = random_plate_spec(rng)
        image, _ = render_scene([spec], size=(1080, 1920), rng=rng, style="test", night=index % 4 == 0)
        right += spec.text in [p.text for p in recognizer.recognize(image)]
    assert right >= 9, right


def test_a_small_plate_in_a_portrait_photo_is_found(recognizer: PlateRecognizer) -> None:
    """A motorbike plate 41 px wide in a 1080x1920 photo: on a landscape canvas the detector saw it
    8 px wide and its closer look 16 px, under the narrowest it finds; upright, 14 and 27 px."""
    rng = np.random.default_rng(14)
    spec = random_plate_spec(rng)
    image, _ = render_scene([spec], size=(1080, 1920), rng=rng, style="test", occlusion=0.0)
    assert spec.text == "73R57745"
    assert spec.text in [p.text for p in recognizer.recognize(image)]


@pytest.mark.parametrize(
    "bad",
    [
        "not an image",
        None,
        np.zeros((0, 0, 3), np.uint8),
        np.zeros((10, 0), np.uint8),
        np.zeros((20, 20, 3), np.float32),
        np.zeros((20, 20, 5), np.uint8),
        np.zeros((2, 2, 2, 2), np.uint8),
        np.broadcast_to(np.zeros(1, np.uint8), (20000, 20000, 3)),  # a view: no memory is allocated
        np.zeros((40000, 16, 3), np.uint8),  # a side over what OpenCV's warps take
    ],
)
def test_garbage_input_is_a_clear_error(recognizer: PlateRecognizer, bad: object) -> None:
    with pytest.raises(ImageError):
        recognizer.recognize(bad)  # type: ignore[arg-type]
    with pytest.raises(ImageError):
        recognizer.read_crop(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("shape", [(1, 1), (3, 900), (1, 2000), (2000, 1), (10, 20000), (20000, 10)])
def test_slivers_of_images_read_no_plate(recognizer: PlateRecognizer, shape: tuple[int, int]) -> None:
    """Images a pixel or a few high or wide crashed the detector's resize and the crop's warp."""
    sliver = np.full((*shape, 3), 128, np.uint8)
    assert recognizer.recognize(sliver) == []
    assert recognizer.read_crop(sliver) is None


def test_tiny_and_grey_images_do_not_crash(recognizer: PlateRecognizer) -> None:
    grey = np.full((720, 1280), 128, np.uint8)
    assert recognizer.recognize(grey) == []


def test_warming_up_runs_every_network_the_first_frames_need(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first frame that looks closer was charged about 40 ms more (onnxruntime's set-up of the
    closer look's network) until warm_up looked closer too."""
    recognizer = PlateRecognizer.load()
    shapes: list[tuple[int, ...]] = []

    def recording(run):  # noqa: ANN001, ANN202 - a network's _maps, and it with the canvas shapes kept
        return lambda canvas: shapes.append(canvas.shape) or run(canvas)

    for network in {recognizer._detector, recognizer._closer_detector}:
        monkeypatch.setattr(network, "_maps", recording(network._maps))
    recognizer.warm_up()
    assert (384, 640, 3) in shapes  # the detector's input for a 1280x720 frame
    assert any(shape[1] == 1280 for shape in shapes)  # the closer look's bands


def test_one_instance_is_shared_safely_by_threads(recognizer: PlateRecognizer) -> None:
    rng = np.random.default_rng(8)
    frames = [render_scene([random_plate_spec(rng)], rng=rng, style="test")[0] for _ in range(4)]
    expected = [[r.text for r in recognizer.recognize(f)] for f in frames]
    outcomes: dict[int, list[list[str]]] = {}

    def work(slot: int) -> None:
        outcomes[slot] = [[r.text for r in recognizer.recognize(f)] for f in frames]

    threads = [threading.Thread(target=work, args=(slot,)) for slot in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(outcome == expected for outcome in outcomes.values())


@pytest.mark.parametrize("size", [(1280, 720), (640, 360)])
def test_a_whole_scene_given_as_a_crop_gives_its_surest_plate(
    recognizer: PlateRecognizer, size: tuple[int, int]
) -> None:
    """Either entry point may get either kind of image: ``read_crop`` of a whole camera frame read
    nothing (its outline, the whole frame, is no plate's), where ``recognize`` reads the plate; a
    scene of crop size (up to 800 px) had not been looked at as a frame at all."""
    scene, truths = render_scene([("30E92781", "one_line", "white")], size=size, style="test",
                                 rng=np.random.default_rng(11), occlusion=0.0, glare=0.0)  # fmt: skip
    [expected] = recognizer.recognize(scene)
    assert expected.text == truths[0].text
    found = recognizer.read_crop(scene)
    assert found is not None
    assert (found.text, found.bbox, found.confidence) == (expected.text, expected.bbox, expected.confidence)
