"""Checkpoint counts: one-minute windows per checkpoint x direction x vehicle class x origin.

Choice (issue 4's "a replayed event never double-counts a window"): windows are
*derived* from the stored, deduplicated rows of ``plate_reads``, ``passages`` and
``sensor_readings`` and written as absolute values. :func:`refresh_counts`
recomputes every minute overlapping ``[since, until)`` and upserts the result,
so replaying events, re-running a refresh or running it from two workers can
never add a vehicle twice. Refreshes are serialised by an advisory lock, so a
slower refresh cannot overwrite a newer one with an older snapshot.

``vehicles`` counts vehicles, not reads: an edge camera's reads (one per vehicle)
and a frame camera's passages (``passages``: its reads of one vehicle at one lane,
several frames each), in the minute the passage started.

A read stored after its minute was last refreshed (an edge camera uploading
hours late) is counted by the next refresh whose window covers that minute; so is
a passage, which the worker writes a second or more after its first read (and
rewrites while it is provisional). The stream worker's periodic refresh covers
the last few minutes, so callers that backfill should refresh their range themselves.

Local days (:func:`counts_per_local_day`): the daily roll-up, ``checkpoint_counts_daily``, holds
UTC days (Grafana reads it as it is); a deployment's "today" is a day of its own zone, which in
Vietnam starts at 17:00 UTC. Those days are summed at query time from the hourly roll-up, or from
the minute windows in a zone whose days do not start on a whole UTC hour.

Origin: ``home`` / ``out_of_province`` from the read's province (a passage's best
read), ``unknown`` when the plate says nothing (and for sensor rows). Vehicle
counters and QR check-ins are columns of their own (``sensor_vehicles``,
``qr_checkins``): a checkpoint with both cameras and loop counters must not add them up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection, sql
from psycopg.rows import class_row

__all__ = [
    "CountRow",
    "counts_per_local_day",
    "counts_per_minute",
    "counts_rollup",
    "local_day_source",
    "local_midnight",
    "refresh_counts",
    "upsert_counts",
]

Origin = Literal["home", "out_of_province", "unknown"]
Granularity = Literal["minute", "hour", "day"]

_LOCK_KEY = 0x10C_0003
_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class CountRow:
    bucket: datetime
    checkpoint_id: str
    direction: str
    vehicle_class: str
    origin: str
    vehicles: int
    sensor_vehicles: float = 0.0
    qr_checkins: float = 0.0

    @property
    def key(self) -> tuple[datetime, str, str, str, str]:
        return (self.bucket, self.checkpoint_id, self.direction, self.vehicle_class, self.origin)


def _floor_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


_UPSERT_SET = """
    ON CONFLICT (bucket, checkpoint_id, direction, vehicle_class, origin) DO UPDATE
       SET vehicles = excluded.vehicles, sensor_vehicles = excluded.sensor_vehicles,
           qr_checkins = excluded.qr_checkins, updated_at = now()
     WHERE (c.vehicles, c.sensor_vehicles, c.qr_checkins)
           IS DISTINCT FROM (excluded.vehicles, excluded.sensor_vehicles, excluded.qr_checkins)
"""

# Vehicles: an edge camera sends one read per vehicle, so its reads count as they are; a
# frame camera stores a read per frame, several per vehicle, so its vehicles are its
# passages (in the minute each started; class and origin from the passage's best read,
# looked up within the passage's time span so only its own day's partition or chunk is read).
_REFRESH_MINUTES = """
WITH source AS (
    SELECT ioc_time_bucket('1 minute', captured_at) AS bucket, checkpoint_id, direction, vehicle_class,
           CASE out_of_province WHEN true THEN 'out_of_province' WHEN false THEN 'home'
                ELSE 'unknown' END AS origin,
           count(*) AS vehicles, 0::float8 AS sensor_vehicles, 0::float8 AS qr_checkins
      FROM plate_reads
     WHERE captured_at >= %(since)s AND captured_at < %(until)s AND source = 'edge'
     GROUP BY 1, 2, 3, 4, 5
    UNION ALL
    SELECT ioc_time_bucket('1 minute', p.started_at), p.checkpoint_id, p.direction,
           coalesce(r.vehicle_class, 'unknown'),
           CASE r.out_of_province WHEN true THEN 'out_of_province' WHEN false THEN 'home' ELSE 'unknown' END,
           count(*), 0, 0
      FROM passages AS p
      LEFT JOIN plate_reads AS r
             ON r.read_id = p.best_read_id AND r.captured_at BETWEEN p.started_at AND p.ended_at
            AND r.captured_at >= %(since)s
     WHERE p.started_at >= %(since)s AND p.started_at < %(until)s
     GROUP BY 1, 2, 3, 4, 5
    UNION ALL
    SELECT ioc_time_bucket('1 minute', captured_at), checkpoint_id, coalesce(direction, 'unknown'),
           coalesce(vehicle_class, 'unknown'), 'unknown', 0,
           coalesce(sum(value) FILTER (WHERE sensor_kind = 'vehicle_count'), 0),
           coalesce(sum(value) FILTER (WHERE sensor_kind = 'qr_checkin'), 0)
      FROM sensor_readings
     WHERE captured_at >= %(since)s AND captured_at < %(until)s
       AND sensor_kind IN ('vehicle_count', 'qr_checkin')
     GROUP BY 1, 2, 3, 4, 5
), windows AS (
    SELECT bucket, checkpoint_id, direction, vehicle_class, origin,
           sum(vehicles) AS vehicles, sum(sensor_vehicles) AS sensor_vehicles, sum(qr_checkins) AS qr_checkins
      FROM source
     GROUP BY 1, 2, 3, 4, 5
), gone AS (
    -- a window the rows no longer make (a provisional passage rewritten with another origin or
    -- first minute) is emptied, not left at its old count
    UPDATE checkpoint_counts AS g SET vehicles = 0, sensor_vehicles = 0, qr_checkins = 0, updated_at = now()
     WHERE g.bucket >= %(since)s AND g.bucket < %(until)s
       AND (g.vehicles, g.sensor_vehicles, g.qr_checkins) <> (0, 0, 0)
       AND NOT EXISTS (SELECT 1 FROM windows w
                        WHERE (w.bucket, w.checkpoint_id, w.direction, w.vehicle_class, w.origin)
                            = (g.bucket, g.checkpoint_id, g.direction, g.vehicle_class, g.origin))
)
INSERT INTO checkpoint_counts AS c
       (bucket, checkpoint_id, direction, vehicle_class, origin, vehicles, sensor_vehicles, qr_checkins)
SELECT * FROM windows
""" + _UPSERT_SET

_UPSERT_ROW = """
INSERT INTO checkpoint_counts AS c
       (bucket, checkpoint_id, direction, vehicle_class, origin, vehicles, sensor_vehicles, qr_checkins)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
""" + _UPSERT_SET


async def refresh_counts(conn: AsyncConnection, *, since: datetime, until: datetime) -> int:
    """Recompute every minute overlapping ``[since, until)`` from the stored rows, and the
    hourly and daily roll-ups above them; returns how many minute rows changed."""
    start, end = _floor_minute(since), _floor_minute(until) + _MINUTE
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        cur = await conn.execute(_REFRESH_MINUTES, {"since": start, "until": end})
        changed = max(cur.rowcount, 0)
        await conn.execute("SELECT ioc_refresh_rollups(%s, %s)", [start, end])
    return changed


async def upsert_counts(conn: AsyncConnection, rows: Sequence[CountRow]) -> int:
    """Write windows computed elsewhere as absolute values (the last row per key wins);
    returns how many rows changed. Writing the same rows again changes nothing."""
    latest = {row.key: row for row in rows}
    if not latest:
        return 0
    for row in latest.values():
        if row.bucket != _floor_minute(row.bucket):
            raise ValueError(f"bucket {row.bucket} is not on a minute boundary")
    async with conn.transaction(), conn.cursor() as cur:
        await cur.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        changed = 0
        for row in latest.values():
            await cur.execute(_UPSERT_ROW, (*row.key, row.vehicles, row.sensor_vehicles, row.qr_checkins))
            changed += max(cur.rowcount, 0)
        buckets = [row.bucket for row in latest.values()]
        await cur.execute("SELECT ioc_refresh_rollups(%s, %s)", [min(buckets), max(buckets) + _MINUTE])
    return changed


_SOURCES: dict[Granularity, str] = {
    "minute": "checkpoint_counts",
    "hour": "checkpoint_counts_hourly",
    "day": "checkpoint_counts_daily",
}


async def counts_rollup(
    conn: AsyncConnection,
    *,
    granularity: Granularity,
    since: datetime,
    until: datetime,
    checkpoint_id: str | None = None,
) -> list[CountRow]:
    """Counts per ``granularity`` bucket in ``[since, until)``, oldest first."""
    query = sql.SQL(
        "SELECT bucket, checkpoint_id, direction, vehicle_class, origin, vehicles::int AS vehicles,"
        " sensor_vehicles, qr_checkins FROM {} WHERE bucket >= %(since)s AND bucket < %(until)s"
    ).format(sql.Identifier(_SOURCES[granularity]))
    params: dict = {"since": since, "until": until}
    if checkpoint_id is not None:
        query = sql.SQL("{} AND checkpoint_id = %(checkpoint_id)s").format(query)
        params["checkpoint_id"] = checkpoint_id
    query = sql.SQL("{} ORDER BY bucket, checkpoint_id, direction, vehicle_class, origin").format(query)
    async with conn.cursor(row_factory=class_row(CountRow)) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


async def counts_per_minute(
    conn: AsyncConnection, *, since: datetime, until: datetime, checkpoint_id: str | None = None
) -> list[CountRow]:
    """One-minute windows in ``[since, until)``, oldest first."""
    return await counts_rollup(conn, granularity="minute", since=since, until=until,
                               checkpoint_id=checkpoint_id)


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The instant ``day`` starts in ``zone``, in UTC (a midnight a clock change skips is read
    with the offset before the change, as PostgreSQL reads it)."""
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def local_day_source(zone: ZoneInfo, since: datetime, until: datetime) -> Literal["hour", "minute"]:
    """The roll-up whose buckets tile the local days starting in ``[since, until)``: ``"hour"``
    when each of those days starts and ends on a whole UTC hour (every zone of Vietnam, and most
    others, summer time included), else ``"minute"`` (Asia/Kolkata, +05:30)."""
    day = since.astimezone(zone).date()
    while True:
        start = local_midnight(day, zone)
        if start != start.replace(minute=0, second=0, microsecond=0):
            return "minute"
        if start >= until:
            return "hour"
        day += timedelta(days=1)


_LOCAL_DAY_QUERY = """
SELECT date_trunc('day', bucket AT TIME ZONE %(zone)s) AT TIME ZONE %(zone)s AS bucket,
       checkpoint_id, direction, vehicle_class, origin, sum(vehicles)::int AS vehicles,
       sum(sensor_vehicles) AS sensor_vehicles, sum(qr_checkins) AS qr_checkins
  FROM {source}
 WHERE bucket >= %(since)s AND bucket < %(until)s {checkpoint}
 GROUP BY 1, 2, 3, 4, 5
 ORDER BY 1, 2, 3, 4, 5
"""


async def counts_per_local_day(
    conn: AsyncConnection,
    *,
    zone: ZoneInfo,
    since: datetime,
    until: datetime,
    checkpoint_id: str | None = None,
) -> list[CountRow]:
    """Counts per day of ``zone`` (each bucket the instant the day starts) in ``[since, until)``,
    oldest first; ``since`` and ``until`` should be local midnights, or the first and last days
    are partial. Summed from the roll-up :func:`local_day_source` picks, not from
    ``checkpoint_counts_daily``, whose days are UTC days."""
    source = _SOURCES[local_day_source(zone, since, until)]
    checkpoint = sql.SQL("AND checkpoint_id = %(checkpoint_id)s" if checkpoint_id is not None else "")
    query = sql.SQL(_LOCAL_DAY_QUERY).format(source=sql.Identifier(source), checkpoint=checkpoint)
    params = {"zone": zone.key, "since": since, "until": until, "checkpoint_id": checkpoint_id}
    async with conn.cursor(row_factory=class_row(CountRow)) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()
