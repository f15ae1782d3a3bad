"""InfluxDB backend against real servers: VictoriaMetrics (v2 write API via influxdb-client, export read)
and InfluxDB 1.6.7 (v1 /write + InfluxQL /query)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from cloud.telemetry.influx import InfluxStore
from cloud.telemetry.store import ReadingRow
from sentinel_cli.servers import Server

pytestmark = pytest.mark.tsdb
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def _rows() -> list[ReadingRow]:
    rows = [
        ReadingRow("agent-1", "site-a", "t1", T0 + timedelta(seconds=10 * i), 4.0 + i * 0.1, "°C", "good")
        for i in range(60)
    ]
    rows += [
        ReadingRow("agent-1", "site-a", "h1", T0 + timedelta(seconds=10 * i), 50.0 + i, "%RH", "good") for i in range(6)
    ]
    rows.append(ReadingRow("agent-1", "site-a", "t1", T0 + timedelta(seconds=600), None, "°C", "bad"))
    rows.append(ReadingRow("agent-2", "site-b", "t1", T0, 99.0, "°C", "good"))  # another site: never mixed in
    return rows


def _poll(fn: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not fn():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture(params=["victoriametrics-v2", "influxdb1.6-v1"])
def influx_store(request: pytest.FixtureRequest) -> Iterator[InfluxStore]:
    if request.param == "victoriametrics-v2":
        server: Server = request.getfixturevalue("victoriametrics")
        store = InfluxStore(
            None,
            url=f"http://{server.url}",
            bucket=f"b{time.monotonic_ns()}",
            write_mode="v2",
            read_mode="victoriametrics",
        )
    else:
        server = request.getfixturevalue("influxdb1")
        store = InfluxStore(
            None, url=f"http://{server.url}", bucket=f"db{time.monotonic_ns()}", write_mode="v1", read_mode="influxql"
        )
    store.create_schema()
    yield store
    store.close()


def test_write_and_read_back(influx_store: InfluxStore) -> None:
    store = influx_store
    rows = _rows()
    store.write_readings(rows)
    store.write_readings(rows[:30])  # a replayed batch: idempotent by (tags, timestamp)

    def arrived() -> bool:
        store.flush()
        return len(store.query_readings(site_id="site-a", sensor_id="t1", start=T0, end=T0 + timedelta(hours=1))) == 61

    _poll(arrived, "readings to become queryable")
    got = store.query_readings(site_id="site-a", sensor_id="t1", start=T0, end=T0 + timedelta(hours=1))
    assert [r.ts for r in got] == sorted(r.ts for r in got)
    assert got[0] == ReadingRow("agent-1", "site-a", "t1", T0, 4.0, "°C", "good")
    assert got[-1].value is None and got[-1].quality == "bad"
    assert all(r.site_id == "site-a" for r in got)
    # period bounds are [start, end)
    window = store.query_readings(site_id="site-a", sensor_id="t1", start=T0, end=T0 + timedelta(seconds=100))
    assert len(window) == 10


def test_downsample_min_avg_max_per_step(influx_store: InfluxStore) -> None:
    store = influx_store
    store.write_readings(_rows())
    _poll(
        lambda: (store.flush(), store.count() >= 68)[1],
        "all readings to arrive",
    )
    buckets = store.downsample(
        site_id="site-a", sensor_id="t1", start=T0, end=T0 + timedelta(minutes=11), step=timedelta(minutes=1)
    )
    assert len(buckets) == 10  # the bad reading at minute 10 has no value: that step is omitted
    first = buckets[0]
    assert first.start == T0 and first.count == 6 and first.unit == "°C"
    assert first.min == pytest.approx(4.0) and first.max == pytest.approx(4.5) and first.avg == pytest.approx(4.25)


def test_latest_per_site(influx_store: InfluxStore) -> None:
    store = influx_store
    store.write_readings(_rows())
    _poll(lambda: (store.flush(), len(store.latest(site_id="site-a")) == 2)[1], "latest values")
    latest = {r.sensor_id: r for r in store.latest(site_id="site-a")}
    assert latest["h1"].value == pytest.approx(55.0) and latest["h1"].ts == T0 + timedelta(seconds=50)
    assert latest["t1"].ts == T0 + timedelta(seconds=600) and latest["t1"].quality == "bad"
    assert [r.value for r in store.latest(site_id="site-b")] == [99.0]
