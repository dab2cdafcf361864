"""Turn raw Kafka message bytes into typed events, or a precise rejection reason.

A topic may carry single events or batch envelopes of them (gateways batch to
cut per-message cost); :class:`EventDecoder` returns the events of either.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ValidationError

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


def _with_ids(event: E) -> E:
    """``event`` with its own ``event_id``, or one derived from its content (see ``ioc.schemas``)."""
    derive = getattr(event, "with_derived_id", None)
    return derive() if derive is not None else event


def decode_event(model: type[E], payload: bytes | None) -> E:
    """Validate ``payload`` as ``model``, classifying failures for the dead letter."""
    if not payload:
        raise EventRejectedError("bad_json", "empty message")
    try:
        return _with_ids(model.model_validate_json(payload))
    except ValidationError as exc:
        raise _classify(exc) from exc


class EventDecoder(Generic[E]):
    """Decode a message holding one ``single`` event or a ``batch`` envelope of them,
    whose events are in the envelope's ``field``.

    The shape is guessed from the bytes (the envelope's key), so pydantic validates
    straight from JSON; a wrong guess costs a second try, never a wrong answer.
    """

    def __init__(self, single: type[E], batch: type[BaseModel], field: str) -> None:
        self._single, self._batch, self._field = single, batch, field
        self._marker = f'"{field}"'.encode()

    def decode(self, payload: bytes | None) -> list[E]:
        if not payload:
            raise EventRejectedError("bad_json", "empty message")
        guess, other = (self._batch, self._single) if self._marker in payload else (self._single, self._batch)
        try:
            event = guess.model_validate_json(payload)
        except ValidationError as exc:
            try:
                event = other.model_validate_json(payload)
            except ValidationError:
                raise _classify(exc) from exc
        events = [event] if isinstance(event, self._single) else getattr(event, self._field)
        # an attribute test per event; a copy only for events that came without an id
        if all("event_id" in e.__pydantic_fields_set__ for e in events):
            return events
        return [_with_ids(e) for e in events]
