"""The watchlist as a Faust global table fed by the compacted watchlist topic.

The API writes an entry to PostgreSQL, then publishes it (key = entry_id, value =
WatchlistEntry JSON, null = deleted) to the compacted topic, which is this table's
changelog: every worker holds every entry and sees changes within seconds.
"""

from __future__ import annotations

import logging
import time

import faust

from ioc.config import Settings
from ioc.schemas import PlateRead, WatchlistEntry
from ioc.watchlist_matcher import Hit, WatchlistMatcher

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
    """A fuzzy matcher over the table's entries, rebuilt at most every ``refresh_s``."""

    def __init__(self, table: faust.GlobalTable, *, refresh_s: float = 1.0) -> None:
        self._table = table
        self._refresh_s = refresh_s
        self._matcher = WatchlistMatcher(())
        self._built_at = float("-inf")

    def matcher(self) -> WatchlistMatcher:
        now = time.monotonic()
        if now - self._built_at >= self._refresh_s:
            self._matcher, self._built_at = WatchlistMatcher(self.entries()), now
        return self._matcher

    def entries(self) -> list[WatchlistEntry]:
        entries = []
        for value in list(self._table.data.values()):
            try:
                entries.append(WatchlistEntry.model_validate(value))
            except ValueError as exc:
                logger.warning("ignoring malformed watchlist entry: %s", exc)
        return entries

    def matches(self, read: PlateRead) -> list[Hit]:
        return self.matcher().match(read.text, candidates=read.candidates, at=read.captured_at)
