"""Checkpoint counts for the operator page's chart: vehicles in and out per bucket,
home province vs out-of-province.

Day buckets are days of the deployment's zone (``IOC_DISPLAY_TIMEZONE``), each starting at its
local midnight: an operator's "vehicles in today" is today where the checkpoint is, not a UTC
day (in Vietnam those run 07:00 to 07:00). Minute and hour buckets stay UTC ones: they are local
minutes and hours too wherever the offset is a whole number of hours.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel

from ioc.api.deps import ConnDep, CountsReader, SettingsDep
from ioc.storage.checkpoint_counts import (
    CountRow,
    counts_per_local_day,
    counts_rollup,
    local_day_source,
    local_midnight,
)

router = APIRouter(prefix="/api/counts", tags=["counts"])

Granularity = Literal["minute", "hour", "day"]
_STEP = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
_MAX_BUCKETS = 2000
# A local day is summed in the database from finer rows (hourly, or one-minute windows where
# days do not start on a whole UTC hour), so a day request is bounded by the rows it sums per
# series: two days of minutes, 120 days of hours. 100 days of hourly rows for 1,200 series
# (100 checkpoints) took about 3 s on a 2-core test machine, against a 15 s statement timeout.
_MAX_ROWS_SUMMED_PER_SERIES = 2 * 24 * 60
_SOURCE_NAMES = {"hour": "hourly", "minute": "one-minute"}


class CountBucket(BaseModel):
    bucket: datetime
    in_home: int = 0
    in_other: int = 0       # entering, plate from another province
    out_home: int = 0
    out_other: int = 0
    unknown: int = 0        # direction or origin unknown
    sensor_vehicles: float = 0.0
    qr_checkins: float = 0.0


class CountsPublic(BaseModel):
    granularity: Granularity
    since: datetime
    until: datetime
    checkpoint_id: str | None
    home_province: str
    data: list[CountBucket]


def _floor(moment: datetime, granularity: Granularity, zone: ZoneInfo) -> datetime:
    """The start (UTC) of the bucket holding ``moment``; a day starts at midnight in ``zone``."""
    if granularity == "day":
        return local_midnight(moment.astimezone(zone).date(), zone)
    moment = moment.astimezone(UTC).replace(second=0, microsecond=0)
    return moment.replace(minute=0) if granularity == "hour" else moment


def _next(start: datetime, granularity: Granularity, zone: ZoneInfo) -> datetime:
    """The start of the bucket after the one starting at ``start``: a local day is 23 or 25 hours
    long across a clock change, so days step by calendar day, not by 24 hours."""
    if granularity == "day":
        return local_midnight(start.astimezone(zone).date() + timedelta(days=1), zone)
    return start + _STEP[granularity]


def _bucket_count(since: datetime, until: datetime, granularity: Granularity, zone: ZoneInfo) -> int:
    if granularity == "day":
        return (until.astimezone(zone).date() - since.astimezone(zone).date()).days
    return (until - since) // _STEP[granularity]


def _starts(since: datetime, until: datetime, granularity: Granularity, zone: ZoneInfo) -> list[datetime]:
    """Bucket starts (UTC) in ``[since, until)``."""
    starts = [since]
    while (following := _next(starts[-1], granularity, zone)) < until:
        starts.append(following)
    return starts


def _series_key(row: CountRow) -> str:
    if row.direction in ("in", "out") and row.origin in ("home", "out_of_province"):
        return f"{row.direction}_{'home' if row.origin == 'home' else 'other'}"
    return "unknown"


def bucketed(rows: list[CountRow], starts: list[datetime], granularity: Granularity,
             zone: ZoneInfo) -> list[CountBucket]:
    """One bucket per start, zeros where nothing was counted; day buckets carry ``zone``'s offset."""
    buckets = {start: CountBucket(bucket=start.astimezone(zone) if granularity == "day" else start)
               for start in starts}
    for row in rows:
        bucket = buckets.get(_floor(row.bucket, granularity, zone))
        if bucket is None:
            continue
        key = _series_key(row)
        setattr(bucket, key, getattr(bucket, key) + row.vehicles)
        bucket.sensor_vehicles += row.sensor_vehicles
        bucket.qr_checkins += row.qr_checkins
    return list(buckets.values())


def _check_size(since: datetime, until: datetime, granularity: Granularity, zone: ZoneInfo) -> None:
    """Refuse a window too long for ``granularity`` before reading or building anything."""
    buckets = _bucket_count(since, until, granularity, zone)
    if buckets > _MAX_BUCKETS:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"at most {_MAX_BUCKETS} buckets; use a coarser granularity")
    if granularity != "day":
        return
    source = local_day_source(zone, since, until)
    max_days = _MAX_ROWS_SUMMED_PER_SERIES // (_STEP["day"] // _STEP[source])
    if buckets > max_days:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"at most {max_days} days of {zone.key} at once (they are summed from "
                            f"{_SOURCE_NAMES[source]} counts); use hour granularity for a longer window")


@router.get("", response_model=CountsPublic, summary="Vehicles in/out per bucket, home vs out-of-province")
async def counts(
    conn: ConnDep,
    settings: SettingsDep,
    _: CountsReader,
    granularity: Granularity = "minute",
    minutes: Annotated[int, Query(ge=1, le=60 * 24 * 400, description="Window ending now")] = 60,
    checkpoint_id: Annotated[str | None, Query(max_length=64)] = None,
) -> CountsPublic:
    """Day buckets are days of ``IOC_DISPLAY_TIMEZONE`` (the daily roll-up's are UTC days)."""
    zone = ZoneInfo(settings.display_timezone)
    now = datetime.now(UTC)
    until = _next(_floor(now, granularity, zone), granularity, zone)  # the end of the current bucket
    since = _floor(until - timedelta(minutes=minutes), granularity, zone)
    _check_size(since, until, granularity, zone)
    if granularity == "day":
        rows = await counts_per_local_day(conn, zone=zone, since=since, until=until,
                                          checkpoint_id=checkpoint_id)
    else:
        rows = await counts_rollup(conn, granularity=granularity, since=since, until=until,
                                   checkpoint_id=checkpoint_id)
    data = bucketed(rows, _starts(since, until, granularity, zone), granularity, zone)
    if granularity == "day":
        since, until = since.astimezone(zone), until.astimezone(zone)
    return CountsPublic(granularity=granularity, since=since, until=until, checkpoint_id=checkpoint_id,
                        home_province=settings.home_province, data=data)
