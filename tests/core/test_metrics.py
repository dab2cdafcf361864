"""The metrics ioc.metrics computes itself (the rest is prometheus_client's own)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

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


def test_a_camera_silent_since_before_the_start_is_aged_from_its_last_sighting() -> None:
    """A worker reported only the cameras it had heard from since it started: after a rollout, a
    camera already silent had no age at all, and IOCCameraOffline resolved and stayed quiet.
    Registered cameras are aged from their stored last sighting (or registration) until this
    process hears from them; what it hears itself always wins."""
    registry = CollectorRegistry()
    cameras = CameraLastSeen()
    registry.register(cameras)
    now = datetime.now(UTC)
    cameras.seen("HEARD")
    cameras.seed({"SILENT": now - timedelta(minutes=20), "HEARD": now - timedelta(hours=1)})
    silent = registry.get_sample_value(cameras.name, {"camera": "SILENT"})
    assert silent is not None and 1199 <= silent <= 1205
    assert registry.get_sample_value(cameras.name, {"camera": "HEARD"}) < 5
    cameras.seed({"SILENT": now})  # a later look at the registry never ages a camera back
    assert registry.get_sample_value(cameras.name, {"camera": "SILENT"}) >= silent


@pytest.mark.parametrize(("confidence", "band"), [
    (1.0, "high"), (0.9, "high"), (0.8999, "medium"), (0.6, "medium"), (0.5999, "low"), (0.0, "low"),
])
def test_confidence_bands(confidence: float, band: str) -> None:
    assert confidence_band(confidence) == band
