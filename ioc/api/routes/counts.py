"""Checkpoint counts for the operator page's chart: vehicles in and out per bucket,
home province vs out-of-province."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel

from ioc.api.deps import ConnDep, CountsReader, SettingsDep
from ioc.storage.checkpoint_counts import CountRow, counts_rollup

router = APIRouter(prefix="/api/counts", tags=["counts"])

Granularity = Literal["minute", "hour", "day"]
_STEP = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
_MAX_BUCKETS = 2000


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


def _floor(moment: datetime, granularity: Granularity) -> datetime:
    moment = moment.astimezone(UTC).replace(second=0, microsecond=0)
    if granularity in ("hour", "day"):
        moment = moment.replace(minute=0)
    if granularity == "day":
        moment = moment.replace(hour=0)
    return moment


def _series_key(row: CountRow) -> str:
    if row.direction in ("in", "out") and row.origin in ("home", "out_of_province"):
        return f"{row.direction}_{'home' if row.origin == 'home' else 'other'}"
    return "unknown"


def bucketed(rows: list[CountRow], since: datetime, until: datetime, step: timedelta) -> list[CountBucket]:
    """One bucket per step in ``[since, until)``, zeros where nothing was counted."""
    buckets: dict[datetime, CountBucket] = {}
    moment = since
    while moment < until:
        buckets[moment] = CountBucket(bucket=moment)
        moment += step
    for row in rows:
        bucket = buckets.get(row.bucket.astimezone(UTC))
        if bucket is None:
            continue
        key = _series_key(row)
        setattr(bucket, key, getattr(bucket, key) + row.vehicles)
        bucket.sensor_vehicles += row.sensor_vehicles
        bucket.qr_checkins += row.qr_checkins
    return list(buckets.values())


@router.get("", response_model=CountsPublic, summary="Vehicles in/out per bucket, home vs out-of-province")
async def counts(
    conn: ConnDep,
    settings: SettingsDep,
    _: CountsReader,
    granularity: Granularity = "minute",
    minutes: Annotated[int, Query(ge=1, le=60 * 24 * 400, description="Window ending now")] = 60,
    checkpoint_id: Annotated[str | None, Query(max_length=64)] = None,
) -> CountsPublic:
    step = _STEP[granularity]
    until = _floor(datetime.now(UTC), granularity) + step
    since = _floor(until - timedelta(minutes=minutes), granularity)
    if (until - since) / step > _MAX_BUCKETS:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"at most {_MAX_BUCKETS} buckets; use a coarser granularity")
    rows = await counts_rollup(conn, granularity=granularity, since=since, until=until,
                               checkpoint_id=checkpoint_id)
    return CountsPublic(granularity=granularity, since=since, until=until, checkpoint_id=checkpoint_id,
                        home_province=settings.home_province, data=bucketed(rows, since, until, step))
