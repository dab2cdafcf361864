"""Alert review: read an alert and hold it while the API decides whether a status
change is allowed, so two operators cannot resolve and re-open it at once."""

from __future__ import annotations

import uuid

from psycopg import AsyncConnection, sql
from psycopg.rows import class_row

from ioc.storage.alerts import _ALERT_COLUMNS, AlertRecord

__all__ = ["lock_alert"]


async def lock_alert(conn: AsyncConnection, alert_id: uuid.UUID) -> AlertRecord | None:
    """The alert, row-locked until the caller's transaction ends; None if there is none."""
    async with conn.cursor(row_factory=class_row(AlertRecord)) as cur:
        await cur.execute(
            sql.SQL("SELECT {} FROM alerts WHERE alert_id = %s FOR UPDATE").format(_ALERT_COLUMNS),
            [alert_id])
        return await cur.fetchone()
