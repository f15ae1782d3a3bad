"""The inspector's phone at 390×844 and the dispatcher's PC on one live cloud (uvicorn + Chromium): the task shows
the site's name, address and party, a way there (AMap in GCJ-02, ``geo:`` in WGS-84), the latest readings of the
site with Chinese sensor names; the inspector declines with a reason, the dispatcher sees the reason and
re-dispatches (the decliner is replaced, the other officer kept); the new officer's check-in GPS is shown on the
phone and on the PC; the clue's 办结 box is its own form, not inside 改判."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cloud.geo.coords import wgs84_to_gcj02
from cloud.telemetry.store import ReadingRow
from tests.cloud.web.conftest import PASSWORD, live_cloud, screenshot, seed_county
from tests.cloud.web.test_console import _dispatched_task, login

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # one live cloud and two browser contexts (~15 s)
LON, LAT = 120.62, 31.30
PHONE = {"width": 390, "height": 844}


def _phone(browser: Any) -> Any:
    return browser.new_context(
        viewport=PHONE,
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
        geolocation={"latitude": LAT, "longitude": LON},
        permissions=["geolocation"],
    )


def test_phone_shows_the_site_and_a_declined_task_is_redispatched(browser: Any, tmp_path: Path) -> None:
    with live_cloud(tmp_path) as cloud:
        seed_county(cloud)
        admin = cloud.client()
        admin.patch("/registry/sites/pharmacy-01", json={"longitude": LON, "latitude": LAT}).raise_for_status()
        for device, name, sensor, quantity, unit in (
            ("fridge1", "药品冷藏柜", "fridge1.temperature", "temperature", "°C"),
            ("hall", "营业厅", "hall.humidity", "humidity", "%"),
        ):
            admin.post(
                "/registry/devices", json={"site_id": "pharmacy-01", "device_id": device, "name": name}
            ).raise_for_status()
            admin.post(
                "/registry/sensors",
                json={
                    "site_id": "pharmacy-01",
                    "sensor_id": sensor,
                    "device_id": device,
                    "quantity": quantity,
                    "unit": unit,
                },
            ).raise_for_status()
        r = admin.post(
            "/users",
            json={
                "username": "insp3",
                "password": PASSWORD,
                "full_name": "赵六",
                "role": "inspector",
                "department": "gusu-1",
            },
        )
        r.raise_for_status()
        cloud.users["insp3"] = r.json()["id"]
        admin.put(
            f"/staff/{cloud.users['insp3']}",
            json={"duties": ["inspector"], "department_id": cloud.ids["department_id"], "cert_no": "32050009"},
        ).raise_for_status()
        admin.close()
        now = datetime.now(UTC)
        cloud.app.state.store.write_readings(
            [
                ReadingRow("edge-pharmacy", "pharmacy-01", "fridge1.temperature", now, 12.0, "°C", "good"),
                ReadingRow("edge-pharmacy", "pharmacy-01", "hall.humidity", now, 55.0, "%", "good"),
            ]
        )
        task = _dispatched_task(cloud)  # to 李四 (insp1) and 王五 (insp2)

        phone = _phone(browser)
        try:
            page = phone.new_page()
            login(page, cloud.base, f"/m/#/task/{task['id']}", "insp1")
            site = page.locator("#task-site")
            site.get_by_role("heading", name="示例大药房人民路店").wait_for()
            assert "苏州市姑苏区人民路 100 号" in page.locator("#site-address").inner_text()
            glon, glat = wgs84_to_gcj02(LON, LAT)
            amap = page.get_by_role("link", name="高德地图导航").get_attribute("href") or ""
            assert amap.startswith(f"https://uri.amap.com/marker?position={glon:.6f},{glat:.6f}")
            geo = page.get_by_role("link", name="用地图应用打开").get_attribute("href") or ""
            assert geo.startswith(f"geo:{LAT:.6f},{LON:.6f}")
            readings = page.locator("#site-readings").inner_text()
            assert "药品冷藏柜温度：12" in readings and "营业厅湿度：55" in readings
            assert "fridge1" not in page.locator("#view").inner_text()  # no raw sensor ids on the phone
            box = site.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
            screenshot(page, "mobile-task-site")

            # decline: a reason is required, then the task goes back to the dispatcher
            page.get_by_text("退回任务 / 申请回避").tap()
            page.get_by_role("button", name="确认退回").tap()
            assert page.locator("#decline-reason").get_attribute("aria-invalid") == "true"
            page.get_by_label("退回理由（必填）").fill("与当事人负责人系亲属，申请回避")
            page.get_by_role("button", name="确认退回").tap()
            page.locator("#task-state").get_by_text("已退回（待重派）").wait_for()
        finally:
            phone.close()

        pc = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN").new_page()
        try:
            login(pc, cloud.base, f"/#/task/{task['id']}", "chief")
            reason = pc.locator("#task-decline-reason")
            reason.wait_for()
            assert "与当事人负责人系亲属，申请回避" in reason.inner_text() and "李四" in reason.inner_text()
            assert "人民路 100 号" in pc.locator("#task-site").inner_text()
            pc.get_by_role("button", name="重新派发").click()
            # the decliner replaced, the other officer kept: wait for the task's own assignee line to re-render
            pc.locator("#task-assignees", has_text="赵六").wait_for()
            assert "李四" not in pc.locator("#task-assignees").inner_text()

            phone = _phone(browser)
            page = phone.new_page()
            login(page, cloud.base, f"/m/#/task/{task['id']}", "insp3")
            page.get_by_role("button", name="接收任务").tap()
            page.get_by_role("button", name="现场签到").tap()
            gps = page.locator("#check-in-gps")
            gps.wait_for()
            assert f"定位 {LAT:.5f}, {LON:.5f}" in gps.inner_text() and "在场所范围内" in gps.inner_text()
            phone.close()

            pc.reload()
            pc.locator("#task-check-in").get_by_text(f"定位 {LAT:.5f}, {LON:.5f}").wait_for()
            assert "在场所范围内" in pc.locator("#task-check-in").inner_text()
            # the clue's 办结 reason box is its own form, not inside 改判
            pc.goto(f"{cloud.base}/#/clue/{task['clue_id']}")
            pc.locator("#clue-transition-form #action-reason").wait_for()
            assert pc.locator("form[aria-label='改变研判结论'] #action-reason").count() == 0
            assert pc.locator("#clue-transition-form [data-action='close']").count() == 1
        finally:
            pc.context.close()
