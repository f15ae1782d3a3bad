"""Registry API with role checks: subjects (USCC), CSV upload report, sites, approval of announced devices."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from cloud.registry.announce import handle_announce
from cloud.registry.uscc import make
from protocols.messages import Announce, AnnouncedDevice
from tests.utils.registry_db import api_client

SAMPLES = Path(__file__).parents[3] / "firmware-config" / "samples"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[Any, Any, Any]]:
    client, token, app = api_client(tmp_path)
    with client:
        yield client, token, app


def test_subject_crud_and_role_checks(api: tuple[Any, Any, Any]) -> None:
    client, token, _ = api
    sup, insp = token("supervisor"), token("inspector")
    body = {"name": "示例大药房", "uscc": make("91320583MA1Y8K3T0"), "risk_grade": "C"}
    assert client.post("/api/v1/registry/subjects", json=body).status_code == 401
    assert client.post("/api/v1/registry/subjects", json=body, headers=insp).status_code == 403
    created = client.post("/api/v1/registry/subjects", json=body, headers=sup)
    assert created.status_code == 201, created.text
    assert client.post("/api/v1/registry/subjects", json=body, headers=sup).status_code == 409
    bad = client.post("/api/v1/registry/subjects", json=body | {"uscc": body["uscc"][:-1] + "0"}, headers=sup)
    assert bad.status_code == 422 and "校验码" in bad.text
    found = client.get("/api/v1/registry/subjects", params={"q": "药房"}, headers=insp).json()
    assert [s["risk_grade"] for s in found] == ["C"]
    sid = created.json()["id"]
    patched = client.patch(f"/api/v1/registry/subjects/{sid}", json={"risk_grade": "D"}, headers=sup)
    assert patched.json()["risk_grade"] == "D"


def test_csv_upload_reports_rejected_rows(api: tuple[Any, Any, Any]) -> None:
    client, token, _ = api
    files = {"file": ("subjects.csv", (SAMPLES / "subjects_english_headers.csv").read_bytes(), "text/csv")}
    resp = client.post("/api/v1/registry/subjects/import", files=files, headers=token("supervisor"))
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["accepted"] == 1 and report["errors"][0]["line"] == 3
    assert "校验码错误" in report["errors"][0]["reason"]


def test_announced_device_pending_until_approved_via_api(api: tuple[Any, Any, Any]) -> None:
    client, token, app = api
    sup = token("supervisor")
    site = {"site_id": "pharmacy-1", "name": "示例大药房", "category": "drug"}
    assert client.post("/api/v1/registry/sites", json=site, headers=sup).status_code == 201
    msg = Announce(
        site_id="pharmacy-1",
        agent_id="agent-1",
        ts=datetime(2026, 11, 26, tzinfo=UTC),
        devices=[AnnouncedDevice(device_id="probe-9", device_type="probe", sensors=["t9"])],
    )
    with Session(app.state.engine) as session:
        handle_announce(session, msg)
        session.commit()
    assert client.get("/api/v1/registry/sites/pharmacy-1/devices", headers=sup).json() == []
    pending = client.get("/api/v1/registry/pending", headers=sup).json()
    assert [p["device_id"] for p in pending] == ["probe-9"]
    pid = pending[0]["id"]
    assert client.post(f"/api/v1/registry/pending/{pid}/approve", headers=token("inspector")).status_code == 403
    ok = client.post(f"/api/v1/registry/pending/{pid}/approve", json={"note": "已核实"}, headers=sup)
    assert ok.status_code == 200 and ok.json()["state"] == "approved"
    devices = client.get("/api/v1/registry/sites/pharmacy-1/devices", headers=sup).json()
    assert [d["device_id"] for d in devices] == ["probe-9"]
    sensors = client.get("/api/v1/registry/sites/pharmacy-1/sensors", headers=sup).json()
    assert [s["sensor_id"] for s in sensors] == ["t9"]
    assert client.post(f"/api/v1/registry/pending/{pid}/reject", headers=sup).status_code == 409


def test_refused_registry_operations_answer_with_their_status(api: tuple[Any, Any, Any]) -> None:
    client, token, _ = api
    sup = token("supervisor")
    missing = client.get("/api/v1/registry/subjects/999999", headers=sup)
    assert missing.status_code == 404 and missing.json()["detail"]
    assert client.get("/api/v1/registry/sites/no-such-site", headers=sup).status_code == 404
