"""The fleet page (/fleet/) in headless Chromium against the real app on uvicorn (issue 15): both agents are
listed with their state in Chinese; the offline one's open edge alert is "状态未知"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from cloud.core.db import make_engine
from cloud.ingest.writer import IngestWriter
from cloud.telemetry.store import open_store
from tests.cloud.conftest import ADMIN_PASSWORD
from tests.cloud.test_fleet_view import heartbeat, raised
from tests.cloud.web.conftest import live_cloud

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
