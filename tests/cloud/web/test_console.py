"""The console end to end in headless Chromium against the real cloud app on uvicorn.

* supervisor: a drug-fridge alert ingested through real mosquitto appears live (SSE) on the clue board and the big
  screen without reload; its page shows the readings chart around the alert; it is dispatched to inspection.
* inspector (390 px): acknowledges the notification, accepts the task, checks in, fills the checklist with a
  photo, submits and sees the generated rectification order.
* kiosk: field validation, a receipt number, the complaint on the supervisor's clue board, rate limiting.
* case page: the head approves opening a case from the browser; a missing reason shows the API's Chinese 422.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from protocols import AlertEvent, AlertPhase, Channel, Reading, Severity, TelemetryBatch, encode, topic_for
from sentinel_cli.servers import Server
from tests.cloud.web.conftest import (
    PASSWORD,
    LiveCloud,
    charts_built,
    live_cloud,
    poll,
    screenshot,
    seed_county,
)
from tests.utils.kiosk_terminals import terminal_headers
from tests.utils.registration import register

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde\x00\x00"
    b"\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe\x92\xef\x00\x00\x00\x00IEND\xaeB`\x82"
)


@pytest.fixture(autouse=True)
def _quiet_notify(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTINEL_NOTIFY_MQTT_ENABLED", "false")
    monkeypatch.setenv("SENTINEL_NOTIFY_POLL_S", "0.1")


def login(page: Any, base: str, path: str, username: str) -> None:
    page.goto(f"{base}{path}")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()


def publish(port: int, messages: list[tuple[str, bytes]]) -> None:
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="web-test-agent", protocol=mqtt.MQTTv311)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for topic, payload in messages:
            info = client.publish(topic, payload, qos=1)
            assert info.rc == mqtt.MQTT_ERR_SUCCESS
            info.wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def fridge_readings(now: datetime) -> TelemetryBatch:
    """An hour of a drug refrigerator (2–8 °C): steady at 5 °C, warming to 12 °C over the last 15 minutes."""
    readings = []
    for minute in range(60, -1, -1):
        ts = now - timedelta(minutes=minute)
        value = 5.0 + (0.0 if minute > 15 else (15 - minute) * 7.0 / 15)
        readings.append(Reading(sensor_id="fridge1.temperature", ts=ts, value=round(value, 2), unit="°C"))
    return TelemetryBatch(site_id="pharmacy-01", agent_id="agent-pharmacy-01", seq=1, sent_at=now, readings=readings)


def fridge_alert(now: datetime) -> AlertEvent:
    return AlertEvent(
        site_id="pharmacy-01",
        agent_id="agent-pharmacy-01",
        seq=2,
        alert_id="al-fridge1-temp-high-0001",
        device_id="fridge1",
        sensor_id="fridge1.temperature",
        rule_id="gsp_fridge_temp_high",
        phase=AlertPhase.RAISE,
        severity=Severity.MAJOR,
        category="drug_storage",
        value=12.0,
        limit=8.0,
        unit="°C",
        message="药品冷藏柜温度 12.0 °C 超过上限 8 °C",
        ts=now,
        started_at=now - timedelta(minutes=5),
    )


def test_supervisor_sees_live_alert_chart_and_dispatches(browser: Any, mosquitto: Server, tmp_path: Path) -> None:
    with live_cloud(tmp_path, ingest_enabled=True, mqtt_port=mosquitto.port) as cloud:
        seed_county(cloud)
        # the installer registers the fridge probe (since #13 a sensor nobody registered is quarantined)
        register(cloud.app.state.engine, "pharmacy-01", sensors=["fridge1.temperature"])
        poll(lambda: cloud.app.state.ingest is not None and cloud.app.state.ingest.ready.is_set(), 20, "ingest")
        now = datetime.now(UTC)
        batch = fridge_readings(now)
        publish(mosquitto.port, [(topic_for("pharmacy-01", batch.agent_id, Channel.TELEMETRY), encode(batch))])
        chief = cloud.client("chief", PASSWORD)
        poll(lambda: chief.get("/ingest/stats").json().get("readings_stored", 0) >= 61, 20, "readings stored")

        context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
        screen_ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
        try:
            page = context.new_page()
            login(page, cloud.base, "/", "chief")
            page.get_by_text("实时：已连接").wait_for()
            page.evaluate("window.__notReloaded = true")
            board = page.get_by_role("table", name="线索列表")
            board.get_by_text("暂无符合条件的线索").wait_for()

            screen = screen_ctx.new_page()
            login(screen, cloud.base, "/screen/", "chief")
            screen.locator("#count-drug").filter(has_text="0").wait_for()
            screen.get_by_text("实时：已连接").wait_for()
            screen.evaluate("window.__notReloaded = true")

            alert = fridge_alert(now)
            publish(mosquitto.port, [(topic_for("pharmacy-01", alert.agent_id, Channel.EVENTS), encode(alert))])

            # live, without reload: the live list, the board row, a toast
            live = page.get_by_role("region", name="实时告警")
            live.get_by_text("药品冷藏柜温度 12.0 °C").wait_for(timeout=20_000)
            row = board.locator("tr[data-clue-id]").filter(has_text="药品储存")
            row.first.wait_for()
            assert page.evaluate("window.__notReloaded") is True
            # the big screen: feed and drug count, also without reload
            screen.locator("#feed").get_by_text("药品冷藏柜温度 12.0 °C").wait_for(timeout=20_000)
            screen.locator("#count-drug").filter(has_text="1").wait_for(timeout=20_000)
            assert screen.evaluate("window.__notReloaded") is True
            if charts_built():
                screen.locator("#trend[data-ready='1'] svg").first.wait_for()
            screenshot(screen, "screen")
            screenshot(page, "console-board")

            # open it: timeline, analysis, readings chart around the alert
            live.get_by_role("link").first.click()
            page.get_by_role("heading", name="告警前后读数").wait_for()
            chart = page.locator("#readings-chart")
            poll(lambda: int(chart.get_attribute("data-points") or 0) >= 50, 15, "readings in the chart")
            if charts_built():
                page.locator("#readings-chart[data-ready='1'] canvas").first.wait_for()
            else:
                page.get_by_text("npm ci").first.wait_for()
            assert page.locator("#clue-timeline li").count() >= 2
            assert page.locator("#analysis-explanation").inner_text().strip()
            screenshot(page, "console-clue", full_page=True)

            # dispatch to inspection
            clue_id = int(page.url.rsplit("/", 1)[1])
            # the form names the inspectors: the jurisdiction's two with the least work are suggested (checked);
            # the system administrator is never a candidate; only dispositions dispatch can carry out are offered
            people = page.locator("#dispatch-people")
            people.locator("input[name=assignee]").first.wait_for()
            checked = people.locator("label.person").filter(has=page.locator("input:checked"))
            assert sorted(checked.all_inner_texts()) == sorted(
                [t for t in people.locator("label.person").all_inner_texts() if "建议" in t]
            )
            assert {t.split()[0] for t in checked.all_inner_texts()} == {"李四", "王五"}
            assert "系统管理员" not in people.inner_text() and "admin" not in people.inner_text()
            assert page.locator("#dispatch-disposal option").all_inner_texts() == ["现场检查", "登记案源"]
            page.get_by_label("工作要求").fill("核查冷藏柜温度记录与冷藏药品储存情况")
            page.locator("#dispatch-button").click()
            page.locator("#clue-state").filter(has_text="已派发").wait_for()
            page.get_by_text(re.compile("检查人员：(李四、王五|王五、李四)")).wait_for()
            detail = chief.get(f"/clues/{clue_id}").json()
            assert detail["state"] == "dispatched" and len(detail["tasks"]) == 1
            assert sorted(detail["tasks"][0]["assignees"]) == sorted([cloud.users["insp1"], cloud.users["insp2"]])

            # tasks and cases with deadlines; subjects; scorecards
            page.get_by_role("link", name="任务与案件期限").click()
            page.get_by_role("table", name="期限列表").get_by_role(
                "link", name=detail["tasks"][0]["task_no"]
            ).wait_for()
            assert page.get_by_text(re.compile("剩余 \\d+ 个工作日|今日到期")).count() >= 1
            screenshot(page, "console-deadlines")
            page.get_by_role("link", name="市场主体与风险").click()
            page.get_by_text("示例大药房有限公司").wait_for()
            screenshot(page, "console-subjects")
            page.get_by_role("link", name="考核评分").click()
            page.locator("#scores table, #scores p").first.wait_for()
            screenshot(page, "console-scores")
        finally:
            context.close()
            screen_ctx.close()
            chief.close()


def _dispatched_task(cloud: LiveCloud) -> dict[str, Any]:
    chief = cloud.client("chief", PASSWORD)
    try:
        made = chief.post(
            "/clues",
            json={
                "kind": "walk_in",
                "channel": "walk_in",
                "category": "drug_storage",
                "severity": "major",
                "title": "群众来访反映冷藏药品储存温度异常",
                "description": "来访人称药店冷藏柜显示 12 ℃",
                "subject_id": cloud.ids["subject_id"],
                "site_id": "pharmacy-01",
            },
        )
        assert made.status_code == 201, made.text
        clue_id = made.json()["clue"]["id"]
        sent = chief.post(
            f"/clues/{clue_id}/dispatch",
            json={"disposal": "inspect", "assignees": [cloud.users["insp1"], cloud.users["insp2"]]},
        )
        assert sent.status_code == 200, sent.text
        task: dict[str, Any] = sent.json()["task"]
        return task
    finally:
        chief.close()


def test_inspector_acknowledges_fills_checklist_and_sees_rectification_order(browser: Any, tmp_path: Path) -> None:
    with live_cloud(tmp_path) as cloud:
        seed_county(cloud)
        task = _dispatched_task(cloud)
        insp = cloud.client("insp1", PASSWORD)
        poll(lambda: insp.get("/notifications?unacked=true").json(), 20, "the task notification for insp1")

        context = browser.new_context(
            viewport={"width": 390, "height": 844},
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            locale="zh-CN",
            geolocation={"latitude": 31.30, "longitude": 120.62},
            permissions=["geolocation"],
        )
        try:
            page = context.new_page()
            login(page, cloud.base, "/m/", "insp1")
            page.get_by_role("heading", name="我的通知").wait_for()
            buttons = page.get_by_role("button", name="确认收到")
            buttons.first.wait_for()
            screenshot(page, "mobile-notifications")
            open_count = buttons.count()
            assert open_count == len(insp.get("/notifications?unacked=true").json()) >= 1
            for left in range(open_count - 1, -1, -1):  # one tap each: 新线索 (on duty) and 检查任务 (assignee)
                buttons.first.tap()
                poll(lambda n=left: buttons.count() == n, 10, f"{left} unacknowledged")
            page.get_by_text("已确认（insp1").first.wait_for()
            assert insp.get("/notifications?unacked=true").json() == []

            page.get_by_role("link", name="任务", exact=True).tap()
            page.get_by_role("link", name=re.compile(task["task_no"])).tap()
            page.get_by_role("button", name="接收任务").tap()
            page.get_by_role("button", name="现场签到").tap()
            page.get_by_text("已签到").wait_for()
            for code in task["items"]:
                item = page.locator(f"[data-item='{code}']")
                if code == "DR-STO-01":
                    item.locator("label").filter(has_text="不符合").tap()
                    item.get_by_label("说明").fill("冷藏柜温度 12 ℃，超出 2–8 ℃")
                    item.get_by_label("现场照片").set_input_files(
                        files=[{"name": "fridge.png", "mimeType": "image/png", "buffer": PNG}]
                    )
                else:
                    item.locator("label").filter(has_text=re.compile("^符合$")).tap()
                item.get_by_role("button", name="保存本项").tap()
                item.get_by_text("已记录").wait_for()
            assert "照片 1 张" in page.locator("[data-item='DR-STO-01']").inner_text()
            screenshot(page, "mobile-task")
            page.get_by_label("现场检查情况").fill("冷藏柜温度 12 ℃，超出 2–8 ℃，已责令整改")
            page.get_by_role("button", name="提交检查结果").tap()
            order = page.locator("[data-kind='rectification_order']")
            order.wait_for()
            order.get_by_text("前改正").wait_for()
            order.scroll_into_view_if_needed()
            assert "冷藏柜温度 12" in order.inner_text()
            screenshot(page, "mobile-rectification-order")
            order.get_by_role("button").tap()
            order.locator("iframe").wait_for()  # the signed PDF, fetched with the token

            docs = insp.get(f"/documents?task_id={task['id']}").json()
            assert "rectification_order" in {d["kind"] for d in docs}
            page.get_by_role("link", name="案件", exact=True).tap()
            page.get_by_role("heading", name="我的案件").wait_for()

            # PC review: the head sees who did it, where they checked in, the conclusion in Chinese; 审核通过 leaves the
            # rectification order owed a 复查 on its deadline and keeps the clue open
            pc = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN").new_page()
            login(pc, cloud.base, f"/#/task/{task['id']}", "chief")
            pc.get_by_role("heading", name="审核").wait_for()
            assert "李四" in pc.locator("#task-assignees").inner_text()
            assert "责令限期改正" in pc.locator("dl").first.inner_text()
            assert "定位 31.3" in pc.locator("dl").first.inner_text()
            pc.locator("#review-close").click()
            pc.get_by_text("已审核完结").first.wait_for()
            tasks = insp.get(f"/tasks?clue_id={task['clue_id']}").json()
            tasks = tasks["data"] if isinstance(tasks, dict) else tasks
            assert [t for t in tasks if t["method"] == "复查"] == []  # the 复查 comes on the deadline (scheduler)
            clue = insp.get(f"/clues/{task['clue_id']}").json()
            assert clue["state"] == "in_execution" and clue["follow_ups"][0]["state"] == "pending"
            # the party reports the rectification done: the head schedules the 复查 early from the clue page
            pc.goto(f"{cloud.base}/#/clue/{task['clue_id']}")
            fid = clue["follow_ups"][0]["id"]
            pc.locator(f"#early-reason-{fid}").fill("当事人报告已整改，申请复查")
            pc.locator(f"#early-follow-up-{fid}").click()
            pc.get_by_text("已安排复查任务").first.wait_for()
            tasks = insp.get(f"/tasks?clue_id={task['clue_id']}").json()
            tasks = tasks["data"] if isinstance(tasks, dict) else tasks
            assert [t["state"] for t in tasks if t["method"] == "复查"] == ["assigned"]
            pc.context.close()
        finally:
            context.close()
            insp.close()


def test_head_approves_case_opening_from_case_page(browser: Any, tmp_path: Path) -> None:
    with live_cloud(tmp_path) as cloud:
        seed_county(cloud)
        admin = cloud.client()
        admin.put(
            f"/staff/{cloud.users['chief']}",
            json={
                "duties": ["dispatcher", "supervisor", "department_head", "bureau_head"],
                "department_id": cloud.ids["department_id"],
            },
        ).raise_for_status()
        admin.close()
        chief = cloud.client("chief", PASSWORD)
        created = chief.post(
            "/cases",
            json={
                "subject_id": cloud.ids["subject_id"],
                "summary": "冷藏药品储存温度不符合要求",
                "officers": [cloud.users["insp1"], cloud.users["insp2"]],
            },
        )
        created.raise_for_status()
        case = created.json()
        assert case["state"] == "registered" and "approve_opening" in case["allowed_actions"]
        # the 立案审批表 prints the opinions entered by a handler and the department head (issue #14)
        insp = cloud.client("insp1", PASSWORD)
        insp.post(f"/cases/{case['id']}/opinions", json={"opinion": "建议立案调查"}).raise_for_status()
        insp.close()
        chief.post(f"/cases/{case['id']}/opinions", json={"opinion": "同意承办人意见"}).raise_for_status()
        context = browser.new_context(viewport={"width": 1440, "height": 1000}, locale="zh-CN")
        try:
            page = context.new_page()
            login(page, cloud.base, f"/#/case/{case['id']}", "chief")
            page.locator("#case-state").filter(has_text="案源登记").wait_for()
            page.evaluate("window.__noReload = 1")
            # a refusal without a reason: the API's 422 detail in Chinese, the state unchanged
            page.get_by_role("button", name="不予立案").click()
            page.locator("#case-action-error").filter(has_text="必须填写理由").wait_for()
            assert chief.get(f"/cases/{case['id']}").json()["state"] == "registered"
            page.get_by_role("button", name="批准立案").click()
            page.locator("#case-state").filter(has_text="已立案").wait_for()
            assert page.evaluate("window.__noReload") == 1
            page.get_by_role("button", name="终止案件").wait_for()  # the next steps of the new state
            assert page.get_by_role("button", name="批准立案").count() == 0
            after = chief.get(f"/cases/{case['id']}").json()
            assert after["state"] == "approved" and after["version"] > case["version"]
            screenshot(page, "console-case")
        finally:
            context.close()
            chief.close()


def test_kiosk_complaint_gets_receipt_and_reaches_clue_board(browser: Any, tmp_path: Path) -> None:
    import httpx

    with live_cloud(tmp_path) as cloud:
        seed_county(cloud)
        context = browser.new_context(viewport={"width": 1080, "height": 1400}, locale="zh-CN")
        try:
            page = context.new_page()
            # the terminal is provisioned once with its credential in the URL fragment (never sent to the server);
            # the page keeps it, drops it from the address bar and presents it with every submission
            credential = terminal_headers(cloud.app.state.engine, "政务大厅 1 号机")["X-Kiosk-Token"]
            page.goto(f"{cloud.base}/kiosk/#terminal={credential}")
            page.get_by_role("button", name="提交").wait_for()
            assert page.evaluate("location.hash") == ""
            assert page.evaluate("localStorage.getItem('ms.kiosk.terminal')") == credential
            page.get_by_role("button", name="提交").click()
            page.get_by_text("请填写经营者名称").wait_for()
            assert page.get_by_label("联系电话").get_attribute("aria-invalid") == "true"
            page.get_by_label("姓名").fill("张某")
            page.get_by_label("联系电话").fill("abc")
            page.get_by_role("button", name="提交").click()
            page.get_by_text("电话号码格式不正确").wait_for()
            page.get_by_label("联系电话").fill("138 0000 1234")
            page.get_by_label("联系地址").fill("苏州市姑苏区道前街 1 号")
            page.get_by_label("问题类别").select_option("food")
            page.get_by_label("被投诉（举报）经营者名称").fill("好味道餐馆")
            page.get_by_label("经营者地址").fill("苏州市姑苏区观前街 8 号")
            page.get_by_label("您的诉求").fill("要求退款并赔偿")
            page.get_by_label("事实经过").fill("11 月 25 日晚在该店就餐，菜品变质有异味，店家拒绝退款。")
            page.get_by_label("事发地点").fill("观前街 8 号店内")
            page.get_by_label("涉及商品或服务").fill("套餐晚餐")
            page.get_by_label("涉及金额（元）").fill("12x")
            page.get_by_role("button", name="提交").click()
            page.get_by_text("金额请填写数字").wait_for()
            page.get_by_label("涉及金额（元）").fill("168.50")
            assert page.locator("[aria-invalid='true']").count() == 0  # errors clear as the fields are corrected
            page.evaluate("scrollTo(0, 0)")
            screenshot(page, "kiosk-form")
            page.get_by_role("button", name="提交").click()
            receipt = page.locator("#receipt-no")
            receipt.wait_for()
            number = receipt.inner_text().strip()
            assert re.fullmatch(r"ZZ\d{14}", number), number
            screenshot(page, "kiosk-receipt")
            code = page.locator("#verify-code").inner_text().strip()
            page.get_by_role("button", name="查询办理进度").click()
            page.get_by_label("查询码（6 位数字）").fill(code)  # the receipt number is filled in already
            page.get_by_role("button", name="查询", exact=True).click()
            page.locator("#p-stage").get_by_text("已收到，待决定是否受理").wait_for()
            assert "决定是否受理" in page.locator("#p-due").inner_text()
            assert "张某" not in page.locator("#p-result").inner_text()
            page.get_by_role("button", name="返回首页").click()

            # the supervisor finds it on the clue board (walk-in channel filter)
            board = context.new_page()
            login(board, cloud.base, "/", "chief")
            board.get_by_label("来源渠道").select_option("walk_in")
            board.get_by_role("table", name="线索列表").get_by_text("好味道餐馆").wait_for()
            chief = cloud.client("chief", PASSWORD)
            clues = chief.get("/clues?category=food").json()["data"]
            assert any("好味道餐馆" in c["title"] and c["channel"] == "walk_in" for c in clues)
            order_no = next(c for c in clues if "好味道餐馆" in c["title"])
            assert order_no["kind"] == "complaint"
            chief.close()
            # the clue page shows the facts as fields and the contact masked; the chief (监督) opens it with a reason
            board.goto(f"{cloud.base}/#/clue/{order_no['id']}")
            facts = board.get_by_role("region", name="投诉举报内容（事实经过）")
            facts.get_by_text("套餐晚餐").wait_for()
            text = facts.inner_text()
            assert "168.50 元" in text and "观前街 8 号店内" in text and "138****1234" in text
            assert "138 0000 1234" not in board.locator("main").inner_text()
            facts.get_by_placeholder("查看理由，例如 回访投诉人").fill("回访投诉人")
            facts.get_by_role("button", name="查看完整联系方式").click()
            facts.get_by_text("138 0000 1234").wait_for()
        finally:
            context.close()

        # server-side: validation, size limit and per-terminal rate limit (no login needed)
        url = f"{cloud.base}/api/v1/console/kiosk/complaints"
        report = {
            "kind": "report",
            "anonymous": True,
            "respondent_name": "某商店",
            "facts": "销售过期食品，货架上有多件",
        }
        with httpx.Client(timeout=10) as c:
            assert c.post(url, json={"kind": "report", "respondent_name": "某"}).status_code == 422
            too_big = {**report, "facts": "很" * 20_000}
            assert c.post(url, json=too_big).status_code == 413
            # the page's submission counted against its terminal; the refused one above came from this address,
            # unregistered: the anonymous per-address limit (5) counts it, and a rotated X-Kiosk-Id header buys
            # nothing (registered terminals: tests/cloud/security/test_kiosk_terminals.py)
            codes = [c.post(url, json=report, headers={"X-Kiosk-Id": f"hall-{n}"}).status_code for n in range(6)]
            assert codes == [201] * 4 + [429] * 2, codes
