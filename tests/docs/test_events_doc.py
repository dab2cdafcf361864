"""Every example in docs/events.md must be accepted by the schema it documents."""

import re
from pathlib import Path

import pytest

from ioc import schemas

DOC = Path(__file__).parents[2] / "docs" / "events.md"
EXAMPLES = re.findall(r"^## (\w+)\n.*?```json\n(.*?)```", DOC.read_text(), re.S | re.M)


def test_doc_documents_every_event_kind() -> None:
    documented = {name for name, _ in EXAMPLES}
    assert {"CameraFrame", "EdgePlateRead", "SensorReading", "PlateRead", "Alert",
            "WatchlistEntry", "DeadLetter"} <= documented


@pytest.mark.parametrize(("name", "example"), EXAMPLES, ids=[n for n, _ in EXAMPLES])
def test_example_validates_and_round_trips(name: str, example: str) -> None:
    model = getattr(schemas, name)
    event = model.model_validate_json(example)
    assert model.model_validate_json(event.model_dump_json()) == event
