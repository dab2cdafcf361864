"""Versioned event schemas: every Kafka payload is one of these models, as JSON.

Bytes fields (JPEG frames and crops) travel base64-encoded. Each event carries
``schema_version``; a consumer rejects versions it does not know (dead letter),
so producers can be upgraded first. See docs/events.md for examples.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer, model_validator

SCHEMA_VERSION = 1

__all__ = [
    "MAX_NAME_LENGTH",
    "NAME_PATTERN",
    "PRINTABLE",
    "SCHEMA_VERSION",
    "Alert",
    "AlertKind",
    "AlertStatus",
    "CameraFrame",
    "CameraRegistration",
    "DeadLetter",
    "Direction",
    "EdgePlateRead",
    "EdgePlateReadBatch",
    "LookCloserSetting",
    "Name",
    "PlateCandidate",
    "PlateColour",
    "PlateLayout",
    "PlateRead",
    "PlateReadBatch",
    "RegisteredCamera",
    "SensorKind",
    "SensorReading",
    "SensorReadingBatch",
    "Severity",
    "VehicleClass",
    "WatchlistEntry",
    "utcnow",
]


# Standard (RFC 4648 section 4) base64 in JSON, which every client decodes;
# input accepts the URL-safe alphabet too.
Base64Bytes = Annotated[
    bytes, PlainSerializer(lambda b: base64.b64encode(b).decode("ascii"), when_used="json")
]


def utcnow() -> datetime:
    return datetime.now(UTC)


# A capture outside these years came from no camera or sensor of ours, and its extremes
# (year 1, year 9999 west of UTC) break time arithmetic, partitions and serialisation
# downstream; such an event is refused (dead letter) like any other invalid one.
EARLIEST_CAPTURE = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_CAPTURE = datetime(2100, 1, 1, tzinfo=UTC)


# checked by pydantic's core: a Python validator comparing aware datetimes (each with
# its own tzinfo object) was the largest single cost of decoding edge reads
CaptureTime = Annotated[AwareDatetime, Field(ge=EARLIEST_CAPTURE, le=LATEST_CAPTURE)]
# ids and short labels: no control characters (PostgreSQL text refuses NUL; tabs and
# newlines would split log lines and CSV rows)
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
MAX_NAME_LENGTH = 64
# ids are printable and neither blank nor padded: " cam-1" would be another camera than "cam-1"
# to the database and a twin of it on an operator's screen
# One reading's count (a counter's interval, a QR point's check-ins) and an environmental value's
# size: the counts are summed per minute, hour and day in float8, and two readings of 1.7e308 (a
# sensor's "no value" sentinel) had overflowed the sum and refused the refresh of every checkpoint
MAX_COUNT = 100_000
MAX_MAGNITUDE = 1e12
NAME_PATTERN = r"^[^\s\x00-\x1f\x7f]([^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f])?$"
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=NAME_PATTERN)]
# detectors.recognizer.LookCloser's values, spelt out so that the core need not import OpenCV:
# a worker's default (IOC_ANPR_LOOK_CLOSER) and each camera's own setting
LookCloserSetting = Literal["never", "unsure", "always"]


class Direction(StrEnum):
    IN = "in"
    OUT = "out"


class PlateLayout(StrEnum):
    ONE_LINE = "one_line"
    TWO_LINE = "two_line"
    MOTORBIKE = "motorbike"


class PlateColour(StrEnum):
    WHITE = "white"
    YELLOW = "yellow"
    BLUE = "blue"
    RED = "red"
    UNKNOWN = "unknown"


class VehicleClass(StrEnum):
    CAR = "car"
    MOTORBIKE = "motorbike"
    TRUCK = "truck"
    BUS = "bus"
    UNKNOWN = "unknown"


class SensorKind(StrEnum):
    VEHICLE_COUNT = "vehicle_count"
    QR_CHECKIN = "qr_checkin"
    ENVIRONMENT = "environment"


class AlertKind(StrEnum):
    WATCHLIST_HIT = "watchlist_hit"
    CAMERA_OFFLINE = "camera_offline"
    CAMERA_ONLINE = "camera_online"
    FLOW_ANOMALY = "flow_anomaly"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertStatus(StrEnum):
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    ESCALATED = "escalated"
    RESOLVED = "resolved"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


# uuid5 namespace of the ids derived for events that arrive without an event_id
_DERIVED_ID_NAMESPACE = uuid.UUID("0b6f3c1e-63a4-5d0e-9c57-4e2f8a1d7b93")


class _Event(BaseModel):
    """Common envelope: immutable, strict about unknown versions, bytes as base64."""

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        val_json_bytes="base64",
        use_enum_values=False,
    )

    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()

    def with_derived_id(self) -> Self:
        """This event, or, when it came without an ``event_id``, a copy with one derived from
        its content.

        A random id (the default) would differ each time the message is read, so a replayed
        or re-sent message would be stored twice; an id derived from the content is the same
        every time. Two events of identical content (the capture time taken in UTC, whatever
        offset it was written with) are one event, sent twice.
        """
        if "event_id" in self.__pydantic_fields_set__:
            return self
        captured = getattr(self, "captured_at", None)
        utc = self if captured is None else self.model_copy(update={"captured_at": captured.astimezone(UTC)})
        content = utc.model_dump_json(exclude={"event_id"})
        return self.model_copy(update={"event_id": uuid.uuid5(_DERIVED_ID_NAMESPACE, content)})

    @classmethod
    def from_json(cls, payload: bytes | str):  # noqa: ANN206 - returns cls
        return cls.model_validate_json(payload)


class _CameraContext(_Event):
    camera_id: Name
    checkpoint_id: Name
    lane: int = Field(0, ge=0, le=16)
    direction: Direction
    captured_at: CaptureTime


class CameraFrame(_CameraContext):
    """One JPEG frame from a checkpoint camera. Kafka key: camera_id."""

    kind: Literal["camera_frame"] = "camera_frame"
    jpeg: Base64Bytes = Field(min_length=4)
    width: int | None = None
    height: int | None = None


class PlateCandidate(BaseModel):
    model_config = ConfigDict(frozen=True)

    text: str = Field(max_length=16, pattern=PRINTABLE)
    confidence: float = Field(ge=0.0, le=1.0)


class EdgePlateRead(_CameraContext):
    """A plate recognised on the camera itself. Kafka key: camera_id."""

    kind: Literal["edge_plate_read"] = "edge_plate_read"
    text: str = Field(min_length=1, max_length=16, pattern=PRINTABLE)
    confidence: float = Field(ge=0.0, le=1.0)
    candidates: list[PlateCandidate] = Field(default_factory=list, max_length=20)
    vehicle_class: VehicleClass = VehicleClass.UNKNOWN
    crop_jpeg: Base64Bytes | None = None


class SensorReading(_Event):
    """A counter, QR check-in or environmental reading. Kafka key: sensor_id."""

    kind: Literal["sensor_reading"] = "sensor_reading"
    sensor_id: Name
    checkpoint_id: Name
    sensor_kind: SensorKind
    captured_at: CaptureTime
    value: float = Field(allow_inf_nan=False, ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE)
    unit: str = Field("count", max_length=16, pattern=PRINTABLE)
    direction: Direction | None = None
    vehicle_class: VehicleClass | None = None

    @model_validator(mode="after")
    def _a_count_counts(self) -> SensorReading:
        if self.sensor_kind != SensorKind.ENVIRONMENT and not 0 <= self.value <= MAX_COUNT:
            raise ValueError(f"a {self.sensor_kind} value is a count from 0 to {MAX_COUNT}, not {self.value}")
        return self


class PlateRead(_CameraContext):
    """A plate read produced by the system (from a frame or a validated edge read).

    ``read_id`` is derived from the source event, so a replayed source event yields
    the same id and storage stays idempotent; the read's ``event_id`` is its
    ``read_id``, so consumers of the topic can drop a replay too. Kafka key: camera_id.
    """

    kind: Literal["plate_read"] = "plate_read"
    read_id: uuid.UUID
    source: Literal["camera", "edge"]
    source_event_id: uuid.UUID
    text: str
    display: str
    confidence: float = Field(ge=0.0, le=1.0)
    layout: PlateLayout | None = None
    colour: PlateColour = PlateColour.UNKNOWN
    province: str | None = None
    out_of_province: bool | None = None
    bbox: tuple[int, int, int, int] | None = None
    candidates: list[PlateCandidate] = Field(default_factory=list)
    vehicle_class: VehicleClass = VehicleClass.UNKNOWN
    crop_jpeg: Base64Bytes | None = None
    processed_at: AwareDatetime = Field(default_factory=utcnow)

    @staticmethod
    def derive_id(source_event_id: uuid.UUID, index: int) -> uuid.UUID:
        """``uuid.uuid5(source_event_id, f"plate:{index}")``, the same bytes in about
        two thirds of the time (it runs for every edge read)."""
        digest = hashlib.sha1(source_event_id.bytes + b"plate:%d" % index).digest()
        return uuid.UUID(bytes=digest[:16], version=5)

    @classmethod
    def from_fields(cls, **fields: Any) -> PlateRead:
        """A read from values validated elsewhere, every field given.

        ``model_construct`` looks up aliases and defaults field by field, which took
        half the time of normalising an edge read; this only checks that no field is
        missing or unknown, and keeps the fields in declaration order (JSON follows it).
        Given in that order, the arguments become the read's fields as they are.
        """
        if tuple(fields) != _PLATE_READ_FIELDS:
            names = cls.__pydantic_fields__.keys()
            if fields.keys() != names:
                missing, unknown = names - fields.keys(), fields.keys() - names
                raise TypeError(
                    f"PlateRead.from_fields: missing {sorted(missing)}, unknown {sorted(unknown)}")
            fields = {name: fields[name] for name in names}
        read = cls.__new__(cls)
        object.__setattr__(read, "__dict__", fields)
        object.__setattr__(read, "__pydantic_fields_set__", set(_PLATE_READ_FIELDS))
        object.__setattr__(read, "__pydantic_extra__", None)
        object.__setattr__(read, "__pydantic_private__", None)
        return read


_PLATE_READ_FIELDS = tuple(PlateRead.__pydantic_fields__)


class EdgePlateReadBatch(_Event):
    """Several edge reads in one message (a gateway's envelope): far cheaper per read."""

    kind: Literal["edge_plate_read_batch"] = "edge_plate_read_batch"
    reads: list[EdgePlateRead] = Field(min_length=1, max_length=10_000)


class SensorReadingBatch(_Event):
    """Several sensor readings in one message (a gateway's envelope)."""

    kind: Literal["sensor_reading_batch"] = "sensor_reading_batch"
    readings: list[SensorReading] = Field(min_length=1, max_length=10_000)


class PlateReadBatch(_Event):
    """Plate reads of one camera, batched by the worker that produced them."""

    kind: Literal["plate_read_batch"] = "plate_read_batch"
    reads: list[PlateRead] = Field(min_length=1, max_length=10_000)


class Alert(_Event):
    """An operator alert. ``alert_id`` is deterministic for idempotent storage."""

    kind: Literal["alert"] = "alert"
    alert_id: uuid.UUID
    alert_kind: AlertKind
    severity: Severity
    subject: str = Field(description="Plate text, camera id or checkpoint id")
    raised_at: AwareDatetime = Field(default_factory=utcnow)
    captured_at: AwareDatetime | None = None
    checkpoint_id: str | None = None
    camera_id: str | None = None
    read_id: uuid.UUID | None = None
    status: AlertStatus = AlertStatus.NEW
    evidence: dict[str, Any] = Field(default_factory=dict)
    revision: int = Field(
        1, ge=1, description="Moves on with every change of the stored alert: higher is newer. An alert may "
        "be published more than once, and two changes out of order; consumers keep the highest per alert_id")


class WatchlistEntry(BaseModel):
    """A wanted plate (exact or wildcard pattern). Compacted topic key: entry_id."""

    model_config = ConfigDict(frozen=True)

    entry_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    pattern: str = Field(min_length=2, max_length=16)
    reason: str = Field(max_length=500, pattern=r"^[^\x00]*$")  # free text, but never NUL (PostgreSQL)
    priority: int = Field(2, ge=1, le=5, description="1 = highest")
    expires_at: AwareDatetime | None = None
    added_by: str = "system"
    added_at: AwareDatetime = Field(default_factory=utcnow)
    active: bool = True


class CameraRegistration(BaseModel):
    """How a camera is registered: one set of rules for ``ioc cameras add|import``, Helm's
    ``cameras`` values (through ``import``) and ``PUT /api/cameras/{camera_id}``."""

    model_config = ConfigDict(frozen=True)

    checkpoint_id: Name
    expected_interval_s: float = Field(
        60.0, gt=0, le=86_400, description="seconds of silence after which the camera counts as offline"
    )
    look_closer: LookCloserSetting | None = Field(
        None, description="its own look-closer setting; null: the workers' (IOC_ANPR_LOOK_CLOSER)"
    )


class RegisteredCamera(CameraRegistration):
    camera_id: Name


class DeadLetter(BaseModel):
    """A message no agent could process, with the reason and the original bytes."""

    model_config = ConfigDict(val_json_bytes="base64")

    source_topic: str
    partition: int | None = None
    offset: int | None = None
    key: Base64Bytes | None = None
    reason: Literal[
        "bad_json", "unknown_schema_version", "invalid_event", "undecodable_image",
        "unknown_camera", "processing_error",
    ]
    error: str
    payload: Base64Bytes
    payload_truncated: bool = False  # cut to IOC_DEAD_LETTER_MAX_PAYLOAD: not replayable
    dead_at: AwareDatetime = Field(default_factory=utcnow)
