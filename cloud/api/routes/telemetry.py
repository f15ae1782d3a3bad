"""History API: readings of a sensor over a period (raw or min/avg/max per step), latest values per site,
alert history of a site."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field
from sqlmodel import col, select

from cloud.alerts import Alert, AlertPublic
from cloud.api.deps import SessionDep, StaffUser, StoreDep

router = APIRouter(prefix="/telemetry", tags=["telemetry 历史数据"])
#: at most this many buckets per downsampling request (step is raised to fit)
MAX_BUCKETS = 5000


class ReadingPublic(BaseModel):
    sensor_id: str
    ts: datetime
    value: float | None
    unit: str
    quality: str


class BucketPublic(BaseModel):
    start: datetime
    count: int
    min: float | None
    avg: float | None
    max: float | None


class SeriesPublic(BaseModel):
    site_id: str
    sensor_id: str
    start: datetime
    end: datetime
    step_s: float | None = Field(description="downsampling step; null = raw readings")
    unit: str | None
    readings: list[ReadingPublic] = Field(default_factory=list)
    buckets: list[BucketPublic] = Field(default_factory=list)


def _aware(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


@router.get(
    "/sites/{site_id}/sensors/{sensor_id}/readings",
    summary="传感器历史数据（可降采样：每步 min/avg/max） (sensor readings over a period, optional downsampling)",
)
def get_readings(
    store: StoreDep,
    _: StaffUser,
    site_id: str,
    sensor_id: str,
    start: datetime,
    end: datetime,
    step_s: Annotated[float | None, Query(gt=0, description="降采样步长（秒）；不填返回原始数据")] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> SeriesPublic:
    start, end = _aware(start), _aware(end)
    if end <= start:
        raise HTTPException(422, "结束时间须晚于开始时间 (end must be after start)")
    if step_s is None:
        rows = store.query_readings(site_id=site_id, sensor_id=sensor_id, start=start, end=end, limit=limit)
        return SeriesPublic(
            site_id=site_id,
            sensor_id=sensor_id,
            start=start,
            end=end,
            step_s=None,
            unit=rows[0].unit if rows else None,
            readings=[
                ReadingPublic(sensor_id=r.sensor_id, ts=r.ts, value=r.value, unit=r.unit, quality=r.quality)
                for r in rows
            ],
        )
    step_s = max(step_s, (end - start).total_seconds() / MAX_BUCKETS)
    buckets = store.downsample(
        site_id=site_id, sensor_id=sensor_id, start=start, end=end, step=timedelta(seconds=step_s)
    )
    return SeriesPublic(
        site_id=site_id,
        sensor_id=sensor_id,
        start=start,
        end=end,
        step_s=step_s,
        unit=next((b.unit for b in buckets if b.unit), None),
        buckets=[BucketPublic(start=b.start, count=b.count, min=b.min, avg=b.avg, max=b.max) for b in buckets],
    )


@router.get("/sites/{site_id}/latest", summary="场所各传感器最新值 (latest value of every sensor of a site)")
def get_latest(store: StoreDep, _: StaffUser, site_id: str) -> list[ReadingPublic]:
    return [
        ReadingPublic(sensor_id=r.sensor_id, ts=r.ts, value=r.value, unit=r.unit, quality=r.quality)
        for r in store.latest(site_id=site_id)
    ]


@router.get("/sites/{site_id}/alerts", summary="场所告警历史 (alert history of a site over a period)")
def get_alert_history(
    session: SessionDep,
    _: StaffUser,
    site_id: str,
    start: datetime | None = None,
    end: datetime | None = None,
    device_id: str | None = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[AlertPublic]:
    stmt = select(Alert).where(Alert.site_id == site_id)
    if start is not None:
        stmt = stmt.where(col(Alert.started_at) >= _aware(start))
    if end is not None:
        stmt = stmt.where(col(Alert.started_at) < _aware(end))
    if device_id is not None:
        stmt = stmt.where(Alert.device_id == device_id)
    rows = session.exec(stmt.order_by(col(Alert.started_at).desc()).offset(offset).limit(limit)).all()
    return [AlertPublic.model_validate(a) for a in rows]
