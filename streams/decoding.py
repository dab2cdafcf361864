"""Turn raw Kafka message bytes into typed events, or a precise rejection reason.

A topic may carry single events or batch envelopes of them (gateways batch to
cut per-message cost); :class:`EventDecoder` returns the events of either.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, Discriminator, Tag, TypeAdapter, ValidationError

E = TypeVar("E", bound=BaseModel)


class EventRejectedError(Exception):
    """A message that can never be processed; it belongs in the dead-letter topic."""

    def __init__(self, reason: str, error: str) -> None:
        super().__init__(f"{reason}: {error}")
        self.reason = reason
        self.error = error


def _classify(exc: ValidationError) -> EventRejectedError:
    errors = exc.errors(include_url=False, include_input=False)
    if any(e["type"] in ("json_invalid", "model_type", "model_attributes_type", "union_tag_invalid")
           for e in errors):
        return EventRejectedError("bad_json", str(errors[0]["msg"]))
    if any("schema_version" in e["loc"] for e in errors):
        return EventRejectedError("unknown_schema_version", "schema_version not supported by this worker")
    summary = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors[:5])
    return EventRejectedError("invalid_event", summary)


def decode_event(model: type[E], payload: bytes | None) -> E:
    """Validate ``payload`` as ``model``, classifying failures for the dead letter."""
    if not payload:
        raise EventRejectedError("bad_json", "empty message")
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        raise _classify(exc) from exc


def _envelope_kind(value: object) -> str:
    if isinstance(value, dict) and ("reads" in value or "readings" in value):
        return "batch"
    return "single"


class EventDecoder(Generic[E]):
    """Decode a message holding one ``single`` event or a ``batch`` envelope of them."""

    def __init__(
        self, single: type[E], batch: type[BaseModel], items: Callable[[BaseModel], list[E]]
    ) -> None:
        self._single, self._items = single, items
        self._adapter = TypeAdapter(
            Annotated[
                Annotated[single, Tag("single")] | Annotated[batch, Tag("batch")],
                Discriminator(_envelope_kind),
            ]
        )

    def decode(self, payload: bytes | None) -> list[E]:
        if not payload:
            raise EventRejectedError("bad_json", "empty message")
        try:
            event = self._adapter.validate_json(payload)
        except ValidationError as exc:
            raise _classify(exc) from exc
        return [event] if isinstance(event, self._single) else self._items(event)
