"""Harsh conditions for synthetic frames do what their names say, in both styles."""

from __future__ import annotations

import numpy as np
import pytest

from detectors import camera_faults
from detectors.synthetic import render_scene

STYLES = ("train", "test")


def _texture(seed: int = 0) -> np.ndarray:
    """A float32 BGR image with detail at every scale, as a scene has."""
    rng = np.random.default_rng(seed)
    return rng.uniform(40, 200, (240, 320, 3)).astype(np.float32)


@pytest.mark.parametrize("style", STYLES)
def test_rain_draws_bright_streaks_that_fall_down_the_frame(style: str) -> None:
    flat = np.full((240, 320, 3), 100.0, np.float32)
    rainy = camera_faults._rain(flat, np.random.default_rng(1), style)[..., 0]  # type: ignore[arg-type]
    streaks = rainy > rainy.min() + 8
    assert 0.002 < streaks.mean() < 0.3
    # a streak pixel's neighbour a few rows down is far likelier a streak than one a few columns along
    down = (streaks[:-3] & streaks[3:]).sum()
    along = (streaks[:, :-3] & streaks[:, 3:]).sum()
    assert down > 2 * along


@pytest.mark.parametrize("style", STYLES)
def test_haze_takes_contrast_away_towards_a_bright_sky(style: str) -> None:
    image = _texture()
    hazy = camera_faults._haze(image, np.random.default_rng(2), style)  # type: ignore[arg-type]
    assert hazy.std() < 0.9 * image.std()
    assert hazy.mean() > image.mean()


@pytest.mark.parametrize("style", STYLES)
def test_sharpening_overshoots_on_both_sides_of_an_edge(style: str) -> None:
    edge = np.full((64, 64, 3), 60.0, np.float32)
    edge[:, 32:] = 180.0
    sharpened = camera_faults._sharpen(edge, np.random.default_rng(3), style)  # type: ignore[arg-type]
    assert sharpened.max() > 190 and sharpened.min() < 50


@pytest.mark.parametrize("style", STYLES)
def test_a_low_bitrate_stream_loses_detail_and_asks_for_heavy_compression(style: str) -> None:
    image = _texture()
    squeezed, quality = camera_faults._low_bitrate(image, np.random.default_rng(4), style)  # type: ignore[arg-type]
    assert squeezed.shape == image.shape
    assert 8 <= quality <= 25
    detail = lambda a: np.abs(np.diff(a, axis=1)).mean()  # noqa: E731
    assert detail(squeezed) < 0.8 * detail(image)


def test_faults_change_the_frame_not_the_plates_and_none_leaves_seeded_frames_as_they_were() -> None:
    plates = [("51F86988", "one_line", "white")]
    plain, truths = render_scene(plates, rng=np.random.default_rng(6), style="test")
    unset, _ = render_scene(plates, rng=np.random.default_rng(6), style="test", faults=0.0)
    harsh, harsh_truths = render_scene(plates, rng=np.random.default_rng(6), style="test", faults=1.0)
    assert np.array_equal(plain, unset)  # no random number drawn at 0: benchmark sets stay the same
    assert not np.array_equal(plain, harsh)
    assert [t.text for t in harsh_truths] == [t.text for t in truths]
    assert all(np.allclose(a.corners, b.corners) for a, b in zip(truths, harsh_truths, strict=True))
