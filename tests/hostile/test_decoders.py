"""Hostile input to every decoder: Kafka event bytes, camera images, plate text and
``*``/``?`` patterns.

Each decoder must give a usable value or a *classified* refusal (a dead-letter
reason, :class:`UndecodableImageError`, ``ValueError``), never another exception,
and must never accept what storage or later stages cannot handle (NaN counts,
NUL bytes, times outside any plausible capture, huge candidate lists).
"""

from __future__ import annotations

import json
import math
import re
import struct
import subprocess
import sys
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from hostile_inputs import BAD_TIMESTAMPS, INJECTIONS, examples
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from detectors import plate_format
from detectors.jpeg import (
    DECODED_PIXELS,
    MAX_PIXELS,
    UndecodableImageError,
    declared_size,
    decode_file,
    decode_image,
    decode_jpeg,
    encode_jpeg,
)
from detectors.recognizer import PlateRecognizer
from detectors.synthetic import render_scene
from ioc.schemas import (
    MAX_COUNT,
    NAME_PATTERN,
    CameraFrame,
    DeadLetter,
    EdgePlateRead,
    SensorReading,
    WatchlistEntry,
)
from ioc.storage.plate_reads import _plate_condition
from ioc.storage.plate_text import normalise_query, plate_skeleton, wildcard_to_like
from ioc.storage.watchlist import normalised_entry
from streams.agents import edge_reads, frames, sensor_readings
from streams.decoding import EventRejectedError
from streams.reads import InvalidPlateTextError, read_from_edge

DEAD_LETTER_REASONS = set(DeadLetter.model_fields["reason"].annotation.__args__)  # type: ignore[union-attr]
DECODE_REASONS = {"bad_json", "unknown_schema_version", "invalid_event"}
# the three raw topics a worker decodes, as the agents decode them
DECODERS: dict[str, Callable[[bytes | None], list[BaseModel]]] = {
    "frames": frames.decode_frame,
    "edge_plate_reads": edge_reads.decoder.decode,
    "sensor_readings": sensor_readings.decoder.decode,
}
EVENT_TYPES = {"frames": CameraFrame, "edge_plate_reads": EdgePlateRead, "sensor_readings": SensorReading}
BATCH_FIELD = {"edge_plate_reads": "reads", "sensor_readings": "readings"}
REPO_ROOT = Path(__file__).resolve().parents[2]
# what storage and the later stages can take: the plausible capture window (ioc.schemas)
EARLIEST, LATEST = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)

_tally: Counter[str] = Counter()


# ----------------------------------------------------------------------------- strategies

_printable_char = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"))
_name = st.text(_printable_char, min_size=1, max_size=64).filter(re.compile(NAME_PATTERN).fullmatch)  # ids
_offsets = st.sampled_from([UTC, timezone(timedelta(hours=7)), timezone(timedelta(hours=-5, minutes=-30))])
_times = st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2099, 1, 1), timezones=_offsets)
_confidence = st.floats(0.0, 1.0)
_jpeg_bytes = st.binary(min_size=4, max_size=64)


def _context() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({
        "event_id": st.uuids(), "camera_id": _name, "checkpoint_id": _name,
        "lane": st.integers(0, 16), "direction": st.sampled_from(["in", "out"]), "captured_at": _times,
    })


def _frame() -> st.SearchStrategy[BaseModel]:
    return st.builds(lambda c, jpeg, w: CameraFrame(**c, jpeg=jpeg, width=w, height=w),
                     _context(), _jpeg_bytes, st.none() | st.integers(1, 4096))


def _edge_read() -> st.SearchStrategy[BaseModel]:
    candidate = st.fixed_dictionaries({"text": st.text(_printable_char, max_size=16),
                                       "confidence": _confidence})
    return st.builds(
        lambda c, text, conf, cands, vc, crop: EdgePlateRead(
            **c, text=text, confidence=conf, candidates=cands, vehicle_class=vc, crop_jpeg=crop),
        _context(), st.text(_printable_char, min_size=1, max_size=16),
        _confidence, st.lists(candidate, max_size=4), st.sampled_from(["car", "motorbike", "unknown"]),
        st.none() | _jpeg_bytes)


def _sensor_reading() -> st.SearchStrategy[BaseModel]:
    return st.builds(
        lambda e, sid, cp, kind, at, value, unit: SensorReading(
            event_id=e, sensor_id=sid, checkpoint_id=cp, sensor_kind=kind, captured_at=at, value=value,
            unit=unit),
        st.uuids(), _name, _name, st.sampled_from(["vehicle_count", "qr_checkin", "environment"]),
        _times, st.floats(0, MAX_COUNT), st.text(_printable_char, max_size=16))


VALID_EVENTS = {"frames": _frame, "edge_plate_reads": _edge_read, "sensor_readings": _sensor_reading}

_hostile_values = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**80), 2**80),
    st.floats(),  # NaN and infinities included; json.dumps writes them as NaN / Infinity tokens
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -0.0, 2**63, -(2**63) - 1]),
    st.text(max_size=40), st.sampled_from(INJECTIONS), st.sampled_from(BAD_TIMESTAMPS),
    st.just("x" * 100_000), st.just("\u0000"), st.just("CP01\u0000"),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
    st.just([[[[[]]]]]),
)


def _encode(document: Any) -> bytes:
    return json.dumps(document, allow_nan=True).encode()


def _envelope(events: list[dict[str, Any]], field: str) -> dict[str, Any]:
    return {"kind": "batch", field: events}


# ----------------------------------------------------------------------------- helpers


def _decode(topic: str, payload: bytes | None) -> list[BaseModel] | EventRejectedError:
    """The decoder's answer: its events, or its refusal (anything else propagates and fails)."""
    try:
        events = DECODERS[topic](payload)
    except EventRejectedError as exc:
        assert exc.reason in DECODE_REASONS and exc.reason in DEAD_LETTER_REASONS, exc.reason
        assert exc.error, "a refusal says why"
        _tally["refused"] += 1
        return exc
    _tally["accepted"] += 1
    return events


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _assert_storable(topic: str, events: list[BaseModel]) -> None:
    """What an accepted event must be for storage and the later stages to take it."""
    assert events, "a decoder never answers with no events"
    for event in events:
        assert isinstance(event, EVENT_TYPES[topic])
        dumped = event.model_dump(mode="python")
        for text in _strings(dumped):
            assert "\x00" not in text, "PostgreSQL text cannot hold NUL"
        for number in (v for v in dumped.values() if isinstance(v, float)):
            assert math.isfinite(number), "a count or confidence must be a number"
        captured = dumped["captured_at"]
        assert captured.tzinfo is not None and EARLIEST <= captured <= LATEST, captured
        event.model_dump_json()  # and it can be sent on (to plate reads, the dead letter)
    if topic == "edge_plate_reads":
        for event in events:
            try:
                read = read_from_edge(event, home_province="20")  # type: ignore[arg-type]
            except InvalidPlateTextError:
                continue
            assert plate_format.is_valid(read.text) and read.text == plate_format.canonical(read.text)


# ----------------------------------------------------------------------------- event decoders


@pytest.mark.parametrize("topic", DECODERS)
@examples(150)
@given(payload=st.binary(max_size=2048))
def test_arbitrary_bytes_are_refused_with_a_reason(topic: str, payload: bytes) -> None:
    result = _decode(topic, payload)
    if not isinstance(result, EventRejectedError):
        _assert_storable(topic, result)


@pytest.mark.parametrize("topic", DECODERS)
@examples(50)
@given(data=st.data())
def test_valid_events_round_trip(topic: str, data: st.DataObject) -> None:
    events = data.draw(st.lists(VALID_EVENTS[topic](), min_size=1, max_size=3))
    single = _decode(topic, events[0].to_json())
    assert single == [events[0]]
    if topic in BATCH_FIELD:
        field = BATCH_FIELD[topic]
        envelope = {"kind": f"{EVENT_TYPES[topic].model_fields['kind'].default}_batch",
                    field: [json.loads(e.to_json()) for e in events]}
        assert _decode(topic, _encode(envelope)) == events
    _assert_storable(topic, single)  # type: ignore[arg-type]


@pytest.mark.parametrize("topic", DECODERS)
@examples(150)
@given(data=st.data())
def test_mutated_events_decode_or_are_refused(topic: str, data: st.DataObject) -> None:
    """One field of a valid event (or of one event in an envelope) replaced, removed or
    retyped: the decoder keeps its contract whatever the field and the value."""
    document = json.loads(data.draw(VALID_EVENTS[topic]()).to_json())
    target = document
    if topic in BATCH_FIELD and data.draw(st.booleans(), label="in an envelope"):
        document = _envelope([document, json.loads(data.draw(VALID_EVENTS[topic]()).to_json())],
                             BATCH_FIELD[topic])
        target = document[BATCH_FIELD[topic]][data.draw(st.integers(0, 1))]
    key = data.draw(st.sampled_from(sorted(target)), label="field")
    action = data.draw(st.sampled_from(["replace", "remove", "stringify"]), label="action")
    if action == "replace":
        target[key] = data.draw(_hostile_values, label="value")
    elif action == "remove":
        del target[key]
    else:
        target[key] = json.dumps(target[key])
    result = _decode(topic, _encode(document))
    if not isinstance(result, EventRejectedError):
        _assert_storable(topic, result)


def _structural_attacks(topic: str) -> dict[str, bytes | None]:
    valid = _example_document(topic)
    text = json.dumps(valid)
    attacks: dict[str, bytes | None] = {
        "none": None,
        "empty": b"",
        "whitespace": b" \n\t ",
        "null": b"null",
        "array": b"[]",
        "deep arrays": b"[" * 100_000 + b"]" * 100_000,
        "deep objects": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        "deep inside a field": text[:-1].encode() + b', "extra": ' + b"[" * 20_000 + b"]" * 20_000 + b"}",
        "5 MB string field": _encode({**valid, "checkpoint_id": "C" * 5_000_000}),
        "5 MB unknown field": _encode({**valid, "padding": "p" * 5_000_000}),
        "utf-16": text.encode("utf-16"),
        "utf-8 bom": b"\xef\xbb\xbf" + text.encode(),
        "latin-1 bytes in a string": text.replace('"in"', '"\xe9"').encode("latin-1"),
        "lone surrogate escape": _encode({**valid, _id_field(topic): "CP\ud800"}),
        "nul escape in an id": _encode({**valid, _id_field(topic): "CP\u0000"}),
        "raw nul after the object": text.encode() + b"\x00",
        "trailing garbage": text.encode() + b"}}",
        "two objects": (text + text).encode(),
        "duplicate keys": text[:-1].encode() + b', "schema_version": 2}',
        "schema version 2": _encode({**valid, "schema_version": 2}),
        "schema version as a string": _encode({**valid, "schema_version": "1"}),
        "NaN token": text.replace('"captured_at"', '"nan_field": NaN, "captured_at"').encode(),
        "captured_at NaN": text.replace(json.dumps(valid["captured_at"]), "NaN").encode(),
        "captured_at year 0": _encode({**valid, "captured_at": "0000-01-01T00:00:00Z"}),
        "captured_at year 1 ahead of UTC": _encode({**valid, "captured_at": "0001-01-01T00:00:00+14:00"}),
        "captured_at year 9999 behind UTC": _encode({**valid, "captured_at": "9999-12-31T23:59:59-23:59"}),
        "captured_at 1970": _encode({**valid, "captured_at": "1970-01-01T00:00:00Z"}),
        "epoch seconds as the capture time": _encode({**valid, "captured_at": 1_700_000_000}),
        "captured_at 1e309": text.replace(json.dumps(valid["captured_at"]), "1e309").encode(),
        "huge integer": _encode({**valid, "value" if topic == "sensor_readings" else "lane": 10**400}),
    }
    if topic in BATCH_FIELD:
        field = BATCH_FIELD[topic]
        attacks |= {
            "empty envelope": _encode(_envelope([], field)),
            "envelope over 10,000": _encode(_envelope([valid] * 10_001, field)),
            "envelope of nulls": _encode(_envelope([None, None], field)),
            "envelope field a string": _encode({field: "x" * 1000}),
            "nested envelopes": _encode(_envelope([_envelope([valid], field)], field)),
            "marker in a string": _encode({**valid, _id_field(topic): f'"{field}"'}),
        }
    if topic == "edge_plate_reads":
        candidate = {"text": "30A12345", "confidence": 0.5}
        attacks["100,000 candidates"] = _encode({**valid, "candidates": [candidate] * 100_000})
        attacks["candidate text 100 kB"] = _encode({**valid, "candidates": [{"text": "3" * 100_000,
                                                                              "confidence": 0.5}]})
        attacks["crop not base64"] = _encode({**valid, "crop_jpeg": "!!!not base64!!!"})
    if topic == "sensor_readings":
        value = '"value": ' + json.dumps(valid["value"])
        attacks |= {f"value {token}": text.replace(value, f'"value": {token}').encode()
                    for token in ("NaN", "Infinity", "-Infinity", "1e999", "1.7e308", "-5", "100001")}
    if topic == "frames":
        attacks["jpeg 4 MB of base64"] = _encode({**valid, "jpeg": "A" * 4_000_000})
        attacks["jpeg not base64"] = _encode({**valid, "jpeg": "\u00e9\u00e9\u00e9\u00e9"})
    return attacks


def _id_field(topic: str) -> str:
    return "sensor_id" if topic == "sensor_readings" else "camera_id"


def _example_document(topic: str) -> dict[str, Any]:
    at = datetime(2026, 11, 22, 8, 30, tzinfo=UTC)
    common = {"event_id": str(uuid.uuid4()), "checkpoint_id": "CP01", "captured_at": at}
    event: BaseModel
    if topic == "frames":
        event = CameraFrame(**common, camera_id="CP01-CAM1", direction="in", jpeg=b"\xff\xd8\xff\xe0jpeg")
    elif topic == "edge_plate_reads":
        event = EdgePlateRead(**common, camera_id="CP01-CAM1", direction="in", text="30A-123.45",
                              confidence=0.9, candidates=[{"text": "30A12345", "confidence": 0.9}])
    else:
        event = SensorReading(**common, sensor_id="S1", sensor_kind="vehicle_count", value=3.0)
    return json.loads(event.to_json())


@pytest.mark.parametrize("topic", DECODERS)
def test_oversized_malformed_and_deep_messages(topic: str, reliability_record: Callable[..., None]) -> None:
    """The classic attacks, each named: every one is refused with a reason or decodes to
    something storable, and none raises anything else (RecursionError, MemoryError...)."""
    outcomes: dict[str, str] = {}
    for name, payload in _structural_attacks(topic).items():
        result = _decode(topic, payload)
        if isinstance(result, EventRejectedError):
            outcomes[name] = result.reason
        else:
            _assert_storable(topic, result)
            outcomes[name] = "accepted"
    must_refuse = [n for n in outcomes if n.startswith((
        "captured_at", "value ", "deep", "5 MB string", "utf-16", "nul escape", "envelope", "empty", "none",
        "null", "100,000", "candidate text", "schema version", "huge", "jpeg not", "crop not", "lone"))]
    assert not [n for n in must_refuse if outcomes[n] == "accepted"], outcomes
    assert outcomes.get("schema version 2") == "unknown_schema_version"
    assert outcomes["5 MB unknown field"] == "accepted", "unknown fields are ignored (forward compatible)"
    reliability_record(area="hostile", inputs=f"{len(outcomes)} malformed {topic} messages (deep nesting, "
                       "5 MB fields, bad encodings, NaN, bad times, oversized envelopes)",
                       outcome=f"{sum(v != 'accepted' for v in outcomes.values())} refused with a reason, "
                       f"{sum(v == 'accepted' for v in outcomes.values())} decoded, 0 exceptions",
                       stored_wrongly=0)


# ----------------------------------------------------------------------------- images


def _png(width: int, height: int, pixels: bytes = b"") -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(pixels))
            + chunk(b"IEND", b""))


def _jpeg_claiming(width: int, height: int, *, progressive: bool = False) -> bytes:
    """A real 16x16 JPEG (baseline or progressive) whose frame header claims ``width`` x ``height``."""
    options = [cv2.IMWRITE_JPEG_QUALITY, 85, cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive)]
    ok, buffer = cv2.imencode(".jpg", np.full((16, 16, 3), 128, np.uint8), options)
    assert ok
    data = bytearray(buffer.tobytes())
    at = data.index(b"\xff\xc2" if progressive else b"\xff\xc0")
    data[at + 5:at + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.fixture(scope="module")
def scene_jpeg() -> bytes:
    """A frame the recogniser reads (so damage reaches the detector and reader, not just the decoder)."""
    image, _ = render_scene([("30A12345", "one_line", "white")], size=(960, 540),
                            rng=np.random.default_rng(0), occlusion=0, glare=0)
    return encode_jpeg(image)


@pytest.fixture(scope="module")
def recognizer() -> PlateRecognizer:
    return PlateRecognizer.load(home_province="20")


def _frame_path(recognizer: PlateRecognizer, data: bytes) -> str:
    """What the frames agent does with a frame's bytes (streams.recognition_pool), as an outcome."""
    try:
        image = decode_jpeg(data)
    except UndecodableImageError as exc:
        assert str(exc)
        _tally["frames refused"] += 1
        return "undecodable_image"
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.shape[0] * image.shape[1] <= MAX_PIXELS
    for plate in recognizer.recognize(image):
        assert 0.0 <= plate.confidence <= 1.0
    _tally["frames recognised"] += 1
    return "recognised"


@examples(60)
@given(data=st.binary(max_size=4096))
def test_arbitrary_bytes_as_a_frame(recognizer: PlateRecognizer, data: bytes) -> None:
    assert _frame_path(recognizer, data) in ("undecodable_image", "recognised")


@examples(40)
@given(data=st.data())
def test_damaged_jpeg_and_png_frames(
    recognizer: PlateRecognizer, scene_jpeg: bytes, data: st.DataObject
) -> None:
    """A real frame cut short, bit-flipped or with bytes overwritten: refused or recognised."""
    assert [p.text for p in recognizer.recognize(decode_jpeg(scene_jpeg))] == ["30A12345"]
    source = data.draw(st.sampled_from(["jpeg", "png"]))
    raw = scene_jpeg if source == "jpeg" else _png(8, 8, b"".join(b"\x00" + b"\x80" * 24 for _ in range(8)))
    # positions from a Random seeded by hypothesis: spread over the file, not bunched at its
    # first bytes as shrink-friendly integers are, so damage reaches the image data
    rnd = data.draw(st.randoms(use_true_random=True))
    damaged = bytearray(raw)
    how = data.draw(st.sampled_from(["truncate", "flip", "overwrite"]))
    if how == "truncate":
        damaged = damaged[: rnd.randrange(len(raw))]
    else:
        for _ in range(rnd.randint(1, 16)):
            at = rnd.randrange(len(raw))
            damaged[at] = damaged[at] ^ (1 << rnd.randrange(8)) if how == "flip" else rnd.randrange(256)
    assert _frame_path(recognizer, bytes(damaged)) in ("undecodable_image", "recognised")


BOMBS = {
    "jpeg 12000x12000": _jpeg_claiming(12000, 12000),
    "jpeg 65000x65000": _jpeg_claiming(65000, 65000),
    "jpeg 0x0": _jpeg_claiming(0, 0),
    "png 12000x12000": _png(12000, 12000, b"\x00" * 1000),
    "png 100000x100000": _png(100_000, 100_000),
    "png 0x0": _png(0, 0),
    "png 2^31x1": _png(2**31 - 1, 1),
    "bmp header 30000x30000": b"BM" + struct.pack("<IHHI", 54, 0, 0, 54) + struct.pack(
        "<IiiHHIIiiII", 40, 30000, 30000, 1, 24, 0, 0, 0, 0, 0, 0),
    "gif 65535x65535": b"GIF89a" + struct.pack("<HH", 65535, 65535) + b"\x00\x00\x00;",
}


@pytest.mark.parametrize("name", BOMBS)
def test_bombs_and_empty_images_are_refused_before_decoding(name: str) -> None:
    size = declared_size(BOMBS[name])
    assert size is None or math.prod(size) == 0 or math.prod(size) > MAX_PIXELS, size
    with pytest.raises(UndecodableImageError):
        decode_jpeg(BOMBS[name])


def test_a_large_sequential_jpeg_is_decoded_scaled_and_a_progressive_one_refused() -> None:
    """libjpeg scales a sequential JPEG while decoding it, so a phone's 48-megapixel photo is
    accepted and decoded at half its sides; a progressive one would hold every coefficient
    at full size, so over MAX_PIXELS it is refused before decoding, like a bomb."""
    sequential = _jpeg_claiming(8000, 6000)
    decoded = decode_image(sequential)
    assert decoded.scale == 2 and decoded.image.shape == (3000, 4000, 3)
    assert decoded.image.shape[0] * decoded.image.shape[1] <= DECODED_PIXELS
    progressive = _jpeg_claiming(8000, 6000, progressive=True)
    assert declared_size(progressive) == (8000, 6000)
    with pytest.raises(UndecodableImageError, match="too large"):
        decode_image(progressive)
    small = decode_image(encode_jpeg(np.zeros((720, 1280, 3), np.uint8)))
    assert small.scale == 1 and small.image.shape == (720, 1280, 3)


def test_a_photo_decoded_scaled_down_knows_the_files_size_as_shown(tmp_path: Path) -> None:
    """libjpeg rounds a halved odd side up: a box found in the decoded image, times its scale, could
    end a pixel past the photo's edge unless cut to the photo's size, turned as its EXIF turns it."""
    from PIL import Image

    image = np.zeros((4301, 4001, 3), np.uint8)  # 17.2 MP, over DECODED_PIXELS: decoded at half
    cv2.imwrite(str(tmp_path / "odd.jpg"), image)
    decoded = decode_file(tmp_path / "odd.jpg")
    assert decoded is not None and decoded.image.shape[:2] == (2151, 2001) and decoded.scale == 2
    assert decoded.size == (4001, 4301)
    exif = Image.Exif()
    exif[0x0112] = 6  # turn 90 degrees clockwise to display
    Image.fromarray(image).save(tmp_path / "turned.jpg", exif=exif.tobytes())
    turned = decode_file(tmp_path / "turned.jpg")
    assert turned is not None and turned.image.shape[:2] == (2001, 2151) and turned.size == (4301, 4001)
    cv2.imwrite(str(tmp_path / "squarish.png"), np.zeros((4100, 4101, 3), np.uint8))  # decoded 2050x2050
    squarish = decode_file(tmp_path / "squarish.png")
    assert squarish is not None and squarish.image.shape[:2] == (2050, 2050) and squarish.size == (4101, 4100)


def test_image_files_are_decoded_like_their_bytes(tmp_path: Path) -> None:
    """:func:`decode_file` leaves reading the file to OpenCV, under the same limits as the bytes:
    a PNG over DECODED_PIXELS is decoded at half its sides, one over MAX_PIXELS is refused, a JPEG
    whose frame header lies past the first bytes read is still sized, and other files are not
    taken for JPEG or PNG."""
    image = np.zeros((3000, 6000, 3), np.uint8)  # 18 MP
    image[1000:2000, 2000:4000] = (0, 128, 255)
    cv2.imwrite(str(tmp_path / "large.png"), image)
    decoded = decode_file(tmp_path / "large.png")
    assert decoded is not None and decoded.scale == 2 and decoded.image.shape == (1500, 3000, 3)
    assert decoded.image[750, 1500].tolist() == [0, 128, 255]

    (tmp_path / "huge.png").write_bytes(_png(6000, 4001, b"\x00" * 1000))
    with pytest.raises(UndecodableImageError, match="too large"):
        decode_file(tmp_path / "huge.png")

    jpeg = encode_jpeg(np.full((48, 64, 3), 200, np.uint8))
    comment = b"\xff\xfe" + struct.pack(">H", 65535) + b"c" * 65533  # COM segments before the frame header
    (tmp_path / "late.jpg").write_bytes(jpeg[:2] + comment * 5 + jpeg[2:])
    late = decode_file(tmp_path / "late.jpg")
    assert late is not None and late.scale == 1 and late.image.shape == (48, 64, 3)

    (tmp_path / "notes.txt").write_text("not an image")
    assert decode_file(tmp_path / "notes.txt") is None
    (tmp_path / "cut.png").write_bytes(cv2.imencode(".png", image[:64, :64])[1].tobytes()[:40])
    with pytest.raises(UndecodableImageError):
        decode_file(tmp_path / "cut.png")


_MEMORY_PROBE = """
import resource, sys
from detectors.jpeg import UndecodableImageError, decode_jpeg
import tests_hostile_bombs as bombs
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for data in bombs.BOMBS.values():
    try:
        decode_jpeg(data)
    except UndecodableImageError:
        pass
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def test_bombs_cost_no_memory(tmp_path: Path, reliability_record: Callable[..., None]) -> None:
    """Peak memory of decoding every bomb, in a fresh process: a few MB, not the GB they declare."""
    module = tmp_path / "tests_hostile_bombs.py"
    module.write_text("BOMBS = " + repr(BOMBS) + "\n")
    done = subprocess.run([sys.executable, "-c", _MEMORY_PROBE], capture_output=True, text=True, timeout=120,
                          env={"PYTHONPATH": f"{tmp_path}:{REPO_ROOT}", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    grown_mb = int(done.stdout.split()[-1])
    assert grown_mb < 64, f"decoding the bombs grew the process by {grown_mb} MB"
    reliability_record(area="hostile", inputs=f"{len(BOMBS)} image bombs and empty images (JPEG/PNG headers "
                       "declaring up to 100000x100000, BMP, GIF)",
                       outcome=f"all refused as undecodable_image; peak memory +{grown_mb} MB",
                       stored_wrongly=0)


# ----------------------------------------------------------------------------- plate text and patterns

_any_text = st.text(max_size=40) | st.sampled_from(INJECTIONS)
_pattern_text = st.text(st.sampled_from("0123456789ABCDEFGHKLMNPSTUVXYZĐabcz*?%_-. '\\\x00"), max_size=20)


@examples(400)
@given(text=_any_text | _pattern_text)
def test_plate_text_functions_are_total(text: str) -> None:
    """Grammar and query helpers take any string: no exception, and only safe characters out."""
    canonical = plate_format.canonical(text)
    assert set(canonical) <= set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    plate_format.is_valid(text)
    plate_format.province_of(text)
    plate_format.lookalike_key(text)
    shown = plate_format.display(text)
    if plate_format.is_valid(canonical):
        assert plate_format.canonical(shown) == canonical
    query = normalise_query(text)
    assert set(query) <= set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZĐ*?")
    assert normalise_query(query) == query
    like = wildcard_to_like(text)
    assert not set(like) & set("'\"\\;\x00") and set(like) <= set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZĐ%_")
    assert len(plate_skeleton(query)) == len(query)


SCAN_EVERYTHING = ("*", "**", "?*", "*?", "???", "????????", "*?*?*", "%", "%%", "_", "*-*",
                   "1*", "*1", "?1?", "*12*", "1?2*", "*1*2*3*", "AB*", "%' --", "", "\x00*")


@pytest.mark.parametrize("pattern", SCAN_EVERYTHING)
def test_patterns_that_would_scan_everything_are_refused(pattern: str) -> None:
    """For plate searches and for watchlist entries alike: a clear ValueError."""
    with pytest.raises(ValueError, match="letters or digits"):
        _plate_condition(pattern, False)
    if 2 <= len(pattern) <= 16:
        with pytest.raises(ValueError, match="letters or digits"):
            normalised_entry(WatchlistEntry(pattern=pattern, reason="test"))


@examples(400)
@given(pattern=_pattern_text | _any_text, fuzzy=st.booleans())
def test_pattern_parser_accepts_only_searchable_patterns(pattern: str, fuzzy: bool) -> None:
    """Any string is a searchable pattern or a ValueError; a searchable wildcard pattern has
    a run of three letters or digits (what the trigram index searches by)."""
    try:
        _, params = _plate_condition(pattern, fuzzy)
    except ValueError as exc:
        assert "letters or digits" in str(exc)
        _tally["patterns refused"] += 1
        return
    _tally["patterns accepted"] += 1
    query = params["q"]
    assert query == normalise_query(pattern)
    if "*" in query or "?" in query:
        runs = [run for run in query.replace("?", "*").split("*") if run]
        assert max(map(len, runs)) >= 3, query
    else:
        assert len(query) >= 2


def test_fuzz_figures(reliability_record: Callable[..., None]) -> None:
    """The tally of this module's hypothesis runs (pytest runs them first, in file order)."""
    messages = _tally["accepted"] + _tally["refused"]
    frames = _tally["frames refused"] + _tally["frames recognised"]
    patterns = _tally["patterns refused"] + _tally["patterns accepted"]
    if not messages:
        pytest.skip("run with the other tests of this module to get their figures")
    reliability_record(
        area="hostile",
        inputs=f"{messages:,} generated Kafka messages on 3 topics (arbitrary bytes, mutated and "
               f"retyped fields, valid round trips); {frames:,} arbitrary or damaged frames; "
               f"{patterns:,} plate patterns",
        outcome=f"messages: {_tally['refused']:,} refused with a dead-letter reason, "
                f"{_tally['accepted']:,} decoded; frames: {_tally['frames refused']:,} undecodable_image, "
                f"{_tally['frames recognised']:,} recognised; patterns: {_tally['patterns refused']:,} "
                "refused; 0 unexpected exceptions",
        stored_wrongly=0,
    )
