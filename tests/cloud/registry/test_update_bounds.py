"""#13: a registry update validates exactly like a create (one model family), so a later read never 500s."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloud.registry.uscc import make
from tests.utils.registry_db import api_client

API = "/api/v1/registry"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[Any, Any]]:
    client, token, _ = api_client(tmp_path)
    with client:
        yield client, token("supervisor")


def _site_and_sensor(client: Any, sup: dict[str, str]) -> None:
    site = {"site_id": "pharmacy-1", "name": "示例大药房", "category": "drug", "heartbeat_timeout_s": 120}
    assert client.post(f"{API}/sites", json=site, headers=sup).status_code == 201
    device = {"site_id": "pharmacy-1", "device_id": "probe-1"}
    assert client.post(f"{API}/devices", json=device, headers=sup).status_code == 201
    sensor = {"site_id": "pharmacy-1", "sensor_id": "t1", "device_id": "probe-1", "expected_interval_s": 60}
    assert client.post(f"{API}/sensors", json=sensor, headers=sup).status_code == 201


@pytest.mark.parametrize(
    "change",
    [
        {"heartbeat_timeout_s": -3693},  # the fuzzer's value: stored, then GET /registry/sites 500'd for everybody
        {"heartbeat_timeout_s": 9},
        {"heartbeat_timeout_s": 10**12},
        {"name": None},  # a create requires the name: an update cannot null it
        {"name": ""},
        {"name": "长" * 201},
        {"department_id": 0},
    ],
)
def test_site_patch_refuses_what_create_refuses(api: tuple[Any, Any], change: dict[str, Any]) -> None:
    client, sup = api
    _site_and_sensor(client, sup)
    resp = client.patch(f"{API}/sites/pharmacy-1", json=change, headers=sup)
    assert resp.status_code == 422, resp.text
    sites = client.get(f"{API}/sites", headers=sup)
    assert sites.status_code == 200 and sites.json()[0]["heartbeat_timeout_s"] == 120
    assert client.post(f"{API}/sites", json={"site_id": "x-1", "name": "甲"} | change, headers=sup).status_code == 422


def test_site_patch_dangling_reference_is_404_not_500(api: tuple[Any, Any]) -> None:
    client, sup = api
    _site_and_sensor(client, sup)
    assert client.patch(f"{API}/sites/pharmacy-1", json={"subject_id": 999}, headers=sup).status_code == 404
    assert client.patch(f"{API}/sites/pharmacy-1", json={"department_id": 999}, headers=sup).status_code == 404
    ok = client.patch(f"{API}/sites/pharmacy-1", json={"heartbeat_timeout_s": None, "address": None}, headers=sup)
    assert ok.status_code == 200 and ok.json()["heartbeat_timeout_s"] is None


@pytest.mark.parametrize(
    "change", [{"expected_interval_s": 0}, {"expected_interval_s": -5}, {"quantity": None}, {"measuring_point_id": 77}]
)
def test_sensor_patch_refuses_what_create_refuses(api: tuple[Any, Any], change: dict[str, Any]) -> None:
    client, sup = api
    _site_and_sensor(client, sup)
    resp = client.patch(f"{API}/sites/pharmacy-1/sensors/t1", json=change, headers=sup)
    assert resp.status_code in (404, 422), resp.text
    sensors = client.get(f"{API}/sites/pharmacy-1/sensors", headers=sup)
    assert sensors.status_code == 200 and sensors.json()[0]["expected_interval_s"] == 60


def test_subject_patch_bounds_and_immutable_uscc(api: tuple[Any, Any]) -> None:
    client, sup = api
    body = {"name": "示例大药房", "uscc": make("91320583MA1Y8K3T0")}
    sid = client.post(f"{API}/subjects", json=body, headers=sup).json()["id"]
    for change in ({"name": None}, {"name": ""}, {"risk_grade": "E"}, {"business_scope": "x" * 4001}):
        assert client.patch(f"{API}/subjects/{sid}", json=change, headers=sup).status_code == 422, change
    assert client.patch(f"{API}/subjects/{sid}", json={"department_id": 42}, headers=sup).status_code == 404
    # an unknown key (uscc is not updatable) is ignored, never applied
    client.patch(f"{API}/subjects/{sid}", json={"uscc": make("91320583MA1Y8K3T1")}, headers=sup)
    assert client.get(f"{API}/subjects/{sid}", headers=sup).json()["uscc"] == body["uscc"]


def test_ids_follow_the_mqtt_topic_pattern(api: tuple[Any, Any]) -> None:
    client, sup = api
    for bad in ("Site A", "site/1", "+", "#", "", "x" * 65):
        resp = client.post(f"{API}/sites", json={"site_id": bad, "name": "甲"}, headers=sup)
        assert resp.status_code == 422, bad


def test_update_schema_shares_the_create_bounds(api: tuple[Any, Any]) -> None:
    client, _ = api
    schemas = client.get("/api/v1/openapi.json").json()["components"]["schemas"]
    for create, update, field in (
        ("SiteCreate", "SiteUpdate", "heartbeat_timeout_s"),
        ("SensorCreate", "SensorUpdate", "expected_interval_s"),
        ("SubjectCreate", "SubjectUpdate", "name"),
    ):
        assert schemas[create]["properties"][field] == schemas[update]["properties"][field] or (
            schemas[create]["properties"][field].items() <= schemas[update]["properties"][field].items()
        ), (create, field)


@pytest.mark.parametrize(
    ("body", "line", "column"),
    [
        ('企业名称,统一社会信用代码\n示例药房,"91320583MA1Y8K3T0X\n', 2, "统一社会信用代码"),  # quote never closed
        ('企业名称,统一社会信用代码\n示"例"药房,x\n', None, None),  # a stray quote inside a field: kept as text
        ('企业名称,统一社会信用代码\n"示例"药房",x\n', 2, "企业名称"),
    ],
)
def test_bad_csv_is_a_422_naming_row_and_column(
    api: tuple[Any, Any], body: str, line: int | None, column: str | None
) -> None:
    client, sup = api
    files = {"file": ("subjects.csv", body.encode(), "text/csv")}
    resp = client.post(f"{API}/subjects/import", files=files, headers=sup)
    if line is None:
        assert resp.status_code == 200, resp.text
        return
    assert resp.status_code == 422, resp.text
    detail = resp.json()["detail"]
    assert f"第 {line} 行" in detail and column in detail and f"line {line}" in detail


def test_a_carriage_return_in_a_field_is_no_longer_a_500(api: tuple[Any, Any]) -> None:
    client, sup = api  # the fuzzer's `_csv.Error: new-line character seen in unquoted field`
    files = {"file": ("s.csv", "企业名称,统一社会信用代码\n示例\r药房,x\n".encode(), "text/csv")}
    assert client.post(f"{API}/subjects/import", files=files, headers=sup).status_code in (200, 422)
