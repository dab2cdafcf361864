"""Settings: values checked when the process starts, not when the first event arrives."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ioc.config import Settings


def test_home_province_takes_each_code_of_a_merged_province() -> None:
    assert Settings(home_province="20").home_province == "20"
    assert Settings(home_province=" 20, 97 ").home_province == "20,97"


@pytest.mark.parametrize("home", ["", "2O", "Thái Nguyên", "20;97"])
def test_an_unknown_home_province_stops_the_process(home: str) -> None:
    with pytest.raises(ValidationError, match="not a province code"):
        Settings(home_province=home)
