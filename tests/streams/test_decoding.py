import uuid
from datetime import UTC, datetime

import pytest

from ioc.schemas import Direction, EdgePlateRead, SensorReading
from streams.decoding import EventRejectedError, decode_event


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "bad_json"),
        (b"{not json", "bad_json"),
        (b"[1, 2, 3]", "bad_json"),
        (b'{"schema_version": 99, "sensor_id": "s"}', "unknown_schema_version"),
        (b'{"schema_version": 1, "sensor_id": "s"}', "invalid_event"),
    ],
)
def test_rejections_are_classified(payload: bytes, reason: str) -> None:
    with pytest.raises(EventRejectedError) as info:
        decode_event(SensorReading, payload)
    assert info.value.reason == reason


def test_round_trip_keeps_bytes_and_time() -> None:
    event = EdgePlateRead(
        camera_id="CP01-CAM1", checkpoint_id="CP01", direction=Direction.IN,
        captured_at=datetime(2026, 11, 22, 8, 30, tzinfo=UTC), text="20A12345",
        confidence=0.93, crop_jpeg=b"\xff\xd8\xff\xe0binary",
    )
    decoded = decode_event(EdgePlateRead, event.to_json())
    assert decoded == event
    assert isinstance(decoded.event_id, uuid.UUID)


def test_naive_capture_time_is_rejected() -> None:
    payload = (
        b'{"sensor_id": "s", "checkpoint_id": "c", "sensor_kind": "qr_checkin",'
        b' "captured_at": "2026-11-22T08:30:00", "value": 1}'
    )
    with pytest.raises(EventRejectedError) as info:
        decode_event(SensorReading, payload)
    assert info.value.reason == "invalid_event"
    assert "captured_at" in info.value.error
