"""Turn raw Kafka message bytes into typed events, or a precise rejection reason."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class EventRejectedError(Exception):
    """A message that can never be processed; it belongs in the dead-letter topic."""

    def __init__(self, reason: str, error: str) -> None:
        super().__init__(f"{reason}: {error}")
        self.reason = reason
        self.error = error


def decode_event(model: type[M], payload: bytes | None) -> M:
    """Validate ``payload`` as ``model``, classifying failures for the dead letter."""
    if not payload:
        raise EventRejectedError("bad_json", "empty message")
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        if any(e["type"] == "json_invalid" or e["type"] == "model_type" for e in errors):
            raise EventRejectedError("bad_json", str(errors[0]["msg"])) from exc
        if any(e["loc"][:1] == ("schema_version",) for e in errors):
            raise EventRejectedError(
                "unknown_schema_version", "schema_version not supported by this worker"
            ) from exc
        summary = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors[:5])
        raise EventRejectedError("invalid_event", summary) from exc
