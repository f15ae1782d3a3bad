"""The county map in headless Chromium against the real cloud app: one marker per located site, in the colour of
its live state as the API reports it (rendered SVG checked, not only the chart option), filters, click-through;
then, on the same seeded county, coordinates on the console's subject page (one live app for both: suite time)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from cloud.alerts import AlertSignal, apply_signal
from cloud.core.db import session_scope
from cloud.geo.boundary import DEMO_BOUNDARY
from cloud.geo.coords import distance_m, wgs84_to_gcj02
from cloud.presence import AgentPresence
from protocols import AlertPhase
from tests.cloud.web.conftest import PASSWORD, LiveCloud, charts_built, live_cloud, poll, screenshot, seed_county
from tests.cloud.web.test_console import login

pytestmark = [pytest.mark.browser]

POSITIONS = {"pharmacy-01": (120.6290, 31.3180), "bakery-02": (120.6150, 31.3050), "lift-03": (120.6450, 31.3250)}


def _hex(fill: str) -> str:
    """``#d32f2f`` or ``rgb(211, 47, 47)`` → ``#d32f2f``."""
    fill = fill.strip().lower()
    if fill.startswith("rgb"):
        parts = [int(float(p)) for p in fill[fill.index("(") + 1 : fill.index(")")].split(",")[:3]]
        return "#" + "".join(f"{p:02x}" for p in parts)
    return fill


def test_map_shows_one_marker_per_site_in_its_state_colour(
    browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not charts_built():
        pytest.skip("ECharts not built (cd cloud/web && npm ci)")
    monkeypatch.setenv("SENTINEL_COUNTY_BOUNDARY_FILE", str(DEMO_BOUNDARY))
    monkeypatch.setenv("SENTINEL_NOTIFY_MQTT_ENABLED", "false")
    with live_cloud(tmp_path) as cloud:
        seed_county(cloud)
        admin = cloud.client()
        lon, lat = POSITIONS["pharmacy-01"]
        admin.patch("/registry/sites/pharmacy-01", json={"longitude": lon, "latitude": lat}).raise_for_status()
        for site_id, category in (("bakery-02", "food"), ("lift-03", "special_equipment")):
            lon, lat = POSITIONS[site_id]
            admin.post(
                "/registry/sites",
                json={
                    "site_id": site_id,
                    "name": f"示例{site_id}",
                    "category": category,
                    "longitude": lon,
                    "latitude": lat,
                    "department_id": cloud.ids["department_id"],
                },
            ).raise_for_status()
        admin.post("/registry/sites", json={"site_id": "unmapped-04", "name": "未定位场所"}).raise_for_status()
        now = datetime.now(UTC)
        with session_scope(cloud.app.state.engine, write=True) as session:  # an open alert at the pharmacy
            apply_signal(
                session,
                AlertSignal(
                    site_id="pharmacy-01",
                    device_id="probe-1",
                    rule_id="fridge_high",
                    phase=AlertPhase.RAISE,
                    severity="major",
                    category="drug_storage",
                    message="冷藏柜温度 12.0 ℃",
                    ts=now,
                    started_at=now,
                    agent_id="agent-1",
                    sensor_id="t1",
                    value=12.0,
                    limit=8.0,
                    unit="°C",
                ),
            )
        with Session(cloud.app.state.engine) as session:  # the lift's only agent went offline; the bakery's is online
            session.add(AgentPresence(site_id="lift-03", agent_id="a3", state="offline", last_seen_at=now))
            session.add(AgentPresence(site_id="bakery-02", agent_id="a2", state="online", last_seen_at=now))
            session.commit()
        api = admin.get("/map/sites").json()
        expected = {m["site_id"]: (m["state"], m["colour"]) for m in api["markers"]}
        assert {k: v[0] for k, v in expected.items()} == {
            "pharmacy-01": "alert",
            "bakery-02": "normal",
            "lift-03": "offline",
        }
        assert api["unlocated"] == ["unmapped-04"]

        page = browser.new_page(viewport={"width": 1400, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        try:
            login(page, cloud.base, "/map/", "chief")
            poll(lambda: errors or page.get_attribute("#map-root", "data-ready") == "1", 30, "the map page")
            assert errors == []
            poll(lambda: page.get_attribute("#map-canvas", "data-markers") == "3", 10, "three markers drawn")
            # the side list: one entry per site, state and colour as the API says
            items = page.eval_on_selector_all(
                "ul.map-sites li", "els => els.map(e => [e.dataset.siteId, e.dataset.state, e.dataset.colour])"
            )
            assert {i[0]: (i[1], i[2]) for i in items} == expected
            # the chart: one scatter point per site, in its colour
            points = page.evaluate(
                "() => window.__sentinelMap.getOption().series[0].data.map(d => [d.site.site_id, d.itemStyle.color])"
            )
            assert dict(points) == {k: v[1] for k, v in expected.items()}
            # the rendered SVG: as many marker shapes of each state colour as sites in that state
            fills = page.eval_on_selector_all(
                "#map-canvas svg path", "els => els.map(e => e.getAttribute('fill') || '')"
            )
            rendered = Counter(_hex(f) for f in fills if f)
            for colour, count in Counter(c for _, c in expected.values()).items():
                assert rendered[colour.lower()] == count, (colour, rendered)
            screenshot(page, "map")
            # filter: only sites with open clues (the pharmacy's alert made a clue)
            page.get_by_label("仅显示有在办线索").check()
            poll(lambda: page.get_attribute("#map-canvas", "data-markers") == "1", 10, "filtered to one marker")
            # click-through: the site's detail with a link to its clue in the console
            page.locator("ul.map-sites li", has_text="示例大药房").click()
            link = page.locator(".map-detail a").first
            assert link.get_attribute("href", timeout=5000).startswith("/#/clue/")
            # set the unlocated site's position from the page, read off a Chinese map app (GCJ-02)
            page.get_by_label("仅显示有在办线索").uncheck()
            poll(lambda: page.get_attribute("#map-canvas", "data-markers") == "3", 10, "unfiltered")
            page.locator("ul.map-unlocated li", has_text="unmapped-04").click()
            form = page.get_by_role("form", name="设置场所坐标")
            form.get_by_label("经度").fill("121.5")  # outside the county: the server's Chinese reason is shown
            form.get_by_label("纬度").fill("31.2")
            form.get_by_role("button", name="保存坐标").click()
            poll(lambda: "不在辖区" in form.get_by_role("alert").inner_text(), 10, "the refusal shown")
            gcj = wgs84_to_gcj02(120.6400, 31.3000)
            form.get_by_label("经度").fill(f"{gcj[0]:.7f}")
            form.get_by_label("纬度").fill(f"{gcj[1]:.7f}")
            form.get_by_label("坐标系").select_option("gcj02")
            form.get_by_role("button", name="保存坐标").click()
            poll(lambda: page.get_attribute("#map-canvas", "data-markers") == "4", 10, "the new marker")
            site = admin.get("/registry/sites/unmapped-04").json()
            assert distance_m(site["longitude"], site["latitude"], 120.6400, 31.3000) < 0.05
        finally:
            page.close()
        admin.close()
        _subject_page_coordinates(browser, cloud)


def _subject_page_coordinates(browser: Any, cloud: LiveCloud) -> None:
    """The subject page (same seeded county): the subject's and its sites' positions shown (WGS-84) and edited with
    the API's validation — 0,0 and outside the county refused in Chinese, GCJ-02 input stored as WGS-84."""
    chief = cloud.client("chief", PASSWORD)
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        login(page, cloud.base, "/#/subjects", "chief")
        page.get_by_role("table", name="市场主体").get_by_text("示例大药房有限公司").click()
        card = page.get_by_role("region", name="示例大药房有限公司 · 位置")
        subject_form = card.get_by_role("form", name="市场主体（住所）坐标")
        site_form = card.get_by_role("form", name="场所：示例大药房人民路店坐标")
        assert "经度 120.629000，纬度 31.318000（WGS-84）" in site_form.inner_text()  # set on the map page
        # 0,0: refused before it reaches the server
        subject_form.get_by_label("经度").fill("0")
        subject_form.get_by_label("纬度").fill("0")
        subject_form.get_by_role("button", name="保存坐标").click()
        poll(lambda: "0,0 无效" in subject_form.get_by_role("alert").inner_text(), 10, "0,0 refused")
        # outside the county: the server's reason
        subject_form.get_by_label("经度").fill("121.5")
        subject_form.get_by_label("纬度").fill("31.2")
        subject_form.get_by_role("button", name="保存坐标").click()
        poll(lambda: "不在辖区" in subject_form.get_by_role("alert").inner_text(), 10, "outside refused")
        # inside, WGS-84
        subject_form.get_by_label("经度").fill("120.6300")
        subject_form.get_by_label("纬度").fill("31.3100")
        subject_form.get_by_role("button", name="保存坐标").click()
        poll(lambda: "经度 120.630000" in subject_form.inner_text(), 10, "the stored position shown")
        subject = chief.get(f"/registry/subjects/{cloud.ids['subject_id']}").json()
        assert (subject["longitude"], subject["latitude"]) == (120.63, 31.31)
        # the site, read off a Chinese map app (GCJ-02): stored as WGS-84
        glon, glat = wgs84_to_gcj02(120.6310, 31.3160)
        site_form.get_by_label("经度").fill(f"{glon:.7f}")
        site_form.get_by_label("纬度").fill(f"{glat:.7f}")
        site_form.get_by_label("坐标系").select_option("gcj02")
        site_form.get_by_role("button", name="保存坐标").click()
        poll(lambda: "经度 120.631000" in site_form.inner_text(), 10, "the converted position shown")
        site = chief.get("/registry/sites/pharmacy-01").json()
        assert distance_m(site["longitude"], site["latitude"], 120.6310, 31.3160) < 0.05
        assert card.get_by_role("link", name="在一张图中查看").get_attribute("href") == "/map/?site=pharmacy-01"
        assert errors == []
    finally:
        page.close()
    chief.close()
