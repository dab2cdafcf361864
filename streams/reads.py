"""Build system plate reads from recogniser results and from edge reads."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from detectors.recognizer import PlateResult

from detectors import plate_format
from ioc import metrics
from ioc.schemas import (
    CameraFrame,
    EdgePlateRead,
    PlateCandidate,
    PlateColour,
    PlateLayout,
    PlateRead,
    VehicleClass,
    utcnow,
)


def reads_from_frame(
    frame: CameraFrame, plates: list[PlateResult], crops_jpeg: list[bytes | None]
) -> list[PlateRead]:
    return [
        PlateRead(
            event_id=(read_id := PlateRead.derive_id(frame.event_id, index)),
            read_id=read_id,
            source="camera",
            source_event_id=frame.event_id,
            camera_id=frame.camera_id,
            checkpoint_id=frame.checkpoint_id,
            lane=frame.lane,
            direction=frame.direction,
            captured_at=frame.captured_at,
            text=plate.text,
            display=plate.display,
            confidence=plate.confidence,
            layout=PlateLayout(plate.layout) if plate.layout else None,
            colour=PlateColour(plate.colour) if plate.colour else PlateColour.UNKNOWN,
            province=plate.province,
            out_of_province=plate.out_of_province,
            bbox=tuple(int(v) for v in plate.bbox),
            candidates=[PlateCandidate(text=t, confidence=c) for t, c in plate.candidates],
            crop_jpeg=crop,
        )
        for index, (plate, crop) in enumerate(zip(plates, crops_jpeg, strict=True))
    ]


def count_reads(reads: Iterable[PlateRead]) -> None:
    """``ioc_plates_read_total`` by source, layout and confidence band: one increment per
    label set, not per read (edge envelopes carry hundreds)."""
    counts = Counter((read.source, read.layout or "unknown", metrics.confidence_band(read.confidence))
                     for read in reads)
    for labels, n in counts.items():
        metrics.PLATES_READ.labels(*labels).inc(n)


class InvalidPlateTextError(ValueError):
    pass


def read_from_edge(
    edge: EdgePlateRead, *, home_province: str, processed_at: datetime | None = None
) -> PlateRead:
    """Validate and normalise an on-camera read into the system's plate read.

    The hot path of edge traffic: every field comes from an already validated
    event, so the read is built without validating it again. An envelope's reads
    share one ``processed_at`` (now, if not given).
    """
    processed_at = processed_at or utcnow()
    # an edge camera sends no layout, but a motorbike's plate has its own (29-X5 1234, not 29X-512.34)
    motorbike = edge.vehicle_class == VehicleClass.MOTORBIKE
    plate = plate_format.parse(edge.text, PlateLayout.MOTORBIKE.value if motorbike else None)
    if plate is None:
        raise InvalidPlateTextError(f"{edge.text!r} is not a Vietnamese plate")
    province = plate.province
    read_id = PlateRead.derive_id(edge.event_id, 0)
    return PlateRead.from_fields(  # in declaration order: the fast path
        schema_version=edge.schema_version,
        event_id=read_id,
        camera_id=edge.camera_id,
        checkpoint_id=edge.checkpoint_id,
        lane=edge.lane,
        direction=edge.direction,
        captured_at=edge.captured_at,
        kind="plate_read",
        read_id=read_id,
        source="edge",
        source_event_id=edge.event_id,
        text=plate.text,
        display=plate.display,
        confidence=edge.confidence,
        layout=None,
        colour=PlateColour.UNKNOWN,
        province=province,
        out_of_province=plate_format.out_of_province(province, home_province),
        bbox=None,
        candidates=[
            PlateCandidate.model_construct(text=plate_format.canonical(c.text), confidence=c.confidence)
            for c in edge.candidates
        ],
        vehicle_class=edge.vehicle_class,
        crop_jpeg=edge.crop_jpeg,
        processed_at=processed_at,
    )
