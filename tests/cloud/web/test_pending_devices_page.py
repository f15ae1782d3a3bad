"""The console's 待审批设备 / 隔离数据 page (#13) in headless Chromium against the real app on uvicorn.

A supervisor sees each device waiting for approval with its site's name, the device in words, its sensors, the
reason (Chinese, from the one vocabulary), the held count and first/last seen; opens the held messages of one
(kind, sequence, time in Asia/Shanghai, readings count); approves one -- the page says how many held messages
were replayed, and the readings are then in the telemetry store -- and rejects another with a note. An inspector
sees the lists without any action, and the API refuses the inspector's approval (403). No raw code on the page.

Real parts: uvicorn + the app + SQLite + Chromium; the held rows carry real encoded protocol messages on their
topics (tests/utils/quarantine_factories.py; the ingest's own hold is tested on mosquitto in
tests/cloud/registry/test_quarantine.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.cloud.web.conftest import PASSWORD, LiveCloud, live_cloud, seed_county
from tests.cloud.web.test_console_pages import no_leaked_threads  # noqa: F401  (the module server's worker pool)
from tests.utils.quarantine_factories import held_device
from tests.utils.raw_codes import assert_no_raw_codes

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # a seeded county served to Chromium: ~30 s for the module

SITE = "pharmacy-01"


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCloud]:
    with live_cloud(tmp_path_factory.mktemp("pending-page")) as c:
        seed_county(c)
        engine = c.app.state.engine
        c.ids["camera"] = held_device(
            engine, site_id=SITE, device_id="fridge-9", device_type="probe", sensors=["t9", "h9"], alert=True
        )
        c.ids["rogue"] = held_device(
            engine, site_id=SITE, device_id="cam-x", device_type="camera", sensors=["motion"], batches=1
        )
        yield c


def open_console(browser: Any, base: str, username: str) -> tuple[Any, Any]:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    page = context.new_page()
    page.goto(f"{base}/")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    page.wait_for_selector("nav")
    return context, page


def row(page: Any, device_words: str) -> Any:
    return page.locator("#pending-table tbody tr", has_text=device_words)


def test_supervisor_reviews_held_data_and_approves_and_rejects(cloud: LiveCloud, browser: Any) -> None:
    context, page = open_console(browser, cloud.base, "chief")
    try:
        page.get_by_role("link", name="待审批设备").click()
        page.locator("#pending-table tbody tr[data-pending]").first.wait_for()
        probe = row(page, "温湿度探头")
        text = probe.inner_text()
        assert "示例大药房人民路店" in text and "2 个" in text and "3 条" in text
        assert "边缘设备申报，待批准接入" in text  # the reason through the vocabulary
        assert "摄像机" in row(page, "摄像机").inner_text()
        assert_no_raw_codes(page, "待审批设备")
        probe.get_by_role("link", name="查看隔离数据").click()
        page.locator("#held-table tbody tr[data-held]").nth(2).wait_for()
        held = [r.inner_text() for r in page.locator("#held-table tbody tr").all()]
        assert [h.split("\t")[0] for h in held] == ["读数", "读数", "告警"]
        assert [h.split("\t")[1] for h in held] == ["1", "2", "3"]
        assert [h.split("\t")[3] for h in held] == ["2", "2", "—"]
        assert all("设备尚未批准接入" in h for h in held)
        assert_no_raw_codes(page, "隔离数据")
        page.get_by_label("审批意见").fill("现场核实为新增冷藏柜探头")
        page.locator("#pending-approve").click()
        outcome = page.locator("#pending-outcome")
        outcome.wait_for()
        assert "隔离数据 3 条已按原顺序补入（读数 4 条、告警 1 条）" in outcome.inner_text()
        assert row(page, "温湿度探头").count() == 0
        # the rogue camera: rejecting needs a note; the held batch becomes a dead letter
        row(page, "摄像机").get_by_role("link", name="查看隔离数据").click()
        page.locator("#pending-reject").wait_for()
        page.locator("#pending-reject").click()
        assert "须填写审批意见" in page.locator("#pending-error").inner_text()
        page.get_by_label("审批意见").fill("未经登记的摄像机，拒绝接入")
        page.locator("#pending-reject").click()
        page.locator("#pending-outcome", has_text="拒绝").wait_for()
        assert "隔离数据 1 条已转为死信" in page.locator("#pending-outcome").inner_text()
        page.locator("#pending-state").select_option(label="已拒绝")
        page.locator("#pending-table tbody tr", has_text="未经登记的摄像机").wait_for()
        assert_no_raw_codes(page, "已拒绝的设备")
    finally:
        context.close()
    api = cloud.client("chief", PASSWORD)
    try:
        now = datetime.now(UTC)
        window = {"start": (now - timedelta(hours=1)).isoformat(), "end": now.isoformat()}
        series = api.get(f"/telemetry/sites/{SITE}/sensors/t9/readings", params=window).json()
        assert [r["value"] for r in series["readings"]] == [5.0, 6.0], series  # replayed, with their own times
        assert api.get(f"/registry/quarantine?pending_id={cloud.ids['camera']}").json() == []
        assert api.get(f"/registry/quarantine?pending_id={cloud.ids['rogue']}").json() == []
    finally:
        api.close()


def test_an_inspector_sees_the_lists_without_actions_and_the_api_refuses(
    cloud: LiveCloud, browser: Any, tmp_path: Path
) -> None:
    pending_id = held_device(
        cloud.app.state.engine, site_id=SITE, device_id="fridge-7", device_type="modbus_probe", sensors=["t7"]
    )
    context, page = open_console(browser, cloud.base, "insp1")
    try:
        page.get_by_role("link", name="待审批设备").click()
        target = row(page, "Modbus 温湿度探头")
        target.wait_for()
        target.get_by_role("link", name="查看隔离数据").click()
        page.locator("#held-table tbody tr[data-held]").first.wait_for()
        assert page.locator("#pending-decision").count() == 0
        assert page.get_by_role("button", name="批准接入").count() == 0
        assert_no_raw_codes(page, "待审批设备（检查人员）")
    finally:
        context.close()
    inspector = cloud.client("insp1", PASSWORD)
    try:
        for action in ("approve", "reject"):
            refused = inspector.post(f"/registry/pending/{pending_id}/{action}", json={"note": "试图越权"})
            assert refused.status_code == 403, refused.text
        assert len(inspector.get(f"/registry/quarantine?pending_id={pending_id}").json()) == 2
    finally:
        inspector.close()
