"""Alert review: read an alert and hold it while the API decides whether a status
change is allowed, so two operators cannot resolve and re-open it at once."""

from __future__ import annotations

import uuid

from psycopg import AsyncConnection, sql
from psycopg.rows import class_row

from ioc.storage.alerts import _ALERT_COLUMNS, AlertRecord
from ioc.storage.incidents import lock_incidents

__all__ = ["lock_alert"]


async def lock_alert(conn: AsyncConnection, alert_id: uuid.UUID) -> AlertRecord | None:
    """The alert, row-locked until the caller's transaction ends; None if there is none.

    A watchlist hit's incident lock is taken first, as the workers take it before they look for
    the plate's open incident and append to it: a hit resolved between their look and their
    append got the new sighting, and no new alert was raised for the vehicle seen again."""
    cur = await conn.execute(
        "SELECT evidence->>'entry_id', subject FROM alerts WHERE alert_id = %s AND kind = 'watchlist_hit'",
        [alert_id])
    if (incident := await cur.fetchone()) is not None and incident[0] is not None:
        await lock_incidents(conn, [(uuid.UUID(incident[0]), incident[1])])
    async with conn.cursor(row_factory=class_row(AlertRecord)) as cur:
        await cur.execute(
            sql.SQL("SELECT {} FROM alerts WHERE alert_id = %s FOR UPDATE").format(_ALERT_COLUMNS),
            [alert_id])
        return await cur.fetchone()
