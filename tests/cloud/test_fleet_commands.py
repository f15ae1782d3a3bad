"""Remote configuration end to end (issue 15): real mosquitto, the real ingest, a real agent process.

An admin pushes a site configuration (and a ping whose signature is then spoiled) through the API while the agent
is offline. When the agent comes online the ingest delivers both: the push is verified, applied and its result
recorded (state done, desired = reported config version in the fleet view); the badly signed one is refused by
the edge with the reason. A resend (the agent "reconnects" before the cloud saw a result) is answered from the
edge's memory of applied ids, not applied again. Only admins may create commands; every creation is journaled.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from cloud.app import create_app
from cloud.core.config import Settings
from cloud.core.users import Role
from cloud.fleet_commands import FleetCommand, command_key, public_key_b64
from cloud.journal import JournalEvent
from cloud.telemetry.store import TelemetryStore
from protocols import Channel, SiteState, Status, encode, topic_for
from sentinel_cli.servers import Server
from simulators.clock import ScenarioClock
from simulators.modbus_tcp import SiteServer
from simulators.scenario import load_scenario
from tests.cloud.conftest import ADMIN_PASSWORD, running_ingest, wait_until
from tests.cloud.test_api_auth import add_user, login
from tests.edge.harness import AgentProcess
from tests.edge.test_delivery import SCENARIO, write_site

pytestmark = [pytest.mark.broker, pytest.mark.slow]  # ~13 s: a real agent start plus two round trips


@pytest.fixture
def client(cloud_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(cloud_settings, run_background=False)) as c:
        yield c


def command(engine: Engine, command_id: str) -> FleetCommand:
    with Session(engine) as session:
        row = session.get(FleetCommand, command_id)
        assert row is not None
        return row


async def test_push_to_an_offline_agent_arrives_once_and_a_badly_signed_command_is_refused(
    mosquitto: Server,
    tmp_path: Path,
    client: TestClient,
    cloud_settings: Settings,
    cloud_engine: Engine,
    cloud_store: TelemetryStore,
) -> None:
    cloud_settings.mqtt_port = mosquitto.port
    cloud_settings.fleet_command_poll_s = 0.2
    modbus_port, _data_dir, config = write_site(tmp_path, mosquitto.port)
    key = public_key_b64(command_key(cloud_settings))
    assert (
        client.get("/api/v1/fleet/command-key", headers=login(client, "admin", ADMIN_PASSWORD)).json()["command_key"]
        == key
    )
    site_text = config.read_text(encoding="utf-8").replace(
        'agent_id = "edge-1"\n', f'agent_id = "edge-1"\ncommand_key = "{key}"\n'
    )
    config.write_text(site_text, encoding="utf-8")
    pushed_text = site_text.replace("药品冷藏柜1", "药品冷藏柜2")

    admin = login(client, "admin", ADMIN_PASSWORD)
    add_user(cloud_engine, "boss", Role.SUPERVISOR)
    url = "/api/v1/fleet/agents/pharmacy-01/edge-1/commands"
    body = {"name": "push_config", "payload": {"config": pushed_text}, "why": "更换冷藏柜标签"}
    assert client.post(url, json=body, headers=login(client, "boss", "Secret-Pass1")).status_code == 403
    r = client.post(url, json=body, headers=admin)
    assert r.status_code == 201, r.text
    push = r.json()
    assert (push["state"], push["created_by"], push["why"]) == ("pending", "admin", "更换冷藏柜标签")
    r = client.post(url, json={"name": "ping", "why": "签名被篡改的命令"}, headers=admin)
    forged_id = r.json()["id"]
    with cloud_engine.begin() as conn:  # someone alters the stored command: its signature no longer matches
        bad = base64.b64encode(b"\0" * 64).decode()
        conn.execute(text("UPDATE fleet_command SET signature = :s WHERE id = :i"), {"s": bad, "i": forged_id})

    async with (
        running_ingest(cloud_settings, cloud_engine, cloud_store),
        SiteServer(load_scenario(SCENARIO), modbus_port, clock=ScenarioClock(1)),
    ):
        await asyncio.sleep(0.5)  # the agent is offline: nothing is sent
        assert command(cloud_engine, push["id"]).state == "pending"
        agent = AgentProcess(config, tmp_path / "agent.log")
        agent.start()
        try:
            await wait_until(lambda: command(cloud_engine, push["id"]).state == "done", 60, "push applied")
            await wait_until(lambda: command(cloud_engine, forged_id).state == "failed", 60, "forged refused")
            done = command(cloud_engine, push["id"])
            assert done.sent_count >= 1 and done.reason and "配置已应用" in done.reason
            assert "签名无效" in (command(cloud_engine, forged_id).reason or "")
            assert "药品冷藏柜2" in config.read_text(encoding="utf-8"), "the pushed file is on the edge"

            def versions() -> tuple[object, object]:
                agents = client.get("/api/v1/fleet/agents", headers=admin).json()
                return agents[0]["config_version_desired"], agents[0]["config_version_reported"]

            await wait_until(lambda: versions()[0] == versions()[1] == done.config_version, 60, "desired = reported")

            # the cloud lost the result (state back to sent) and the agent reconnects: resent, not re-applied
            with cloud_engine.begin() as conn:
                conn.execute(text("UPDATE fleet_command SET state = 'sent' WHERE id = :i"), {"i": push["id"]})
            online = Status(site_id="pharmacy-01", agent_id="edge-1", state=SiteState.ONLINE, ts=datetime.now(UTC))
            async with aiomqtt.Client("127.0.0.1", mosquitto.port) as mqtt:
                await mqtt.publish(topic_for("pharmacy-01", "edge-1", Channel.STATUS), encode(online), qos=1)
            sent = done.sent_count  # 1, or more if the agent's first connection was renegotiated
            await wait_until(lambda: command(cloud_engine, push["id"]).sent_count > sent, 60, "resent")
            await wait_until(lambda: command(cloud_engine, push["id"]).state == "done", 60, "answered again")
            await wait_until(lambda: "already handled" in agent.log.read_text(errors="replace"), 60, "edge dedup")
        finally:
            agent.stop()

    listed = client.get(url, headers=admin).json()
    assert {c["id"]: c["state"] for c in listed} == {push["id"]: "done", forged_id: "failed"}
    with Session(cloud_engine) as session:
        actions = [e.action for e in session.exec(select(JournalEvent).where(JournalEvent.target_type == "agent"))]
    assert actions.count("fleet.command_created") == 2 and "fleet.command_result" in actions
