"""The fleet page (/fleet/) in headless Chromium against the real app on uvicorn (issue 15), one app per module.

Agents are known to the cloud as in production (heartbeats and results through the real ingest writer): site-a
(online, with an open alert), site-b (silent for two hours, its alert "状态未知") and three agents on two registered
sites, one under a county department and one under its township sub-department. Proves: the agents' state in
Chinese; an admin's remote commands to one agent and their results (a rollback, logs lines) and the desired vs
reported version per file (未同步 with the reason); group commands to a department with its sub-departments, a
domain, a site and the agents ticked in the table, with the group's progress (counts per state, each agent's
result) and cancel; an export range whose evidence the console fetches with the token (hash checked); a supervisor
sees no actions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from cloud.core.db import make_engine
from cloud.fleet_commands import FleetCommand
from cloud.ingest.writer import IngestWriter, RawMessage
from cloud.telemetry.store import TelemetryStore, open_store
from protocols import Channel, encode, topic_for
from protocols.messages import CommandResult, EvidenceRef
from tests.cloud.conftest import ADMIN_PASSWORD
from tests.cloud.test_fleet_view import heartbeat, raised
from tests.cloud.web.conftest import PASSWORD, LiveCloud, live_cloud, screenshot
from tests.utils.registration import register_many
from tests.utils.threads import no_leaked_threads  # noqa: F401 (the module server's worker pool is not a leak)

pytestmark = [pytest.mark.browser, pytest.mark.slow]
GROUP_AGENTS = [("drug-x", "edge-1"), ("drug-x", "edge-2"), ("food-y", "edge-1")]


@dataclass
class World:
    cloud: LiveCloud
    engine: Engine
    store: TelemetryStore
    site_file: Path

    def answer(self, row: FleetCommand, ok: bool, detail: str, **extra: Any) -> None:
        result = CommandResult(
            site_id=row.site_id,
            agent_id=row.agent_id,
            command_id=row.id,
            ok=ok,
            detail=detail,
            ts=datetime.now(UTC),
            **extra,
        )
        IngestWriter(self.engine, self.store).commit(
            [RawMessage(topic_for(row.site_id, row.agent_id, Channel.COMMAND_RESULT), encode(result))]
        )

    def commands(self, **where: Any) -> list[FleetCommand]:
        with Session(self.engine) as session:
            rows = session.exec(select(FleetCommand)).all()
        found = [r for r in rows if all(getattr(r, k) == v for k, v in where.items())]
        return sorted(found, key=lambda r: (r.site_id, r.agent_id))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp_path = tmp_path_factory.mktemp("fleet-page")
    site_file = tmp_path / "site.toml"
    site_file.write_text('[agent]\nsite_id = "site-a"\n', encoding="utf-8")
    with live_cloud(tmp_path) as cloud:
        admin = cloud.client()
        r = admin.post(
            "/users", json={"username": "chief", "password": PASSWORD, "full_name": "周科长", "role": "supervisor"}
        )
        assert r.status_code == 201, r.text
        county = admin.post("/registry/departments", json={"code": "county", "name": "某县市场监督管理局"}).json()
        town = admin.post(
            "/registry/departments", json={"code": "town-1", "name": "城关市场监督管理所", "parent_id": county["id"]}
        ).json()
        for site_id, name, category, dep in (
            ("drug-x", "康宁大药房", "drug", county),
            ("food-y", "城关菜市场", "food", town),
        ):
            r = admin.post(
                "/registry/sites",
                json={"site_id": site_id, "name": name, "category": category, "department_id": dep["id"]},
            )
            assert r.status_code == 201, r.text
        admin.close()
        engine = make_engine(cloud.settings)
        store = open_store(cloud.settings, engine)
        try:
            register_many(engine, {"site-a": [], "site-b": []}, devices={"fridge1": []})
            writer = IngestWriter(engine, store)
            writer.commit([heartbeat("site-a", "edge-1"), raised("site-a", "edge-1", 1)])
            writer.commit([heartbeat("site-b", "edge-1"), raised("site-b", "edge-1", 1)])
            writer.commit([heartbeat(s, a) for s, a in GROUP_AGENTS])
            with engine.begin() as conn:
                conn.execute(
                    text("UPDATE agent_presence SET last_seen_at = :t WHERE site_id = 'site-b'"),
                    {"t": (datetime.now(UTC) - timedelta(hours=2)).replace(tzinfo=None)},
                )
            yield World(cloud, engine, store, site_file)
        finally:
            store.close()
            engine.dispose()


def log_in(page: Any, world: World, username: str = "admin", password: str = ADMIN_PASSWORD) -> None:
    page.goto(f"{world.cloud.base}/fleet/")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    page.get_by_role("button", name="登录").click()
    page.wait_for_selector("#fleet-summary")


def test_fleet_page_shows_online_offline_and_unknown_alerts(browser: Any, world: World) -> None:
    page = browser.new_page()
    try:
        log_in(page, world)
        assert "共 5 台，在线 4，离线 1" in page.inner_text("#fleet-summary")
        a = page.locator('tr[data-agent="site-a/edge-1"]').inner_text()
        b = page.locator('tr[data-agent="site-b/edge-1"]').inner_text()
        assert "在线" in a and "告警中" in a and "+0.4 秒" in a and "3.5%" in a, a
        assert "离线" in b and "状态未知（代理离线）" in b and "小时前" in b, b
        assert "康宁大药房" in page.locator('tr[data-agent="drug-x/edge-2"]').inner_text(), "a registered site by name"
    finally:
        page.close()


def test_an_admin_pushes_a_file_pings_and_fetches_logs_and_sees_each_result(browser: Any, world: World) -> None:
    """The command actions (admin only): a site file uploaded with a reason becomes a signed command listed as
    待发送; the agent's answers (through the real ingest writer) show as they arrive — a rollback as
    失败（已自动回滚） with the reason and the version in force, a logs result with its lines; the version column
    then shows the site file 未同步 with why. A supervisor sees the page without the actions."""
    page = browser.new_page()
    try:
        log_in(page, world)
        page.locator('tr[data-agent="site-a/edge-1"]').get_by_role("button", name="远程命令").click()
        page.wait_for_selector("#cmd-form")
        page.select_option("#cmd-name", "push_config")
        # as a buffer: a path would make Playwright read it in an executor thread that outlives the test
        upload = {"name": world.site_file.name, "mimeType": "text/plain", "buffer": world.site_file.read_bytes()}
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

        (push,) = world.commands(name="push_config")
        (logs,) = world.commands(name="logs")
        assert push.payload == {"config": world.site_file.read_text(encoding="utf-8")} and push.created_by == "admin"
        assert logs.payload == {"lines": 5}
        world.answer(
            push,
            False,
            "新版本在 3 秒内未达到健康：设备 annex1 未能成功采集；已自动回滚到原版本 0123456789ab",
            version="0123456789ab",
            rolled_back=True,
        )
        world.answer(logs, True, "最近 2 行日志", output="line A\nline B")
        page.wait_for_selector(f'#cmd-history tr[data-command="{push.id}"][data-state="failed"]')
        pushed = page.locator(f'#cmd-history tr[data-command="{push.id}"]').inner_text()
        assert "失败（已自动回滚）" in pushed and "annex1" in pushed and "生效版本 0123456789ab" in pushed, pushed
        page.wait_for_selector(f'#cmd-history tr[data-command="{logs.id}"][data-state="done"]')
        assert page.locator(".cmd-output").inner_text() == "line A\nline B"
        screenshot(page, "fleet-commands", full_page=True)

        page.reload()  # the version column: the site file the cloud wants is not the one in force
        page.wait_for_selector('tr[data-agent="site-a/edge-1"] li[data-artifact="site_config/"][data-sync="drift"]')
        cell = page.locator('tr[data-agent="site-a/edge-1"] li[data-artifact="site_config/"]').inner_text()
        assert "站点配置" in cell and "v3" in cell and f"≠ 期望 {push.config_version}（未同步）" in cell, cell
        assert "已自动回滚" in cell, cell

        page.evaluate("localStorage.clear()")
        log_in(page, world, "chief", PASSWORD)
        assert page.get_by_role("button", name="远程命令").count() == 0
        assert page.locator("#cmd-form").count() == 0 and page.locator("[data-tick]").count() == 0
    finally:
        page.close()


def group_card(page: Any, target_label: str) -> Any:
    card = page.locator("#fleet-groups article.group", has_text=target_label)
    card.wait_for()
    return card


def test_group_commands_to_each_target_kind_with_progress_cancel_and_an_export(browser: Any, world: World) -> None:
    """批量命令: a department includes its sub-department's sites; a domain and a site by their names; the agents
    ticked in the table. The group's card shows the counts per state and each agent's result as they arrive, and
    cancels what has no result yet. An export range (Beijing time in the form, ISO with +08:00 on the wire) whose
    evidence the console downloads with the token: the bytes hash to the result's SHA-256."""
    page = browser.new_page()
    try:
        log_in(page, world)
        page.wait_for_selector("#cmd-form")
        page.select_option("#cmd-target-kind", "department")
        page.select_option("#cmd-target-department", label="某县市场监督管理局")
        assert not page.is_visible("#cmd-target-site") and not page.is_visible("#cmd-agent"), "only the chosen target"
        page.select_option("#cmd-name", "ping")
        page.fill("#cmd-why", "全县巡检")
        page.get_by_role("button", name="下发").click()
        card = group_card(page, "部门「某县市场监督管理局」及下级部门的全部代理")
        assert "连通测试" in card.inner_text() and "共 3 台：待发送 3" in card.inner_text(), card.inner_text()
        first, second, third = world.commands(name="ping")
        assert [(r.site_id, r.agent_id) for r in (first, second, third)] == GROUP_AGENTS
        world.answer(first, True, "pong 1.0")
        world.answer(second, False, "拒绝执行：命令签名无效")
        card.locator('li[data-state="done"]', has_text="已执行 1").wait_for()
        card.locator('li[data-state="failed"]', has_text="失败 1").wait_for()
        assert "待发送 1" in card.locator("ul.chips").inner_text()
        assert "康宁大药房 · edge-1" in card.locator('tr[data-agent="drug-x/edge-1"]').inner_text()
        assert "pong 1.0" in card.locator('tr[data-agent="drug-x/edge-1"]').inner_text()
        assert "签名无效" in card.locator('tr[data-agent="drug-x/edge-2"]').inner_text()
        card.locator(".group-cancel-why").fill("巡检改期")
        card.get_by_role("button", name="取消未执行的命令").click()
        page.locator("#fleet-groups article.group[data-finished=yes]", has_text="已取消 1").wait_for()
        assert [r.state for r in world.commands(name="ping")] == ["done", "failed", "cancelled"]

        page.select_option("#cmd-target-kind", "category")
        page.select_option("#cmd-target-category", label="食品")
        page.fill("#cmd-why", "食品领域巡检")
        page.get_by_role("button", name="下发").click()
        assert "共 1 台" in group_card(page, "食品领域的全部代理").inner_text()
        page.select_option("#cmd-target-kind", "site")
        page.select_option("#cmd-target-site", "drug-x")
        page.fill("#cmd-why", "药房巡检")
        page.get_by_role("button", name="下发").click()
        assert "共 2 台" in group_card(page, "场所「康宁大药房」的全部代理").inner_text()

        page.check('[data-tick="drug-x/edge-1"]')
        page.check('[data-tick="food-y/edge-1"]')
        page.select_option("#cmd-target-kind", "agents")
        assert "已选 2 台：康宁大药房 · edge-1、城关菜市场 · edge-1" in page.inner_text("#cmd-ticked")
        page.select_option("#cmd-name", "export_range")
        assert page.is_visible("#cmd-start") and page.is_visible("#cmd-camera") and not page.is_visible("#cmd-text")
        page.fill("#cmd-camera", "cam1")
        page.fill("#cmd-start", "2026-12-01T09:00:00")
        page.fill("#cmd-end", "2026-12-01T09:10:00")
        page.fill("#cmd-why", "调取后厨录像")
        page.get_by_role("button", name="下发").click()
        card = group_card(page, "指定 2 台代理")
        exports = world.commands(name="export_range")
        assert [(r.site_id, r.agent_id) for r in exports] == [("drug-x", "edge-1"), ("food-y", "edge-1")]
        assert exports[0].payload == {
            "camera": "cam1",
            "start": "2026-12-01T09:00:00+08:00",
            "end": "2026-12-01T09:10:00+08:00",
        }
        clip = b"\x1a\x45\xdf\xa3 a recorded range"
        sha = hashlib.sha256(clip).hexdigest()
        r = world.cloud.client().put(f"/evidence/{sha}", content=clip)  # as the agent's uploader does
        assert r.status_code in (200, 201), r.text
        ref = EvidenceRef(sha256=sha, content_type="video/webm", size=len(clip), label="remote_export")
        world.answer(exports[0], True, f"已导出摄像头 cam1 的录像：证据 {sha}", evidence=[ref])
        button = card.locator(f'button[data-evidence="{sha}"]')
        button.wait_for()
        assert "查看录像片段" in button.inner_text()
        with page.expect_download() as download:
            button.click()
        saved = Path(download.value.path())
        assert hashlib.sha256(saved.read_bytes()).hexdigest() == sha
        screenshot(page, "fleet-groups", full_page=True)
    finally:
        page.close()
