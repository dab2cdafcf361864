"""Synthetic scenes: ground truth, reproducibility, and each kind of damage drawn only when asked."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from detectors.plate_rendering import PLATE_SIZES_MM
from detectors.synthetic import (
    _cast_shadow,
    _composite_bent,
    hide_plate_end,
    render_plate_patch,
    render_scene,
)


@pytest.mark.parametrize("night", [False, True])
def test_render_scene_ground_truth(night: bool) -> None:
    plates = [("51F86988", "one_line", "white"), ("29X504899", "motorbike", "yellow")]
    image, truths = render_scene(plates, rng=np.random.default_rng(3), night=night)
    assert image.shape == (720, 1280, 3) and image.dtype == np.uint8
    assert [t.text for t in truths] == ["51F86988", "29X504899"]
    assert [t.layout for t in truths] == ["one_line", "motorbike"]
    for truth in truths:
        x, y, w, h = truth.bbox
        assert x >= 0 and y >= 0 and x + w <= 1280 and y + h <= 720 and w > 20 and h > 10
        assert truth.corners.shape == (4, 2)
        inside = truth.corners.mean(axis=0)
        assert x <= inside[0] <= x + w and y <= inside[1] <= y + h


def test_render_scene_without_plates_and_reproducible() -> None:
    image, truths = render_scene([], size=(640, 360), rng=np.random.default_rng(1))
    again, _ = render_scene([], size=(640, 360), rng=np.random.default_rng(1))
    assert truths == [] and image.shape == (360, 640, 3)
    assert np.array_equal(image, again)


def test_plate_patch_corners_lie_in_patch() -> None:
    patch, quad = render_plate_patch(("20A12345", "two_line", "blue"), rng=np.random.default_rng(4))
    height, width = patch.shape[:2]
    assert quad.shape == (4, 2)
    assert (quad[:, 0] >= 0).all() and (quad[:, 0] <= width).all()
    assert (quad[:, 1] >= 0).all() and (quad[:, 1] <= height).all()


def test_plates_seen_from_above_look_flatter() -> None:
    """``max_pitch``: a camera looking down shortens a plate's height (by cos(pitch)), not its width."""

    def aspects(max_pitch: float) -> list[float]:
        shapes = []
        for seed in range(40):  # a seed per plate: each plate's other draws are the same at both pitches
            _, quad = render_plate_patch(("51F86988", "one_line", "white"), rng=np.random.default_rng(seed),
                                         plate_width=200.0, max_pitch=max_pitch)  # fmt: skip
            width = np.linalg.norm(quad[1] - quad[0]) + np.linalg.norm(quad[2] - quad[3])
            height = np.linalg.norm(quad[3] - quad[0]) + np.linalg.norm(quad[2] - quad[1])
            shapes.append(width / height)
        return shapes

    level, above = np.array(aspects(0.2)), np.array(aspects(0.8))
    mm_w, mm_h = PLATE_SIZES_MM["one_line"]
    assert abs(np.median(level) - mm_w / mm_h) < 0.5
    flatter = above / level  # pitch drawn in [-0.2, 0.8] against [-0.2, 0.2]: 28 % above 0.52 radians
    assert np.mean(flatter > 1.12) >= 0.1 and flatter.max() > 1.2, flatter


def test_camera_overlay_adds_text_and_leaves_the_rest_as_it_was() -> None:
    plates = [("51F86988", "one_line", "white")]
    plain, truths = render_scene(plates, rng=np.random.default_rng(6))
    unset, _ = render_scene(plates, rng=np.random.default_rng(6), overlay=0.0)
    overlaid, overlaid_truths = render_scene(plates, rng=np.random.default_rng(6), overlay=1.0)
    # no overlay draws no random number: seeded sets made before overlays existed stay the same
    assert np.array_equal(plain, unset)
    assert [t.text for t in overlaid_truths] == [t.text for t in truths]
    assert all(np.allclose(a.corners, b.corners) for a, b in zip(truths, overlaid_truths, strict=True))
    # white or yellow text: some pixels far brighter than they were
    brighter = overlaid.astype(int).max(axis=2) - plain.astype(int).max(axis=2)
    assert (brighter > 100).sum() > 200


def test_shadows_and_bends_are_drawn_only_when_asked_and_keep_the_plates_where_they_were() -> None:
    plates = [("51F86988", "one_line", "white"), ("29X504899", "motorbike", "yellow")]
    plain, truths = render_scene(plates, rng=np.random.default_rng(8))
    unset, _ = render_scene(plates, rng=np.random.default_rng(8), shadow=0.0, bend=0.0)
    damaged, damaged_truths = render_scene(plates, rng=np.random.default_rng(8), shadow=1.0, bend=1.0)
    assert np.array_equal(plain, unset)  # none asked for draws no random number: old seeds stay the same
    assert not np.array_equal(plain, damaged)
    assert all(np.allclose(a.corners, b.corners) for a, b in zip(truths, damaged_truths, strict=True))


def test_bare_plates_are_drawn_without_a_vehicle(monkeypatch: pytest.MonkeyPatch) -> None:
    import detectors.synthetic as synthetic

    plates = [("51F86988", "one_line", "white"), ("29X504899", "motorbike", "yellow")]
    plain, truths = render_scene(plates, rng=np.random.default_rng(9))
    unset, _ = render_scene(plates, rng=np.random.default_rng(9), bare=0.0)
    assert np.array_equal(plain, unset)  # none asked for draws no random number: old seeds stay the same
    drawn: list[tuple[int, int, int, int]] = []
    draw_vehicle = synthetic._draw_vehicle
    monkeypatch.setattr(synthetic, "_draw_vehicle", lambda image, box, rng: drawn.append(box)
                        or draw_vehicle(image, box, rng))  # fmt: skip
    render_scene(plates, rng=np.random.default_rng(9))
    assert len(drawn) == 2
    bare, bare_truths = render_scene(plates, rng=np.random.default_rng(9), bare=1.0)
    assert len(drawn) == 2  # no vehicle for either plate
    assert [t.text for t in bare_truths] == [t.text for t in truths]
    assert np.allclose(bare_truths[0].corners, truths[0].corners)  # placed before any vehicle is drawn

@pytest.mark.parametrize("style", ["train", "test"])
def test_a_cast_shadow_darkens_part_of_the_plate_only(style: str) -> None:
    quad = np.array([[300, 80], [500, 80], [500, 130], [300, 130]], np.float32)
    inside = (slice(82, 128), slice(302, 498))
    for seed in range(20):
        image = np.full((240, 800, 3), 200.0, np.float32)
        _cast_shadow(image, quad, np.random.default_rng(seed), style)  # type: ignore[arg-type]
        plate = image[inside][..., 0]
        assert image.max() <= 200.0 and image.min() >= 200.0 * 0.3 - 1e-3
        assert (plate < 200 * 0.7).any() and (plate > 199).any(), seed  # a shadow's edge crosses the plate
        assert (image[:, :90] == 200).all() and (image[:, 710:] == 200).all()  # far from the plate


def _dark_line_row(covered: np.ndarray, x: int) -> float:
    """The middle of the dark line between a light plate's top and bottom edges in column ``x``."""
    rows = np.flatnonzero(covered[:, x])
    return float(np.mean([r for r in range(rows.min(), rows.max()) if not covered[r, x]]))


def test_a_bent_plate_bows_its_rows_and_keeps_its_corners() -> None:
    plate = np.full((100, 200, 3), 255, np.uint8)
    plate[48:53] = 0  # a dark line along the middle row
    quad = np.array([[50, 50], [250, 50], [250, 150], [50, 150]], np.float32)
    for seed in range(10):
        image = np.zeros((220, 300, 3), np.float32)
        _composite_bent(image, plate, quad, np.random.default_rng(seed))
        covered = image[..., 0] > 128
        bow = _dark_line_row(covered, 150) - _dark_line_row(covered, 55)
        assert 4 <= abs(bow) <= 22, (seed, bow)  # 6-20 % of the height at the middle, little at the ends
        assert covered[53, 53] and covered[146, 246] and not covered[45, 45] and not covered[155, 255]


def test_something_in_front_hides_one_end_of_the_plate_and_reaches_past_it() -> None:
    image, (truth,) = render_scene([("17Z72887", "one_line", "white")], rng=np.random.default_rng(4),
                                   occlusion=0.0, glare=0.0)  # fmt: skip
    hidden = image.copy()
    visible = hide_plate_end(hidden, truth.corners, np.random.default_rng(1))
    changed = np.abs(hidden.astype(int) - image).max(axis=2) > 12
    tl, tr, br, bl = truth.corners
    plate_w = np.linalg.norm(tr - tl)
    visible_w = np.linalg.norm(visible[1] - visible[0])
    assert 0.6 * plate_w <= visible_w <= 0.9 * plate_w + 1
    # the visible part is one end of the plate, untouched; the hidden end is covered, above it too
    inside = np.mean(visible, axis=0).round().astype(int)
    assert not changed[inside[1], inside[0]]
    shown_end = visible[[1, 2]] if np.allclose(visible[0], tl) else visible[[0, 3]]
    gone_end = (tr + br) / 2 if np.allclose(visible[0], tl) else (tl + bl) / 2
    near_gone = (gone_end * 0.9 + shown_end.mean(axis=0) * 0.1).round().astype(int)
    assert changed[near_gone[1], near_gone[0]]
    above = (gone_end * 0.9 + shown_end.mean(axis=0) * 0.1 + (tl - bl) * 0.7).round().astype(int)
    assert changed[above[1], above[0]] or not 0 <= above[1] < image.shape[0]


def test_street_clutter_is_drawn_only_when_asked_with_a_vehicle_rear_around_each_plate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import detectors.synthetic as synthetic

    plates = [("51F86988", "one_line", "white"), ("29X504899", "motorbike", "yellow")]
    plain, _ = render_scene(plates, rng=np.random.default_rng(10))
    unset, _ = render_scene(plates, rng=np.random.default_rng(10), street=0.0)
    assert np.array_equal(plain, unset)  # none asked for draws no random number: old seeds stay the same
    rears: list[tuple[np.ndarray, str]] = []
    draw_rear = synthetic.draw_vehicle_rear
    monkeypatch.setattr(synthetic, "draw_vehicle_rear", lambda image, quad, layout, rng: rears.append(
        (quad.copy(), str(layout))) or draw_rear(image, quad, layout, rng))  # fmt: skip
    street, truths = render_scene(plates, rng=np.random.default_rng(10), street=1.0)
    again, _ = render_scene(plates, rng=np.random.default_rng(10), street=1.0)
    assert np.array_equal(street, again)
    assert [t.text for t in truths] == ["51F86988", "29X504899"]
    assert [layout for _, layout in rears] == ["one_line", "motorbike", "one_line", "motorbike"]
    assert all(np.allclose(quad, truth.corners) for (quad, _), truth in zip(rears, truths, strict=False))


def test_dead_leaves_cover_a_flat_frame_with_objects_large_and_small() -> None:
    from detectors.street_clutter import draw_dead_leaves

    image = np.full((288, 512, 3), 120, np.float32)
    draw_dead_leaves(image, np.random.default_rng(11))
    grey = cv2.cvtColor(np.clip(image, 0, 255).astype(np.uint8), cv2.COLOR_BGR2GRAY)
    # edges at the full size (small objects) and at an eighth of it (large ones)
    for size in (grey.shape[::-1], (64, 36)):
        seen = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        assert (cv2.Canny(seen, 20, 40) > 0).mean() > 0.03
    assert grey.std() > 30
