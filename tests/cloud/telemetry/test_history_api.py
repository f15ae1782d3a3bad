"""History API: readings with downsampling, latest per site, alert history, GSP list/export/verify."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlmodel import Session

from cloud.alerts import Alert
from tests.utils.registry_db import api_client
from tests.utils.registry_factories import make_site_with_point, readings

T0 = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[Any, Any, Any]]:
    client, token, app = api_client(tmp_path)
    with client:
        yield client, token, app


def _fridge(i: int) -> float:
    return 11.0 if 100 <= i < 110 else 5.0


def test_history_and_gsp_endpoints(api: tuple[Any, Any, Any]) -> None:
    client, token, app = api
    staff, sup = token("inspector"), token("supervisor")
    engine, store = app.state.engine, app.state.store
    make_site_with_point(engine)
    store.write_readings(list(readings("pharmacy-1", "t1", T0, 240, _fridge)))
    store.write_readings(list(readings("pharmacy-1", "h1", T0, 240, lambda i: 50.0, unit="%RH")))

    url = "/api/v1/telemetry/sites/pharmacy-1/sensors/t1/readings"
    window = {"start": T0.isoformat(), "end": (T0 + timedelta(hours=4)).isoformat()}
    assert client.get(url, params=window).status_code == 401
    raw = client.get(url, params=window, headers=staff).json()
    assert len(raw["readings"]) == 240 and raw["unit"] == "°C"
    hourly = client.get(url, params=window | {"step_s": 3600}, headers=staff).json()
    assert [(b["count"], b["min"], b["max"]) for b in hourly["buckets"]] == [
        (60, 5.0, 5.0),
        (60, 5.0, 11.0),
        (60, 5.0, 5.0),
        (60, 5.0, 5.0),
    ]
    latest = client.get("/api/v1/telemetry/sites/pharmacy-1/latest", headers=staff).json()
    assert [r["sensor_id"] for r in latest] == ["h1", "t1"]

    with Session(engine) as session:
        session.add(
            Alert(
                site_id="pharmacy-1",
                device_id="probe-1",
                rule_id="temp_high",
                severity="major",
                category="drug_storage",
                started_at=T0 + timedelta(minutes=100),
                updated_at=T0 + timedelta(minutes=100),
                message="冷藏柜温度超限",
            )
        )
        session.commit()
    alerts = client.get("/api/v1/telemetry/sites/pharmacy-1/alerts", params=window, headers=staff).json()
    assert [a["rule_id"] for a in alerts] == ["temp_high"]

    assert client.post("/api/v1/gsp/derive", headers=staff).status_code == 403
    derived = client.post("/api/v1/gsp/derive", headers=sup).json()
    assert derived["records"] > 0
    records = client.get("/api/v1/gsp/records", params={"site_id": "pharmacy-1"}, headers=staff).json()
    assert {r["status"] for r in records} == {"normal", "excursion"}
    assert client.get("/api/v1/gsp/verify", headers=staff).json()["ok"] is True

    period = {"site_id": "pharmacy-1", **window}
    got = client.get("/api/v1/gsp/records/export", params=period | {"format": "csv"}, headers=staff)
    assert got.status_code == 200 and got.content.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(got.content.decode("utf-8-sig"))))
    assert table[0][:10] == [
        "序号",
        "场所",
        "测点位置",
        "库区/车型",
        "场景",
        "日期",
        "时间",
        "温度(°C)",
        "湿度(%RH)",
        "状态",
    ]
    assert len(table) == len(records) + 1
    assert table[1][5:9] == ["2026-11-20", "08:00:00", "5.0", "50.0"]  # Asia/Shanghai local date and time
    xlsx = client.get("/api/v1/gsp/records/export", params=period | {"format": "xlsx"}, headers=staff)
    wb = openpyxl.load_workbook(io.BytesIO(xlsx.content))
    assert wb["温湿度记录"].max_row == len(records) + 1
    assert "记录链完整" in str(wb["导出说明"]["B7"].value)

    # no update/delete path exists for records
    methods = {m for r in app.routes if getattr(r, "path", "").startswith("/api/v1/gsp") for m in r.methods}
    assert methods <= {"GET", "POST", "HEAD"}
    assert client.delete("/api/v1/gsp/records", headers=sup).status_code == 405
