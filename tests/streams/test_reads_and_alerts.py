import uuid
from datetime import UTC, datetime, timedelta

import pytest

from ioc.schemas import (
    AlertKind,
    Direction,
    EdgePlateRead,
    PlateCandidate,
    PlateRead,
    Severity,
    WatchlistEntry,
)
from ioc.watchlist_matcher import Hit
from streams.reads import InvalidPlateTextError, read_from_edge
from streams.watchlist_alerts import alert_for_hit

NOW = datetime(2026, 11, 22, 8, 30, tzinfo=UTC)


def edge(text: str) -> EdgePlateRead:
    return EdgePlateRead(
        camera_id="CP01-CAM1", checkpoint_id="CP01", direction=Direction.IN,
        captured_at=NOW, text=text, confidence=0.9,
    )


def test_edge_read_is_normalised_and_classified_by_province() -> None:
    read = read_from_edge(edge("29a-123.45"), home_province="20")
    assert read.text == "29A12345"
    assert read.display == "29A-123.45"
    assert read.province == "29" and read.out_of_province is True
    assert read_from_edge(edge("20A12345"), home_province="20").out_of_province is False
    assert read_from_edge(edge("97A12345"), home_province="20").out_of_province is True


def test_a_merged_home_province_has_each_of_its_codes() -> None:
    """Thái Nguyên since 2025: its own plates (20) and those of Bắc Kạn (97) are home."""
    assert read_from_edge(edge("97A12345"), home_province="20,97").out_of_province is False
    assert read_from_edge(edge("20A12345"), home_province="20,97").out_of_province is False
    assert read_from_edge(edge("29A12345"), home_province="20,97").out_of_province is True


def test_an_edge_motorbike_plate_is_shown_as_a_motorbikes_and_keeps_its_d_stroke() -> None:
    """An edge camera sends no layout: a motorbike's old four-digit plate was shown as a car's
    (29X-512.34), and Đ as D (29-MD1 013.53)."""
    motorbike = edge("29X51234").model_copy(update={"vehicle_class": "motorbike"})
    assert read_from_edge(motorbike, home_province="20").display == "29-X5 1234"
    read = read_from_edge(edge("29MĐ101353"), home_province="20")
    assert (read.text, read.display) == ("29MD101353", "29-MĐ1 013.53")


def test_edge_read_is_the_model_validation_would_build() -> None:
    """Edge reads are built without validation (the hot path): they must be exactly
    what validating the same values gives, candidates and crop included."""
    event = edge("51f-869.88").model_copy(update={
        "candidates": [PlateCandidate(text="51F86988", confidence=0.9),
                       PlateCandidate(text="51F-869.86", confidence=0.1)],
        "crop_jpeg": b"\xff\xd8 crop",
    })
    read = read_from_edge(event, home_province="20")
    validated = PlateRead.model_validate(read.model_dump())
    assert read == validated
    assert read.model_dump_json() == validated.model_dump_json()
    assert read.model_fields_set == validated.model_fields_set
    assert [c.text for c in read.candidates] == ["51F86988", "51F86986"]


def test_edge_read_id_is_stable_across_replays() -> None:
    event = edge("20A12345")
    assert read_from_edge(event, home_province="20").read_id == read_from_edge(
        event, home_province="20"
    ).read_id


def test_read_ids_are_uuid5_of_the_source_event() -> None:
    """Stored ids must not change with an upgrade: a replay after it must find its rows."""
    source = uuid.UUID("d5c5908d-2817-481e-b371-834c2b94db26")
    for index in (0, 1, 12):
        assert PlateRead.derive_id(source, index) == uuid.uuid5(source, f"plate:{index}")


def test_a_read_from_fields_needs_every_field() -> None:
    fields = read_from_edge(edge("51F86988"), home_province="20").model_dump()
    with pytest.raises(TypeError, match="missing \\['text'\\]"):
        PlateRead.from_fields(**{k: v for k, v in fields.items() if k != "text"})
    with pytest.raises(TypeError, match="unknown \\['plate'\\]"):
        PlateRead.from_fields(**fields, plate="51F86988")


def test_a_read_from_fields_in_any_order_is_the_same_read() -> None:
    """Fields given in declaration order are used as they are; any other order is rearranged."""
    fields = read_from_edge(edge("51F86988"), home_province="20").model_dump()
    in_order = PlateRead.from_fields(**fields)
    shuffled = PlateRead.from_fields(**dict(reversed(fields.items())))
    assert in_order == shuffled
    assert list(shuffled.__dict__) == list(PlateRead.model_fields)
    assert shuffled.model_dump_json() == in_order.model_dump_json()


def test_edge_read_with_impossible_text_is_refused() -> None:
    for text in ("HELLO", "20I12345", "1"):
        try:
            read_from_edge(edge(text), home_province="20")
        except InvalidPlateTextError:
            continue
        raise AssertionError(f"{text} accepted")


def test_watchlist_hit_alert_is_deterministic_and_carries_evidence() -> None:
    read = read_from_edge(edge("20A12345"), home_province="20")
    entry = WatchlistEntry(pattern="20A12345", reason="stolen", priority=1,
                           expires_at=NOW + timedelta(days=1))
    hit = Hit(entry, "exact", 1.0, read.text)
    first, second = alert_for_hit(read, hit), alert_for_hit(read, hit)
    assert first.alert_id == second.alert_id
    alert = first
    assert alert.alert_kind is AlertKind.WATCHLIST_HIT and alert.severity is Severity.CRITICAL
    assert alert.evidence["entry_id"] == str(entry.entry_id)
    assert alert.evidence["match_kind"] == "exact"
    assert alert.read_id == read.read_id
    assert [s["read_id"] for s in alert.evidence["route"]] == [str(read.read_id)]


def test_plate_read_ids_differ_per_plate_in_a_frame() -> None:
    source = uuid.uuid4()
    assert PlateRead.derive_id(source, 0) != PlateRead.derive_id(source, 1)
