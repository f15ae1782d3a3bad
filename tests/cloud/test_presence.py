"""Presence: silence raises site_offline / sensor_stale through the alert → clue path; data clears them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text

from cloud.core.config import Settings
from cloud.presence import PresenceMonitor, record_status, touch
from protocols import SiteState, Status

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def alerts(engine: Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT device_id, rule_id, status FROM alert ORDER BY id"))]


def test_silent_site_raises_site_offline_and_recovers(cloud_settings: Settings, cloud_engine: Engine) -> None:
    cloud_settings.site_offline_after_s = 60
    cloud_settings.sensor_stale_after_s = 120
    monitor = PresenceMonitor(cloud_settings, cloud_engine)
    with cloud_engine.begin() as conn:
        record_status(conn, Status(site_id="p1", agent_id="a1", state=SiteState.ONLINE, ts=NOW), NOW)
        touch(conn, agents=[("a1", "p1")], sensors=[("p1", "t1", "a1"), ("p1", "t2", "a1")], now=NOW)
    assert monitor.check(NOW + timedelta(seconds=30)) == {"raised": 0, "cleared": 0}
    # the last will arrives, then nothing for longer than the interval
    with cloud_engine.begin() as conn:
        lwt = Status(site_id="p1", agent_id="a1", state=SiteState.OFFLINE, ts=NOW, reason="lwt")
        record_status(conn, lwt, NOW + timedelta(seconds=40))
    assert monitor.check(NOW + timedelta(seconds=200))["raised"] == 1
    assert alerts(cloud_engine) == [("a1", "site_offline", "open")]  # no sensor_stale flood while offline
    assert monitor.check(NOW + timedelta(seconds=260))["raised"] == 0  # still one open alert
    with cloud_engine.connect() as conn:
        clue = conn.execute(text("SELECT category, title FROM clue")).one()
    assert clue.category == "presence" and "离线" in clue.title
    # data returns
    back = NOW + timedelta(seconds=300)
    with cloud_engine.begin() as conn:
        touch(conn, agents=[("a1", "p1")], sensors=[("p1", "t1", "a1")], now=back)
    result = monitor.check(back + timedelta(seconds=1))
    assert result["cleared"] == 1
    # t2 stayed silent while the site is back: sensor_stale for t2 only
    assert ("t2", "sensor_stale", "open") in alerts(cloud_engine)
    assert ("a1", "site_offline", "cleared") in alerts(cloud_engine)
    with cloud_engine.begin() as conn:
        touch(conn, agents=[("a1", "p1")], sensors=[("p1", "t2", "a1")], now=back + timedelta(seconds=5))
    monitor.check(back + timedelta(seconds=6))
    assert ("t2", "sensor_stale", "cleared") in alerts(cloud_engine)
