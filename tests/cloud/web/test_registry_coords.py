"""Coordinates on the console's subject page, in headless Chromium against the real app: the subject's and its
sites' positions are shown (WGS-84) and edited with the same validation as the API — 0,0 and a point outside the
county refused with a Chinese reason, GCJ-02 input (read off 高德) converted to the stored WGS-84."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cloud.geo.boundary import DEMO_BOUNDARY
from cloud.geo.coords import distance_m, wgs84_to_gcj02
from tests.cloud.web.conftest import PASSWORD, live_cloud, poll, seed_county
from tests.cloud.web.test_console import login

pytestmark = [pytest.mark.browser]


def test_subject_page_shows_and_edits_coordinates(
    browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENTINEL_COUNTY_BOUNDARY_FILE", str(DEMO_BOUNDARY))
    monkeypatch.setenv("SENTINEL_NOTIFY_MQTT_ENABLED", "false")
    with live_cloud(tmp_path) as cloud:
        seed_county(cloud)
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
            assert "未标注坐标" in site_form.inner_text()
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
            glon, glat = wgs84_to_gcj02(120.6290, 31.3180)
            site_form.get_by_label("经度").fill(f"{glon:.7f}")
            site_form.get_by_label("纬度").fill(f"{glat:.7f}")
            site_form.get_by_label("坐标系").select_option("gcj02")
            site_form.get_by_role("button", name="保存坐标").click()
            poll(lambda: "经度 120.629000" in site_form.inner_text(), 10, "the converted position shown")
            site = chief.get("/registry/sites/pharmacy-01").json()
            assert distance_m(site["longitude"], site["latitude"], 120.6290, 31.3180) < 0.05
            assert card.get_by_role("link", name="在一张图中查看").get_attribute("href") == "/map/?site=pharmacy-01"
            assert errors == []
        finally:
            page.close()
        chief.close()
