"""The metrics ioc.metrics computes itself (the rest is prometheus_client's own)."""

from __future__ import annotations

import time

import pytest
from prometheus_client import CollectorRegistry

from ioc.metrics import CameraLastSeen, confidence_band


def test_camera_age_is_computed_when_scraped() -> None:
    registry = CollectorRegistry()
    cameras = CameraLastSeen()
    registry.register(cameras)
    assert registry.get_sample_value(cameras.name, {"camera": "CAM-1"}) is None
    cameras.seen("CAM-1")
    first = registry.get_sample_value(cameras.name, {"camera": "CAM-1"})
    time.sleep(0.05)
    later = registry.get_sample_value(cameras.name, {"camera": "CAM-1"})
    assert first is not None and later is not None and later >= first + 0.05
    cameras.seen("CAM-1")
    assert registry.get_sample_value(cameras.name, {"camera": "CAM-1"}) < later, "a new event resets the age"


@pytest.mark.parametrize(("confidence", "band"), [
    (1.0, "high"), (0.9, "high"), (0.8999, "medium"), (0.6, "medium"), (0.5999, "low"), (0.0, "low"),
])
def test_confidence_bands(confidence: float, band: str) -> None:
    assert confidence_band(confidence) == band
