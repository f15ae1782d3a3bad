"""The fleet page (/fleet/) in headless Chromium against the real app on uvicorn (issue 15): both agents are
listed with their state in Chinese; the offline one's open edge alert is "状态未知"; an admin's remote commands and
their results."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from cloud.core.db import make_engine
from cloud.fleet_commands import FleetCommand
from cloud.ingest.writer import IngestWriter, RawMessage
from cloud.telemetry.store import open_store
from protocols import Channel, encode, topic_for
from protocols.messages import CommandResult
from tests.cloud.conftest import ADMIN_PASSWORD
from tests.cloud.test_fleet_view import heartbeat, raised
from tests.cloud.web.conftest import PASSWORD, live_cloud, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_fleet_page_shows_online_offline_and_unknown_alerts(browser: Any, tmp_path: Path) -> None:
    with live_cloud(tmp_path) as cloud:
        engine = make_engine(cloud.settings)
        store = open_store(cloud.settings, engine)
        try:
            writer = IngestWriter(engine, store)
            writer.commit([heartbeat("site-a", "edge-1"), raised("site-a", "edge-1", 1)])
            writer.commit([heartbeat("site-b", "edge-1"), raised("site-b", "edge-1", 1)])
            with engine.begin() as conn:
                conn.execute(
                    text("UPDATE agent_presence SET last_seen_at = :t WHERE site_id = 'site-b'"),
                    {"t": (datetime.now(UTC) - timedelta(hours=2)).replace(tzinfo=None)},
                )
        finally:
            store.close()
            engine.dispose()
        page = browser.new_page()
        try:
            page.goto(f"{cloud.base}/fleet/")
            page.get_by_label("用户名").fill("admin")
            page.get_by_label("密码").fill(ADMIN_PASSWORD)
            page.get_by_role("button", name="登录").click()
            page.wait_for_selector("#fleet-summary")
            assert "共 2 台，在线 1，离线 1" in page.inner_text("#fleet-summary")
            a = page.locator('tr[data-agent="site-a/edge-1"]').inner_text()
            b = page.locator('tr[data-agent="site-b/edge-1"]').inner_text()
            assert "在线" in a and "告警中" in a and "+0.4 秒" in a and "3.5%" in a, a
            assert "离线" in b and "状态未知（代理离线）" in b and "小时前" in b, b
        finally:
            page.close()


def test_an_admin_pushes_a_file_pings_and_fetches_logs_and_sees_each_result(browser: Any, tmp_path: Path) -> None:
    """The command actions (admin only): a site file uploaded with a reason becomes a signed command listed as
    待发送; the agent's answers (through the real ingest writer) show as they arrive — a rollback as
    失败（已自动回滚） with the reason and the version in force, a logs result with its lines. A supervisor sees the
    page without the actions."""
    site_file = tmp_path / "site.toml"
    site_file.write_text('[agent]\nsite_id = "site-a"\n', encoding="utf-8")
    with live_cloud(tmp_path) as cloud:
        r = cloud.client().post(
            "/users", json={"username": "chief", "password": PASSWORD, "full_name": "周科长", "role": "supervisor"}
        )
        assert r.status_code == 201, r.text
        engine = make_engine(cloud.settings)
        store = open_store(cloud.settings, engine)
        page = browser.new_page()
        try:
            writer = IngestWriter(engine, store)
            writer.commit([heartbeat("site-a", "edge-1")])
            page.goto(f"{cloud.base}/fleet/")
            page.get_by_label("用户名").fill("admin")
            page.get_by_label("密码").fill(ADMIN_PASSWORD)
            page.get_by_role("button", name="登录").click()
            page.locator('tr[data-agent="site-a/edge-1"]').get_by_role("button", name="远程命令").click()
            page.wait_for_selector("#cmd-form")
            page.select_option("#cmd-name", "push_config")
            # as a buffer: a path would make Playwright read it in an executor thread that outlives the test
            upload = {"name": site_file.name, "mimeType": "text/plain", "buffer": site_file.read_bytes()}
            page.set_input_files("#cmd-file", files=[upload])
            page.wait_for_function("document.getElementById('cmd-text').value.includes('site-a')")
            page.fill("#cmd-why", "调整冷藏柜标签")
            page.get_by_role("button", name="下发").click()
            page.wait_for_selector('#cmd-history tr[data-state="pending"]')
            row = page.locator("#cmd-history tbody tr").first.inner_text()
            assert "下发站点配置" in row and "待发送" in row and "调整冷藏柜标签" in row and "admin" in row, row

            page.select_option("#cmd-name", "logs")
            page.fill("#cmd-lines", "5")
            page.fill("#cmd-why", "查看故障")
            page.get_by_role("button", name="下发").click()
            page.wait_for_function("document.querySelectorAll('#cmd-history tbody tr').length === 2")

            with Session(engine) as session:
                rows = {c.name: c for c in session.exec(select(FleetCommand))}
            push, logs = rows["push_config"], rows["logs"]
            assert push.payload == {"config": site_file.read_text(encoding="utf-8")} and push.created_by == "admin"
            assert logs.payload == {"lines": 5}
            now = datetime.now(UTC)
            answers = [
                CommandResult(
                    site_id="site-a",
                    agent_id="edge-1",
                    command_id=push.id,
                    ok=False,
                    detail="新版本在 3 秒内未达到健康：设备 annex1 未能成功采集；已自动回滚到原版本 0123456789ab",
                    version="0123456789ab",
                    rolled_back=True,
                    ts=now,
                ),
                CommandResult(
                    site_id="site-a",
                    agent_id="edge-1",
                    command_id=logs.id,
                    ok=True,
                    detail="最近 2 行日志",
                    output="line A\nline B",
                    ts=now,
                ),
            ]
            writer.commit(
                [RawMessage(topic_for("site-a", "edge-1", Channel.COMMAND_RESULT), encode(a)) for a in answers]
            )
            page.wait_for_selector(f'#cmd-history tr[data-command="{push.id}"][data-state="failed"]')
            pushed = page.locator(f'#cmd-history tr[data-command="{push.id}"]').inner_text()
            assert "失败（已自动回滚）" in pushed and "annex1" in pushed and "生效版本 0123456789ab" in pushed, pushed
            page.wait_for_selector(f'#cmd-history tr[data-command="{logs.id}"][data-state="done"]')
            assert page.locator(".cmd-output").inner_text() == "line A\nline B"
            screenshot(page, "fleet-commands", full_page=True)

            page.evaluate("localStorage.clear()")
            page.goto(f"{cloud.base}/fleet/")
            page.get_by_label("用户名").fill("chief")
            page.get_by_label("密码").fill(PASSWORD)
            page.get_by_role("button", name="登录").click()
            page.wait_for_selector("#fleet-summary")
            assert page.get_by_role("button", name="远程命令").count() == 0
        finally:
            page.close()
            store.close()
            engine.dispose()
