"""Camera health over HTTP: status, read quality and each camera's look-closer setting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from served_api import ApiServer, plate_read, store_reads

from ioc.storage.cameras import record_seen, upsert_camera
from ioc.storage.database import connect

pytestmark = pytest.mark.parametrize("database_url", ["timescaledb"], indirect=True)


async def test_cameras_show_status_read_quality_and_how_closely_they_are_looked_at(api: ApiServer) -> None:
    now = datetime.now(UTC)
    async with await connect(api.conninfo) as conn:
        await upsert_camera(conn, "CP01-CAM1", "CP01", expected_interval_s=30)
        await upsert_camera(conn, "ST01-CAM1", "ST01", look_closer="always")
        await record_seen(conn, {"CP01-CAM1": now - timedelta(seconds=5)})
        await conn.commit()
    await store_reads(api, [plate_read("20A12345", camera_id="CP01-CAM1", confidence=0.95),
                            plate_read("20A12346", camera_id="CP01-CAM1", confidence=0.5)])  # fmt: skip
    await api.token("operator")
    async with api.client("operator") as client:
        listed = {c["camera_id"]: c for c in (await client.get("/api/cameras")).json()}
        only = (await client.get("/api/cameras", params={"checkpoint_id": "ST01"})).json()
    checkpoint, street = listed["CP01-CAM1"], listed["ST01-CAM1"]
    assert (checkpoint["status"], checkpoint["reads_15m"], checkpoint["look_closer"]) == ("online", 2, None)
    assert checkpoint["low_confidence_share"] == 0.5
    assert (street["status"], street["reads_15m"], street["look_closer"]) == ("unknown", 0, "always")
    assert [c["camera_id"] for c in only] == ["ST01-CAM1"]


async def test_admins_register_change_and_remove_cameras_and_each_change_is_audited(api: ApiServer) -> None:
    await api.token("admin")
    async with api.client("admin") as client:
        made = await client.put("/api/cameras/HN-ST12-CAM1",
                                json={"checkpoint_id": "HN-ST12", "look_closer": "always"})
        changed = await client.put("/api/cameras/HN-ST12-CAM1",
                                   json={"checkpoint_id": "HN-ST12", "expected_interval_s": 30})
        bad_bodies = ({"checkpoint_id": "CP01", "look_closer": "sometimes"},
                      {"checkpoint_id": "CP01", "expected_interval_s": 0}, {"checkpoint_id": ""}, {},
                      {"checkpoint_id": "   "}, {"checkpoint_id": "CP01 "})  # blank, padded: twins of CP01
        refused = [await client.put("/api/cameras/CAM9", json=body) for body in bad_bodies]
        bad_ids = [await client.put(f"/api/cameras/{camera}", json={"checkpoint_id": "CP01"})
                   for camera in ("CAM%0A9", "%20CAM9", "CAM9%20", "%20")]
        listed = (await client.get("/api/cameras")).json()
        removed = await client.delete("/api/cameras/HN-ST12-CAM1")
        again = await client.delete("/api/cameras/HN-ST12-CAM1")
    assert made.status_code == 200 and made.json()["look_closer"] == "always"
    assert changed.json() == {"camera_id": "HN-ST12-CAM1", "checkpoint_id": "HN-ST12",
                              "expected_interval_s": 30.0, "look_closer": None}
    assert [r.status_code for r in refused] == [422] * 6
    assert [r.status_code for r in bad_ids] == [422] * 4
    assert [(c["camera_id"], c["look_closer"]) for c in listed] == [("HN-ST12-CAM1", None)]
    assert (removed.status_code, again.status_code) == (204, 404)
    audit = await api.sql("SELECT actor, action FROM audit_log WHERE action LIKE 'camera.%'"
                          " ORDER BY audit_id")
    assert audit == [("admin", "camera.register"), ("admin", "camera.register"), ("admin", "camera.remove")]
