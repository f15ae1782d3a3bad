"""The fleet view API (issue 15): every agent with online state, versions, outbox, clock, resources and open
alerts; an agent that stopped is offline and its still-open edge alerts are "state unknown"."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from cloud.app import create_app
from cloud.core.config import Settings
from cloud.fleet_commands import FleetCommand, FleetCommandPublic
from cloud.ingest.writer import IngestWriter, RawMessage
from cloud.telemetry.store import TelemetryStore
from protocols import AlertEvent, AlertPhase, Channel, Heartbeat, Severity, encode, topic_for
from protocols.messages import CommandResult, content_version
from tests.cloud.conftest import ADMIN_PASSWORD
from tests.cloud.test_api_auth import login
from tests.utils.registration import register_many


def heartbeat(site: str, agent: str) -> RawMessage:
    msg = Heartbeat(
        site_id=site,
        agent_id=agent,
        ts=datetime.now(UTC),
        uptime_s=60,
        outbox_depth=7,
        cpu_percent=3.5,
        rss_mb=48.0,
        incarnation="20261201t000000z-0000abcd",
        clock_offset_s=0.4,
        config_version="v3",
    )
    return RawMessage(topic_for(site, agent, Channel.HEARTBEAT), encode(msg))


def raised(site: str, agent: str, seq: int) -> RawMessage:
    now = datetime.now(UTC)
    event = AlertEvent(
        site_id=site,
        agent_id=agent,
        seq=seq,
        alert_id=f"alert-{site}-{seq}",
        device_id="fridge1",
        rule_id="gsp.temp_high",
        phase=AlertPhase.RAISE,
        severity=Severity.MAJOR,
        category="drug_storage",
        value=9.5,
        message="冷藏柜温度 9.5 °C 超上限",
        ts=now,
        started_at=now,
    )
    return RawMessage(topic_for(site, agent, Channel.EVENTS), encode(event))


@pytest.fixture
def client(cloud_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(cloud_settings, run_background=False)) as c:
        yield c


def test_fleet_view_shows_every_agent_and_unknown_alerts_of_offline_ones(
    client: TestClient, cloud_engine: Engine, cloud_store: TelemetryStore
) -> None:
    writer = IngestWriter(cloud_engine, cloud_store)
    register_many(cloud_engine, {"site-a": [], "site-b": []}, devices={"fridge1": []})
    writer.commit([heartbeat("site-a", "edge-1"), raised("site-a", "edge-1", 1)])
    writer.commit([heartbeat("site-b", "edge-1"), raised("site-b", "edge-1", 1)])
    with cloud_engine.begin() as conn:  # site-b's box stopped an hour ago
        conn.execute(
            text("UPDATE agent_presence SET last_seen_at = :t WHERE site_id = 'site-b'"),
            {"t": (datetime.now(UTC) - timedelta(hours=1)).replace(tzinfo=None)},
        )
    headers = login(client, "admin", ADMIN_PASSWORD)
    r = client.get("/api/v1/fleet/agents", headers=headers)
    assert r.status_code == 200, r.text
    a, b = r.json()
    assert (a["site_id"], a["online"], a["online_label"]) == ("site-a", True, "在线")
    assert (a["outbox_depth"], a["cpu_percent"], a["rss_mb"], a["clock_offset_s"]) == (7, 3.5, 48.0, 0.4)
    assert a["incarnation"] == "20261201t000000z-0000abcd" and a["config_version_reported"] == "v3"
    assert [x["state"] for x in a["open_alerts"]] == ["open"]
    assert (b["site_id"], b["online"], b["online_label"]) == ("site-b", False, "离线")
    assert b["silent_s"] >= 3500
    assert [(x["state"], x["state_label"]) for x in b["open_alerts"]] == [("state_unknown", "状态未知（代理离线）")]
    assert client.get("/api/v1/fleet/agents").status_code == 401


def result(site: str, agent: str, command_id: str, ok: bool, **extra: object) -> RawMessage:
    msg = CommandResult(
        site_id=site, agent_id=agent, command_id=command_id, ok=ok, detail="结果", ts=datetime.now(UTC), **extra
    )
    return RawMessage(topic_for(site, agent, Channel.COMMAND_RESULT), encode(msg))


def test_desired_vs_reported_for_the_site_file_every_rule_pack_and_register_map(
    client: TestClient, cloud_engine: Engine, cloud_store: TelemetryStore
) -> None:
    """The agent reports the version in force of each file; the fleet view pairs each with the last push of it:
    a pending push is 未同步 (下发中), a rolled-back one shows the version in force and why, a done one 已同步."""
    writer = IngestWriter(cloud_engine, cloud_store)
    packs, maps = {"gsp": "aaaaaaaaaaaa"}, {"boiler": "bbbbbbbbbbbb"}

    def beat(rule_packs: dict[str, str], register_maps: dict[str, str]) -> None:
        raw = heartbeat("site-v", "edge-1")
        msg = Heartbeat.model_validate_json(raw.payload)
        update = {"rule_pack_versions": rule_packs, "register_map_versions": register_maps}
        writer.commit([RawMessage(raw.topic, encode(msg.model_copy(update=update)))])

    beat(packs, maps)
    headers = login(client, "admin", ADMIN_PASSWORD)

    def versions() -> dict[str, dict[str, object]]:
        (agent,) = client.get("/api/v1/fleet/agents", headers=headers).json()
        return {f"{v['kind']}/{v['name']}": v for v in agent["versions"]} | {"_sync": agent["versions_in_sync"]}

    shown = versions()
    assert shown["_sync"] is True
    assert {k: (v["reported"], v["desired"], v["in_sync"]) for k, v in shown.items() if k != "_sync"} == {
        "site_config/": ("v3", None, None),
        "rule_pack/gsp": ("aaaaaaaaaaaa", None, None),
        "register_map/boiler": ("bbbbbbbbbbbb", None, None),
    }
    assert shown["rule_pack/gsp"]["label"] == "规则包 gsp.toml"

    url = "/api/v1/fleet/agents/site-v/edge-1/commands"
    pack_text, map_text = 'id = "gsp"\n', "[[points]]\n"
    pack_push = client.post(
        url,
        json={"name": "push_rule_pack", "payload": {"name": "gsp", "text": pack_text}, "why": "收紧"},
        headers=headers,
    ).json()
    map_push = client.post(
        url,
        json={"name": "push_register_map", "payload": {"name": "boiler", "text": map_text}, "why": "换表"},
        headers=headers,
    ).json()
    shown = versions()
    gsp = shown["rule_pack/gsp"]
    assert (gsp["desired"], gsp["reported"], gsp["in_sync"]) == (content_version(pack_text), "aaaaaaaaaaaa", False)
    assert gsp["sync_label"] == "未同步" and gsp["note"] == "下发中（待发送）" and shown["_sync"] is False

    # the pack failed health and was rolled back (the agent still runs aaaa…); the map applied and is in force
    writer.commit(
        [
            result("site-v", "edge-1", pack_push["id"], False, version="aaaaaaaaaaaa", rolled_back=True),
            result("site-v", "edge-1", map_push["id"], True, version=content_version(map_text)),
        ]
    )
    beat(packs, {"boiler": content_version(map_text)})
    shown = versions()
    gsp, boiler = shown["rule_pack/gsp"], shown["register_map/boiler"]
    assert (gsp["reported"], gsp["in_sync"], gsp["sync_label"]) == ("aaaaaaaaaaaa", False, "未同步")
    assert "已自动回滚" in gsp["note"] and "生效版本 aaaaaaaaaaaa" in gsp["note"], gsp["note"]
    assert (boiler["reported"], boiler["in_sync"], boiler["sync_label"], boiler["note"]) == (
        content_version(map_text),
        True,
        "已同步",
        "",
    )


def test_an_export_range_is_summarised_in_beijing_time() -> None:
    row = FleetCommand(
        id="c1",
        site_id="site-v",
        agent_id="edge-1",
        name="export_range",
        payload={"camera": "cam1", "start": "2026-12-01T01:00:00+00:00", "end": "2026-12-01T09:10:00+08:00"},
        issued_at=datetime.now(UTC),
        expires_at=datetime.now(UTC),
        signature="",
        key_id="k",
        created_by="admin",
        why="调取录像",
    )
    summary = FleetCommandPublic.of(row).payload_summary
    assert summary == "摄像头 cam1 2026-12-01 09:00:00（北京时间） 至 2026-12-01 09:10:00（北京时间）", summary
