"""Site positions through the API and CSV (validated against the county), and the check-in geofence."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud.geo.boundary import DEMO_BOUNDARY
from cloud.geo.coords import distance_m, wgs84_to_gcj02
from tests.utils.workflow_factories import World, make_world

API = "/api/v1"
INSIDE = (120.6290, 31.3180)  # in the demo county (fictional boundary)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("SENTINEL_COUNTY_BOUNDARY_FILE", str(DEMO_BOUNDARY))
    w = make_world(tmp_path)
    with w.client:
        yield w
    w.engine.dispose()


def test_site_positions_by_api(world: World) -> None:
    c, h = world.client, world.h("head")
    r = c.patch(
        f"{API}/registry/sites/{world.site_id}", json={"longitude": INSIDE[0], "latitude": INSIDE[1]}, headers=h
    )
    assert r.status_code == 200, r.text
    assert (r.json()["longitude"], r.json()["latitude"]) == INSIDE
    # a position read off a Chinese map app (GCJ-02) is stored as WGS-84
    gcj = wgs84_to_gcj02(*INSIDE)
    body = {"site_id": "shop-2", "name": "示例二店", "longitude": gcj[0], "latitude": gcj[1], "coord_system": "gcj02"}
    r = c.post(f"{API}/registry/sites", json=body, headers=h)
    assert r.status_code == 201, r.text
    assert distance_m(r.json()["longitude"], r.json()["latitude"], *INSIDE) < 0.05
    assert "coord_system" not in r.json()
    # refused: outside the county, 0,0, half a position
    for bad in ({"longitude": 121.5, "latitude": 31.2}, {"longitude": 0, "latitude": 0}, {"longitude": None}):
        r = c.patch(f"{API}/registry/sites/{world.site_id}", json=bad, headers=h)
        assert r.status_code == 422, (bad, r.text)
    r = c.patch(f"{API}/registry/sites/{world.site_id}", json={"longitude": 121.5, "latitude": 31.2}, headers=h)
    assert "不在辖区" in r.json()["detail"]
    assert c.get(f"{API}/registry/sites/{world.site_id}", headers=h).json()["longitude"] == INSIDE[0]  # unchanged


def test_site_positions_by_csv(world: World) -> None:
    gcj = wgs84_to_gcj02(*INSIDE)
    csv_text = (
        "场所编号,经度,纬度,坐标系\n"
        f"{world.site_id},{gcj[0]:.7f},{gcj[1]:.7f},高德\n"
        "no-such-site,120.62,31.31,\n"
        f"{world.site_id},0,0,WGS-84\n"
        f"{world.site_id},121.5,31.2,\n"
        f"{world.site_id},abc,31.2,\n"
        f"{world.site_id},120.62,31.31,百度\n"
    )
    r = world.client.post(
        f"{API}/registry/sites/positions/import",
        files={"file": ("pos.csv", csv_text.encode(), "text/csv")},
        headers=world.h("head"),
    )
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["rows"] == 6 and report["updated"] == 1
    assert [(e["line"], e["column"]) for e in report["errors"]] == [
        (3, "场所编号"),
        (4, "经度/纬度"),
        (5, "经度/纬度"),
        (6, "经度"),
        (7, "坐标系"),
    ]
    site = world.client.get(f"{API}/registry/sites/{world.site_id}", headers=world.h("head")).json()
    assert distance_m(site["longitude"], site["latitude"], *INSIDE) < 0.05


def test_malformed_positions_csv_is_a_422_naming_the_line(world: World) -> None:
    """Found by the fuzzer: a bare carriage return in an unquoted field raised csv.Error (a 500). Now the one
    strict reader of uploads reads it as a line break (row errors), and a file it cannot read is a 422."""
    h = world.h("head")

    def upload(body: bytes) -> object:
        files = {"file": ("pos.csv", body, "text/csv")}
        return world.client.post(f"{API}/registry/sites/positions/import", files=files, headers=h)

    r = upload(f"场所编号,经度,纬度\n{world.site_id},120.62\r5,31.31\n".encode())
    assert r.status_code == 200, r.text  # type: ignore[attr-defined]
    assert r.json()["updated"] == 0 and r.json()["errors"]  # type: ignore[attr-defined]
    r = upload(f'场所编号,经度,纬度\n{world.site_id},"120.62,31.31\n'.encode())
    assert r.status_code == 422, r.text  # type: ignore[attr-defined]
    assert "第 2 行" in r.json()["detail"] and "经度" in r.json()["detail"]  # type: ignore[attr-defined]


def _task(world: World) -> tuple[int, str]:
    clue_id = world.alert(severity="major")
    sent = world.client.post(f"{API}/clues/{clue_id}/dispatch", json={}, headers=world.h("clerk"))
    assert sent.status_code == 200, sent.text
    task = sent.json()["task"]
    lead = next(n for n in ("insp1", "insp2", "insp3") if world.user_ids[n] == task["assignees"][0])
    r = world.client.post(f"{API}/tasks/{task['id']}/transitions", json={"action": "accept"}, headers=world.h(lead))
    assert r.status_code == 200, r.text
    return int(task["id"]), lead


def test_check_in_far_from_the_site_is_flagged_on_the_task_and_in_supervision(world: World) -> None:
    c = world.client
    c.patch(
        f"{API}/registry/sites/{world.site_id}",
        json={"longitude": INSIDE[0], "latitude": INSIDE[1]},
        headers=world.h("head"),
    )
    tid, lead = _task(world)
    far = {"lat": 31.3180, "lon": 120.6400, "note": "到达现场"}  # ~1 km east of the site
    r = c.post(f"{API}/tasks/{tid}/transitions", json={"action": "check_in", "check_in": far}, headers=world.h(lead))
    assert r.status_code == 200, r.text
    task = c.get(f"{API}/tasks/{tid}", headers=world.h("head")).json()
    task = task.get("task", task)
    assert task["check_in"]["geofence"] == "outside" and 1000 < task["check_in"]["distance_m"] < 1100
    flags = c.get(
        f"{API}/assessment/check-in-flags",
        params={"start": "2000-01-01T00:00:00+00:00", "end": "2100-01-01T00:00:00+00:00"},
        headers=world.h("head"),
    ).json()
    assert [f["task_id"] for f in flags] == [tid] and flags[0]["inspector"] == lead
    clue = c.get(f"{API}/clues/{flags[0]['supervision_clue_id']}", headers=world.h("head")).json()
    clue = clue.get("clue", clue)
    assert clue["category"] == "check_in_location" and clue["channel"] == "assessment"


def test_check_in_on_site_is_not_flagged(world: World) -> None:
    c = world.client
    c.patch(
        f"{API}/registry/sites/{world.site_id}",
        json={"longitude": INSIDE[0], "latitude": INSIDE[1]},
        headers=world.h("head"),
    )
    tid, lead = _task(world)
    near = {"lat": INSIDE[1] + 0.0005, "lon": INSIDE[0], "note": "到达现场"}  # ~55 m
    r = c.post(f"{API}/tasks/{tid}/transitions", json={"action": "check_in", "check_in": near}, headers=world.h(lead))
    assert r.status_code == 200, r.text
    task = c.get(f"{API}/tasks/{tid}", headers=world.h("head")).json()
    task = task.get("task", task)
    assert task["check_in"]["geofence"] == "inside"
