"""Settings: values checked when the process starts, not when the first event arrives."""

from __future__ import annotations

from typing import get_args

import pytest
from pydantic import ValidationError

from detectors.recognizer import LookCloser
from ioc.config import Settings
from ioc.schemas import LookCloserSetting


def test_home_province_takes_each_code_of_a_merged_province() -> None:
    assert Settings(home_province="20").home_province == "20"
    assert Settings(home_province=" 20, 97 ").home_province == "20,97"


@pytest.mark.parametrize("home", ["", "2O", "Thái Nguyên", "20;97"])
def test_an_unknown_home_province_stops_the_process(home: str) -> None:
    with pytest.raises(ValidationError, match="not a province code"):
        Settings(home_province=home)


def test_look_closer_settings_are_the_recognisers_modes() -> None:
    """Settings, cameras and the CLI spell the modes out (the core does not import OpenCV)."""
    assert set(get_args(LookCloserSetting)) == {mode.value for mode in LookCloser}


@pytest.mark.parametrize("secret", ["", "changethis", "abc", "x" * 31])
def test_production_refuses_a_placeholder_or_short_auth_secret(secret: str) -> None:
    with pytest.raises(ValidationError, match="IOC_AUTH_SECRET"):
        Settings(env="prod", auth_secret=secret)


def test_production_takes_a_long_random_auth_secret_and_dev_anything() -> None:
    assert Settings(env="prod", auth_secret="f" * 64).env == "prod"
    assert Settings(env="dev", auth_secret="abc").env == "dev"


def test_display_timezone_is_vietnams_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().display_timezone == "Asia/Ho_Chi_Minh"
    assert Settings(display_timezone="UTC").display_timezone == "UTC"
    monkeypatch.setenv("IOC_DISPLAY_TIMEZONE", "Asia/Bangkok")
    assert Settings().display_timezone == "Asia/Bangkok"


@pytest.mark.parametrize("zone", ["", "Asia", "Mars/Olympus", "utc", " UTC", "../etc/passwd", "+07:00"])
def test_an_unknown_display_timezone_stops_the_process(zone: str) -> None:
    with pytest.raises(ValidationError, match="not an IANA time zone"):
        Settings(display_timezone=zone)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("database_pool_size", 1),  # the API keeps two connections open
        ("recognition_threads", 0),
        ("sink_batch_size", 0),
        ("token_ttl_seconds", 0),  # every token expired at issue
        ("read_retention_days", 0),
        ("simulator_checkpoints", 0),
        ("dead_letter_max_payload", 0),
        ("dead_letter_max_payload", 2_000_000),  # a letter over Kafka's default message size
        ("api_port", 70_000),
    ],
)
def test_sizes_and_intervals_that_cannot_work_stop_the_process(name: str, value: int) -> None:
    """Each was taken and failed later: a pool of one at the API's start, a thread pool of none at
    the worker's, a dead letter the broker refuses and the sink retries for ever."""
    with pytest.raises(ValidationError, match=name):
        Settings(**{name: value})
