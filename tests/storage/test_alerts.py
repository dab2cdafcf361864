"""Alerts: idempotent on alert_id, status changes recorded with who, when and why."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import numpy as np
import pytest
from psycopg import AsyncConnection

from ioc.schemas import Alert, AlertKind, AlertStatus, Severity
from ioc.storage.alerts import (
    alert_decisions,
    alert_history,
    get_alert,
    insert_alerts,
    recent_alerts,
    update_alert_status,
)


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
