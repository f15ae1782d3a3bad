"""Factories for registry objects and synthetic readings (registry, telemetry and GSP tests)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from cloud.registry.models import Device, MeasuringPoint, Quantity, Sensor, Site
from cloud.telemetry.store import ReadingRow, TelemetryStore


def make_site_with_point(
    engine: Engine,
    *,
    site_id: str = "pharmacy-1",
    profile: str = "drug_refrigerated",
    kind: str = "storage",
    location: str = "冷藏柜 1 号 上层",
    storage_area: str | None = "冷藏区",
    vehicle_type: str | None = None,
) -> MeasuringPoint:
    with Session(engine, expire_on_commit=False) as session:
        session.add(Site(site_id=site_id, name="示例大药房", category="drug"))
        session.flush()
        session.add(Device(site_id=site_id, device_id="probe-1", device_type="probe"))
        session.flush()
        session.add(Sensor(site_id=site_id, sensor_id="t1", device_id="probe-1", quantity=Quantity.TEMPERATURE))
        session.add(Sensor(site_id=site_id, sensor_id="h1", device_id="probe-1", quantity=Quantity.HUMIDITY))
        point = MeasuringPoint(
            site_id=site_id,
            location=location,
            storage_area=storage_area,
            vehicle_type=vehicle_type,
            kind=kind,  # type: ignore[arg-type]
            profile=profile,
            temperature_sensor_id="t1",
            humidity_sensor_id="h1",
        )
        session.add(point)
        session.commit()
        session.refresh(point)
        return point


def readings(
    site_id: str,
    sensor_id: str,
    start: datetime,
    minutes: int,
    value: Callable[[int], float],
    unit: str = "°C",
    step_s: int = 60,
) -> Iterator[ReadingRow]:
    for i in range(minutes * 60 // step_s):
        yield ReadingRow("agent-1", site_id, sensor_id, start + timedelta(seconds=i * step_s), value(i), unit, "good")


def store_for(engine: Engine) -> TelemetryStore:
    if engine.dialect.name == "postgresql":
        from cloud.telemetry.postgres import PostgresStore

        store: TelemetryStore = PostgresStore(None, engine)
    else:
        from cloud.telemetry.sqlite import SqliteStore

        store = SqliteStore(None, engine)
    store.create_schema()
    return store
