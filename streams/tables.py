"""The watchlist as a Faust global table fed by the compacted watchlist topic.

The API writes an entry to PostgreSQL, then publishes it (key = entry_id, value =
WatchlistEntry JSON, null = deleted) to the compacted topic, which is this table's
changelog: every worker holds every entry and sees changes within seconds.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

import faust

from detectors import plate_format
from ioc.config import Settings
from ioc.schemas import WatchlistEntry

logger = logging.getLogger(__name__)


def declare_watchlist_table(app: faust.App, settings: Settings) -> faust.GlobalTable:
    changelog = app.topic(
        settings.topics.watchlist,
        key_type=str,
        key_serializer="raw",
        value_serializer="json",
        partitions=1,
        compacting=True,
    )
    return app.GlobalTable(
        "watchlist",
        key_type=str,
        value_type=dict,
        partitions=1,
        changelog_topic=changelog,
        help="Active watchlist entries by entry_id",
    )


class WatchlistIndex:
    """Exact-text index over the table's entries, rebuilt at most every ``refresh_s``."""

    def __init__(self, table: faust.GlobalTable, *, refresh_s: float = 1.0) -> None:
        self._table = table
        self._refresh_s = refresh_s
        self._exact: dict[str, list[WatchlistEntry]] = {}
        self._built_at = float("-inf")

    def _rebuild_if_stale(self) -> None:
        now = time.monotonic()
        if now - self._built_at < self._refresh_s:
            return
        data = self._table.data
        index: dict[str, list[WatchlistEntry]] = {}
        for value in data.values():
            try:
                entry = WatchlistEntry.model_validate(value)
            except ValueError as exc:
                logger.warning("ignoring malformed watchlist entry: %s", exc)
                continue
            index.setdefault(plate_format.canonical(entry.pattern), []).append(entry)
        self._exact, self._built_at = index, now

    def matches(self, text: str, at: datetime) -> list[WatchlistEntry]:
        self._rebuild_if_stale()
        return [
            e for e in self._exact.get(text, [])
            if e.active and (e.expires_at is None or e.expires_at > at)
        ]
