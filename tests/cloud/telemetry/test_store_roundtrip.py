"""Relational stores (SQLite and a real PostgreSQL): round-trip, downsampling, latest per site,
and writes joining the caller's transaction (rolled back → nothing stored)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from cloud.core.config import Settings
from cloud.telemetry.store import ReadingRow
from tests.utils.registry_factories import store_for

T0 = datetime(2026, 11, 20, 8, 0, 0, 500_000, tzinfo=UTC)


def test_round_trip_downsample_latest(business_db: tuple[Settings, Engine]) -> None:
    _, engine = business_db
    store = store_for(engine)
    rows = [ReadingRow("a1", "s1", "t1", T0 + timedelta(seconds=10 * i), float(i), "°C", "good") for i in range(120)]
    rows.append(ReadingRow("a1", "s1", "t1", T0 + timedelta(seconds=1200), None, "°C", "bad"))
    rows.append(ReadingRow("a1", "s1", "h1", T0, 60.0, "%RH", "good"))
    rows.append(ReadingRow("a2", "s2", "t1", T0, -18.5, "°C", "uncertain"))
    store.write_readings(rows)
    got = store.query_readings(site_id="s1", sensor_id="t1", start=T0, end=T0 + timedelta(hours=1))
    assert got == rows[:121]  # same values, same aware-UTC timestamps (ms kept), oldest first
    assert store.query_readings(site_id="s1", sensor_id="t1", start=T0, end=T0 + timedelta(seconds=30)) == rows[:3]
    buckets = store.downsample(
        site_id="s1", sensor_id="t1", start=T0, end=T0 + timedelta(hours=1), step=timedelta(minutes=5)
    )
    assert [b.start for b in buckets] == [T0 + timedelta(minutes=5 * k) for k in range(4)]
    assert [(b.count, b.min, b.max) for b in buckets] == [(30, 30 * k, 30 * k + 29) for k in range(4)]
    assert buckets[0].avg == pytest.approx(14.5) and buckets[0].unit == "°C"
    latest = store.latest(site_id="s1")
    assert [(r.sensor_id, r.quality) for r in latest] == [("h1", "good"), ("t1", "bad")]
    assert store.latest(site_id="s2")[0].value == -18.5
    assert store.count() == 123


def test_write_joins_callers_transaction(business_db: tuple[Settings, Engine]) -> None:
    _, engine = business_db
    store = store_for(engine)
    row = ReadingRow("a1", "s1", "t1", T0, 1.0, "°C", "good")
    with engine.connect() as conn:
        trans = conn.begin()
        store.write_readings([row], connection=conn)
        trans.rollback()
    assert store.count() == 0
    with engine.begin() as conn:
        store.write_readings([row], connection=conn)
    assert store.count() == 1
