"""The task as the inspector's phone reads it (GET /tasks/{id}): site, address, party, map links built from the
stored WGS-84 position (AMap in GCJ-02, geo: in WGS-84), the latest readings with Chinese names and the clue's
sensor first; a declined task keeps its reason for the dispatcher, and re-dispatch replaces only the decliner."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import Session

from cloud.geo.coords import wgs84_to_gcj02
from cloud.registry.models import Device, Sensor, Site
from cloud.telemetry.store import ReadingRow
from tests.utils.workflow_factories import World, make_world

API = "/api/v1"
LON, LAT = 120.62, 31.30


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = make_world(Path(tmp_path_factory.mktemp("task_site")))
    with Session(w.engine) as session:
        site = session.get(Site, "pharmacy-1")
        assert site is not None
        site.longitude, site.latitude = LON, LAT
        session.add(site)
        for device, name in (("fridge1", "药品冷藏柜"), ("hall", "营业厅")):
            session.add(Device(site_id="pharmacy-1", device_id=device, name=name))
        session.add(Sensor(site_id="pharmacy-1", sensor_id="hall.humidity", device_id="hall", quantity="humidity"))
        session.add(Sensor(site_id="pharmacy-1", sensor_id="fridge1.temperature", device_id="fridge1"))
        session.commit()
    now = datetime.now(UTC)
    w.app.state.store.write_readings(
        [
            ReadingRow("edge", "pharmacy-1", "hall.humidity", now, 55.0, "%", "good"),
            ReadingRow("edge", "pharmacy-1", "fridge1.temperature", now, 12.0, "°C", "good"),
        ]
    )
    with w.client:
        yield w
    w.engine.dispose()


def test_task_shows_site_map_links_and_relevant_readings_then_decline_and_redispatch(world: World) -> None:
    c = world.client
    clue_id = world.alert(device_id="fridge1", sensor_id="fridge1.temperature")
    sent = c.post(f"{API}/clues/{clue_id}/dispatch", json={}, headers=world.h("clerk")).json()["task"]
    first, second = sent["assignees"]
    names = {world.user_ids[n]: n for n in ("insp1", "insp2", "insp3")}
    task = c.get(f"{API}/tasks/{sent['id']}", headers=world.h(names[first])).json()
    site = task["site"]
    assert site["name"] == "示例大药房人民路店" and site["address"] == "苏州市姑苏区人民路 100 号"
    assert site["party"] == "示例大药房有限公司"
    glon, glat = wgs84_to_gcj02(LON, LAT)
    assert site["map"]["gcj02"] == {"lon": round(glon, 6), "lat": round(glat, 6)}
    assert site["map"]["amap_url"].startswith(f"https://uri.amap.com/marker?position={glon:.6f},{glat:.6f}&name=")
    assert site["map"]["geo_uri"].startswith(f"geo:{LAT:.6f},{LON:.6f}?q=")
    # the clue is the fridge's: its sensor first, named in Chinese, then the rest
    assert [r["name"] for r in site["readings"]] == ["药品冷藏柜温度", "营业厅湿度"]
    assert site["readings"][0]["relevant"] and not site["readings"][1]["relevant"]

    r = c.post(
        f"{API}/tasks/{sent['id']}/transitions",
        json={"action": "decline", "reason": "与当事人系亲属，申请回避"},
        headers=world.h(names[first]),
    )
    assert r.status_code == 200, r.text
    seen = c.get(f"{API}/tasks/{sent['id']}", headers=world.h("clerk")).json()
    assert seen["state"] == "declined" and seen["decline_reason"] == "与当事人系亲属，申请回避"
    assert seen["declined_by"] in ("李四", "王五", "赵六") and "reassign" in seen["allowed_actions"]
    again = c.post(f"{API}/tasks/{sent['id']}/transitions", json={"action": "reassign"}, headers=world.h("clerk"))
    assert again.status_code == 200, again.text
    now = again.json()
    third = next(uid for uid in names if uid not in (first, second))
    assert now["state"] == "assigned" and sorted(now["assignees"]) == sorted([second, third])
    assert len(now["assignee_names"]) == 2
