import json
import uuid
from datetime import UTC, datetime

import pytest

from ioc.schemas import Direction, EdgePlateRead, SensorReading, SensorReadingBatch
from streams.decoding import EventDecoder, EventRejectedError, decode_event


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


def test_an_event_without_an_id_gets_the_same_id_each_time_it_is_read() -> None:
    """A random default id would store a re-sent or replayed message twice."""
    read = {"camera_id": "CP01-CAM1", "checkpoint_id": "CP01", "direction": "in",
            "captured_at": "2026-11-22T08:30:00+07:00", "text": "20A12345", "confidence": 0.9}
    payload = json.dumps(read).encode()
    first, again = decode_event(EdgePlateRead, payload), decode_event(EdgePlateRead, payload)
    assert first.event_id == again.event_id
    other = decode_event(EdgePlateRead, json.dumps(read | {"text": "20A12346"}).encode())
    assert other.event_id != first.event_id
    # the same instant written with another offset is the same event
    utc = decode_event(EdgePlateRead, json.dumps(read | {"captured_at": "2026-11-22T01:30:00Z"}).encode())
    assert utc.event_id == first.event_id
    given = uuid.uuid4()
    assert decode_event(EdgePlateRead, json.dumps(read | {"event_id": str(given)}).encode()).event_id == given


def test_envelope_events_without_ids_get_distinct_stable_ids() -> None:
    decoder = EventDecoder(SensorReading, SensorReadingBatch, "readings")
    given = str(uuid.uuid4())
    readings = [{"sensor_id": "CP01-QR-1", "checkpoint_id": "CP01", "sensor_kind": "qr_checkin",
                 "captured_at": f"2026-11-22T08:30:0{i}Z", "value": 1} for i in range(3)]
    payload = json.dumps({"readings": [*readings, readings[0] | {"event_id": given}]}).encode()
    first, again = decoder.decode(payload), decoder.decode(payload)
    ids = [r.event_id for r in first]
    assert ids == [r.event_id for r in again]
    assert len(set(ids[:3])) == 3 and str(ids[3]) == given
