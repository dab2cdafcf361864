"""Alerts: idempotent on alert_id, status changes recorded with who, when and why, and
each alert's own copy of its read's crop."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np
import pytest
from psycopg import AsyncConnection

from ioc.schemas import Alert, AlertKind, AlertStatus, PlateRead, Severity
from ioc.storage.alerts import (
    alert_crop,
    alert_decisions,
    alert_history,
    get_alert,
    insert_alerts,
    recent_alerts,
    sighting_crop,
    update_alert_status,
)
from ioc.storage.audit import AuditNote, list_audit
from ioc.storage.incidents import append_sightings
from ioc.storage.migrations import migrate
from ioc.storage.plate_reads import insert_plate_reads


def _alert(now: datetime, minutes_ago: int, kind: AlertKind = AlertKind.WATCHLIST_HIT) -> Alert:
    return Alert(
        alert_id=uuid.uuid5(uuid.NAMESPACE_URL, f"alert-{minutes_ago}-{kind}"),
        alert_kind=kind,
        severity=Severity.CRITICAL,
        subject="30A12345",
        raised_at=now - timedelta(minutes=minutes_ago),
        checkpoint_id="cp-1",
        read_id=uuid.uuid4(),
        # what recognisers and matchers put in evidence: UUIDs, numpy scalars, datetimes
        evidence={"entry_id": uuid.uuid4(), "match_kind": "lookalike", "score": np.float32(0.875),
                  "route": ["cp-1", "cp-2"], "first_seen": now},
    )


async def test_insert_is_idempotent_and_keeps_operator_status(conn: AsyncConnection, now: datetime) -> None:
    alerts = [_alert(now, i) for i in range(4)]
    assert await insert_alerts(conn, alerts) == 4
    assert await insert_alerts(conn, alerts + alerts[:1]) == 0
    await update_alert_status(conn, alerts[0].alert_id, AlertStatus.ACKNOWLEDGED, "op1", note="on it")
    assert await insert_alerts(conn, alerts) == 0  # a replay does not reset the status
    stored = await get_alert(conn, alerts[0].alert_id)
    assert stored is not None and stored.status == "acknowledged"
    assert stored.evidence["route"] == ["cp-1", "cp-2"]
    assert stored.evidence["entry_id"] == str(alerts[0].evidence["entry_id"])
    assert stored.evidence["score"] == 0.875
    assert datetime.fromisoformat(stored.evidence["first_seen"]) == now
    assert [e.status for e in await alert_history(conn, alerts[0].alert_id)] == ["new", "acknowledged"]


async def test_status_history_and_decisions(conn: AsyncConnection, now: datetime) -> None:
    alert = _alert(now, 1)
    await insert_alerts(conn, [alert])
    await update_alert_status(conn, alert.alert_id, "escalated", "op1", note="supervisor please")
    done = await update_alert_status(conn, alert.alert_id, AlertStatus.ACCEPTED, "sup1",
                                     note="stopped at cp-2", reason="confirmed_match")
    assert done is not None and done.status == "accepted"
    history = await alert_history(conn, alert.alert_id)
    assert [(e.status, e.actor, e.reason) for e in history] == [
        ("new", "system", None), ("escalated", "op1", None), ("accepted", "sup1", "confirmed_match")]
    await conn.commit()
    decisions = await alert_decisions(conn, since=now - timedelta(days=1), until=now + timedelta(days=1))
    assert [(d.alert_id, d.reason) for d in decisions] == [(alert.alert_id, "confirmed_match")]
    assert await update_alert_status(conn, uuid.uuid4(), "resolved", "op1") is None
    with pytest.raises(ValueError):
        await update_alert_status(conn, alert.alert_id, "bogus", "op1")


async def test_recent_alerts_filters_and_pages(conn: AsyncConnection, now: datetime) -> None:
    alerts = [_alert(now, i) for i in range(7)] + [_alert(now, 3, AlertKind.CAMERA_OFFLINE)]
    await insert_alerts(conn, alerts)
    await update_alert_status(conn, alerts[2].alert_id, "resolved", "op1")
    first = await recent_alerts(conn, limit=3)
    rest = await recent_alerts(conn, limit=10, before=(first[-1].raised_at, first[-1].alert_id))
    ordered = first + rest
    assert len(ordered) == 8
    keys = [(a.raised_at, a.alert_id) for a in ordered]
    assert keys == sorted(keys, reverse=True)
    assert len(await recent_alerts(conn, limit=10, status="new")) == 7
    resolved = await recent_alerts(conn, limit=10, status=["resolved"])
    assert [a.alert_id for a in resolved] == [alerts[2].alert_id]
    assert len(await recent_alerts(conn, limit=10, kind=AlertKind.CAMERA_OFFLINE)) == 1
    assert len(await recent_alerts(conn, limit=10, since=now - timedelta(minutes=2, seconds=30))) == 3


async def test_several_statuses_merge_newest_first_and_page(conn: AsyncConnection, now: datetime) -> None:
    """The operator's queue asks for new and escalated alerts: each status is read from its own index
    and the branches merged, in one order across them, a page at a time."""
    alerts = [_alert(now, i) for i in range(9)]
    await insert_alerts(conn, alerts)
    for i, status in ((1, "escalated"), (4, "escalated"), (5, "resolved"), (7, "acknowledged")):
        await update_alert_status(conn, alerts[i].alert_id, status, "op1")
    wanted = [a.alert_id for i, a in enumerate(alerts) if i not in (5, 7)]  # newest first
    queue = ["new", "escalated", "new"]  # a status asked twice is read once
    first = await recent_alerts(conn, limit=4, status=queue)
    rest = await recent_alerts(conn, limit=10, status=queue, before=(first[-1].raised_at, first[-1].alert_id))
    assert [a.alert_id for a in first + rest] == wanted
    since = await recent_alerts(conn, limit=10, status=queue, since=now - timedelta(minutes=4, seconds=30))
    assert [a.alert_id for a in since] == wanted[:5]  # 0 to 4 minutes ago
    none = await recent_alerts(conn, limit=10, status=queue, kind=AlertKind.CAMERA_OFFLINE)
    assert none == []


def _hit(read: PlateRead) -> Alert:
    return Alert(alert_id=uuid.uuid4(), alert_kind=AlertKind.WATCHLIST_HIT, severity=Severity.CRITICAL,
                 subject=read.text, raised_at=read.captured_at, captured_at=read.captured_at,
                 checkpoint_id=read.checkpoint_id, camera_id=read.camera_id, read_id=read.read_id)


async def _evidence_rows(conn: AsyncConnection) -> int:
    row = await (await conn.execute("SELECT count(*) FROM alert_evidence")).fetchone()
    return row[0]


async def test_an_alert_keeps_its_own_copy_of_the_reads_crop(
    conn: AsyncConnection, make_read: Callable[..., PlateRead], now: datetime
) -> None:
    """Raising an alert for a read copies the read's crop in the same transaction; a read without
    a crop and an alert without a read have none; a replay copies nothing twice."""
    pictured, bare = make_read(crop=b"\xff\xd8pictured"), make_read("51F86988")
    await insert_plate_reads(conn, [pictured, bare])
    camera = Alert(alert_id=uuid.uuid4(), alert_kind=AlertKind.CAMERA_OFFLINE, severity=Severity.WARNING,
                   subject="cam-1", raised_at=now, camera_id="cam-1")
    alerts = [_hit(pictured), _hit(bare), camera]
    assert await insert_alerts(conn, alerts) == 3
    assert await insert_alerts(conn, alerts) == 0
    assert await alert_crop(conn, alerts[0].alert_id) == b"\xff\xd8pictured"
    assert await alert_crop(conn, alerts[1].alert_id) is None
    assert await alert_crop(conn, camera.alert_id) is None
    assert await _evidence_rows(conn) == 1


async def test_an_alert_crop_fetch_is_audited_found_or_not(
    conn: AsyncConnection, make_read: Callable[..., PlateRead]
) -> None:
    read = make_read(crop=b"\xff\xd8jpeg")
    await insert_plate_reads(conn, [read])
    alert = _hit(read)
    await insert_alerts(conn, [alert])
    missing = uuid.uuid4()
    for alert_id in (alert.alert_id, missing):
        note = AuditNote(actor="op1", role="operator", action="alert.crop", query={"alert_id": alert_id},
                         purpose="alert evidence shown")
        await alert_crop(conn, alert_id, audit=note)
    records = await list_audit(conn, action="alert.crop")
    assert [(r.actor, r.query["alert_id"], r.result_count) for r in records] == [
        ("op1", str(missing), 0), ("op1", str(alert.alert_id), 1)]


async def test_alerts_raised_before_evidence_was_kept_get_it_when_migrated(
    conn: AsyncConnection, migrated_url: str, make_read: Callable[..., PlateRead]
) -> None:
    """0013 copies the crops still kept for the alerts already there."""
    read = make_read(crop=b"\xff\xd8older")
    await insert_plate_reads(conn, [read])
    alert = _hit(read)
    await insert_alerts(conn, [alert])
    await conn.execute("DROP TABLE alert_evidence")  # as before 0013
    await conn.execute("DELETE FROM schema_migrations WHERE name = '0013_alert_evidence'")
    await conn.commit()
    assert await migrate(migrated_url) == ["0013_alert_evidence"]
    assert await alert_crop(conn, alert.alert_id) == b"\xff\xd8older"


async def test_routes_recorded_before_sighting_evidence_was_kept_get_it_when_migrated(
    conn: AsyncConnection, migrated_url: str, make_read: Callable[..., PlateRead], now: datetime
) -> None:
    """0016 copies the crops still kept for the sightings in the routes already there (a route of
    another shape, as older alerts may hold, is passed over)."""
    opening, later = make_read(crop=b"\xff\xd8opening"), make_read(crop=b"\xff\xd8later")
    await insert_plate_reads(conn, [opening, later])
    alert = _hit(opening)
    await insert_alerts(conn, [alert, _alert(now, 1)])
    route = [{"read_id": str(r.read_id), "captured_at": r.captured_at.isoformat()} for r in (opening, later)]
    await append_sightings(conn, [(alert.alert_id, route)], keep=50)
    await conn.execute("DROP TABLE sighting_evidence")  # as before 0016
    await conn.execute("DELETE FROM schema_migrations WHERE name = '0016_sighting_evidence'")
    await conn.commit()
    assert await migrate(migrated_url) == ["0016_sighting_evidence"]
    assert [await sighting_crop(conn, alert.alert_id, r.read_id) for r in (opening, later)] == [
        b"\xff\xd8opening", b"\xff\xd8later"]
