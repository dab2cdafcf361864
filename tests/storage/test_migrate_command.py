"""``ioc migrate`` end to end: migrates, reports the layout, runs retention on request."""

from __future__ import annotations

import json

import pytest

from ioc.cli import main
from ioc.config import get_settings


def test_ioc_migrate(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("IOC_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        assert main(["migrate"]) == 0
        first = json.loads(capsys.readouterr().out)
        assert "0001_core" in first["applied"]
        assert main(["migrate", "--retention"]) == 0
        second = json.loads(capsys.readouterr().out)
    finally:
        get_settings.cache_clear()
    assert second["applied"] == []
    assert second["layout"] == first["layout"]
    assert second["retention"]["run_id"] >= 1
