"""``ioc migrate`` end to end: migrates, reports the layout, runs retention on request."""

from __future__ import annotations

import asyncio
import json

import pytest

from ioc.cli import main
from ioc.config import get_settings
from ioc.storage.database import connect


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


@pytest.mark.parametrize("database_url", ["timescaledb"], indirect=True)
async def test_ioc_migrate_reports_the_layout_chosen_not_the_extension_found(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """A database whose template installs TimescaleDB, migrated with the postgres layout: the
    report said "timescaledb", and an operator would look for hypertables that are not there."""
    async with await connect(database_url, autocommit=True) as conn:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    monkeypatch.setenv("IOC_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        assert await asyncio.to_thread(main, ["migrate", "--layout", "postgres", "--retention"]) == 0
    finally:
        get_settings.cache_clear()
    report = json.loads(capsys.readouterr().out)
    assert report["layout"] == "postgres" and report["timescaledb"] is not None
    async with await connect(database_url) as conn:
        cur = await conn.execute("SELECT layout FROM retention_runs")
        assert await cur.fetchall() == [("postgres",)]
