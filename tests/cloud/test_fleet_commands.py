"""Remote configuration end to end (issue 15): real mosquitto, the real ingest, a real agent process.

1. An admin pushes a site configuration (and a ping whose signature is then spoiled) through the API while the
   agent is offline. When the agent comes online the ingest delivers both: the push is verified, applied, healthy
   and its result recorded (state done, desired = reported config version in the fleet view); the badly signed one
   is refused by the edge with the reason. A resend (the agent "reconnects" before the cloud saw a result) is
   answered from the edge's memory of applied ids, not applied again. Only admins may create commands; every
   creation is journaled.
2. With the agent running: a configuration that fails validation (a probe at Modbus address 999) is refused on
   the edge, nothing written; one that passes validation but is not healthy after the apply (a new Modbus device on
   a port where no server listens) is applied, fails its health deadline and is rolled back by the agent itself —
   the cloud shows the command failed with "rolled back", the reason, the version in force (the previous one)
   and the fleet view reports the previous version; the old devices keep delivering readings.

Waits: absence ("nothing is sent while the agent is offline") is judged on the ingest's delivery rounds, not on
a sleep; every other wait is for a state in the cloud's database, bounded generously and aborted at once with
the agent's log if the agent process dies.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
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
from cloud.presence import SensorPresence
from cloud.telemetry.store import TelemetryStore
from edge.commands import version_of
from protocols import Channel, SiteState, Status, encode, topic_for
from sentinel_cli.servers import Server, free_port
from simulators.clock import ScenarioClock
from simulators.modbus_tcp import SiteServer
from simulators.scenario import load_scenario
from tests.cloud.conftest import ADMIN_PASSWORD, running_ingest, wait_until
from tests.cloud.test_api_auth import add_user, login
from tests.edge.harness import AgentProcess
from tests.edge.test_delivery import SCENARIO, write_site
from tests.utils.approvals import approving

pytestmark = [pytest.mark.broker, pytest.mark.slow]  # ~13 s each: a real agent start plus round trips
WAIT_S = 180  # generous: a loaded machine is slow, a passing run never waits this long


async def wait_alive(agent: AgentProcess, predicate: Callable[[], object], what: str) -> None:
    """Wait for ``predicate``; fail at once (with the agent's log) if the agent process has ended."""

    def check() -> object:
        if agent.proc is not None and agent.proc.poll() is not None:
            raise AssertionError(f"the agent exited ({agent.proc.returncode}) while waiting for {what}: {tail(agent)}")
        return predicate()

    try:
        await wait_until(check, WAIT_S, what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n--- agent log ---\n{tail(agent)}") from None


def tail(agent: AgentProcess) -> str:
    return agent.log.read_text(errors="replace")[-3000:] if agent.log.exists() else ""


def signed_site(client: TestClient, cloud_settings: Settings, config: Path) -> str:
    """Provision the site file with the cloud's command key (as an operator would); returns its text."""
    key = public_key_b64(command_key(cloud_settings))
    admin = login(client, "admin", ADMIN_PASSWORD)
    assert client.get("/api/v1/fleet/command-key", headers=admin).json()["command_key"] == key
    site_text = config.read_text(encoding="utf-8").replace(
        'agent_id = "edge-1"\n', f'agent_id = "edge-1"\ncommand_key = "{key}"\n'
    )
    config.write_text(site_text, encoding="utf-8")
    return site_text


@pytest.fixture
def client(cloud_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(cloud_settings, run_background=False)) as c:
        yield c


def command(engine: Engine, command_id: str) -> FleetCommand:
    with Session(engine) as session:
        row = session.get(FleetCommand, command_id)
        assert row is not None
        return row


@pytest.fixture
def edge_site(mosquitto: Server, tmp_path: Path, client: TestClient, cloud_settings: Settings) -> tuple[int, Path, str]:
    """The cloud pointed at the broker, and a site file provisioned with its command key: (modbus port, file, text)."""
    cloud_settings.mqtt_port = mosquitto.port
    cloud_settings.fleet_command_poll_s = 0.2
    modbus_port, _data_dir, config = write_site(tmp_path, mosquitto.port)
    return modbus_port, config, signed_site(client, cloud_settings, config)


async def test_push_to_an_offline_agent_arrives_once_and_a_badly_signed_command_is_refused(
    edge_site: tuple[int, Path, str],
    mosquitto: Server,
    tmp_path: Path,
    client: TestClient,
    cloud_settings: Settings,
    cloud_engine: Engine,
    cloud_store: TelemetryStore,
) -> None:
    modbus_port, config, site_text = edge_site
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
        running_ingest(cloud_settings, cloud_engine, cloud_store) as ingest,
        SiteServer(load_scenario(SCENARIO), modbus_port, clock=ScenarioClock(1)),
    ):
        rounds = ingest.delivery_rounds  # type: ignore[attr-defined]
        await wait_until(lambda: ingest.delivery_rounds >= rounds + 2, WAIT_S, "two delivery rounds")  # type: ignore[attr-defined]
        assert command(cloud_engine, push["id"]).state == "pending", "the agent is offline: nothing is sent"
        agent = AgentProcess(config, tmp_path / "agent.log")
        agent.start()
        try:
            await wait_alive(agent, lambda: command(cloud_engine, push["id"]).state == "done", "push applied")
            await wait_alive(agent, lambda: command(cloud_engine, forged_id).state == "failed", "forged refused")
            done = command(cloud_engine, push["id"])
            assert done.sent_count >= 1 and done.reason and "已应用且运行正常" in done.reason
            assert "签名无效" in (command(cloud_engine, forged_id).reason or "")
            assert "药品冷藏柜2" in config.read_text(encoding="utf-8"), "the pushed file is on the edge"

            def versions() -> tuple[object, object]:
                agents = client.get("/api/v1/fleet/agents", headers=admin).json()
                return agents[0]["config_version_desired"], agents[0]["config_version_reported"]

            await wait_alive(agent, lambda: versions()[0] == versions()[1] == done.config_version, "desired = reported")

            # the cloud lost the result (state back to sent) and the agent reconnects: resent, not re-applied
            with cloud_engine.begin() as conn:
                conn.execute(text("UPDATE fleet_command SET state = 'sent' WHERE id = :i"), {"i": push["id"]})
            online = Status(site_id="pharmacy-01", agent_id="edge-1", state=SiteState.ONLINE, ts=datetime.now(UTC))
            async with aiomqtt.Client("127.0.0.1", mosquitto.port) as mqtt:
                await mqtt.publish(topic_for("pharmacy-01", "edge-1", Channel.STATUS), encode(online), qos=1)
            sent = done.sent_count  # 1, or more if the agent's first connection was renegotiated
            await wait_alive(agent, lambda: command(cloud_engine, push["id"]).sent_count > sent, "resent")
            await wait_alive(agent, lambda: command(cloud_engine, push["id"]).state == "done", "answered again")
            await wait_alive(agent, lambda: "already handled" in tail(agent), "edge dedup")
        finally:
            agent.stop()

    listed = client.get(url, headers=admin).json()
    assert {c["id"]: c["state"] for c in listed} == {push["id"]: "done", forged_id: "failed"}
    with Session(cloud_engine) as session:
        actions = [e.action for e in session.exec(select(JournalEvent).where(JournalEvent.target_type == "agent"))]
    assert actions.count("fleet.command_created") == 2 and "fleet.command_result" in actions


def sensor_seen_at(engine: Engine, sensor_id: str) -> datetime | None:
    with Session(engine) as session:
        row = session.get(SensorPresence, ("pharmacy-01", sensor_id))
        return row.last_received_at if row is not None else None


async def test_a_bad_config_is_refused_and_an_unhealthy_one_rolls_back_by_itself(
    edge_site: tuple[int, Path, str],
    tmp_path: Path,
    client: TestClient,
    cloud_settings: Settings,
    cloud_engine: Engine,
    cloud_store: TelemetryStore,
) -> None:
    modbus_port, config, original = edge_site
    admin = login(client, "admin", ADMIN_PASSWORD)
    url = "/api/v1/fleet/agents/pharmacy-01/edge-1/commands"

    def reported() -> object:
        agents = client.get("/api/v1/fleet/agents", headers=admin).json()
        return agents[0]["config_version_reported"] if agents else None

    dead_port = free_port()  # nothing listens here
    unhealthy = original.replace('fsync = "normal"\n', 'fsync = "normal"\nconfig_health_deadline_s = 3\n') + (
        f'\n[[buses]]\nkind = "tcp"\nid = "annex"\nhost = "127.0.0.1"\nport = {dead_port}\ntimeout_s = 0.3\n'
        '\n[[devices]]\ntype = "modbus_probe"\nid = "annex1"\nbus = "annex"\naddress = 1\nlabel = "副库"\n'
        "poll_interval_s = 0.5\n"
    )
    async with (
        running_ingest(cloud_settings, cloud_engine, cloud_store),
        approving(cloud_engine, cloud_store, "pharmacy-01"),
        SiteServer(load_scenario(SCENARIO), modbus_port, clock=ScenarioClock(1)),
    ):
        agent = AgentProcess(config, tmp_path / "agent.log")
        agent.start()
        try:
            await wait_alive(agent, lambda: reported() == version_of(original), "the agent reports its version")
            bad = original.replace("address = 2", "address = 999")
            r = client.post(
                url, json={"name": "push_config", "payload": {"config": bad}, "why": "地址写错"}, headers=admin
            )
            refused = r.json()["id"]
            await wait_alive(agent, lambda: command(cloud_engine, refused).state == "failed", "invalid refused")
            row = command(cloud_engine, refused)
            assert row.reason and "devices[1].address" in row.reason and not row.rolled_back, row.reason
            assert config.read_text(encoding="utf-8") == original, "nothing written"

            body = {"name": "push_config", "payload": {"config": unhealthy}, "why": "新增副库探头"}
            trial = client.post(url, json=body, headers=admin).json()["id"]
            await wait_alive(agent, lambda: command(cloud_engine, trial).state == "failed", "the trial's verdict")
            row = command(cloud_engine, trial)
            assert row.rolled_back and row.reason, row.reason
            assert "未达到健康" in row.reason and "annex1" in row.reason and "已自动回滚" in row.reason, row.reason
            assert row.version_in_force == version_of(original)
            shown = client.get(f"/api/v1/fleet/commands/{trial}", headers=admin).json()
            assert shown["state_label"] == "失败（已自动回滚）" and shown["rolled_back"] is True
            assert config.read_text(encoding="utf-8") == original, "the previous file is back on the edge"
            assert "rolling back to the previous version" in tail(agent)
            await wait_alive(agent, lambda: reported() == version_of(original), "the fleet view: previous version")
            (agent_row,) = client.get("/api/v1/fleet/agents", headers=admin).json()
            site_file = next(v for v in agent_row["versions"] if v["kind"] == "site_config")
            assert (site_file["reported"], site_file["desired"]) == (version_of(original), version_of(unhealthy))
            assert site_file["sync_label"] == "未同步" and "已自动回滚" in site_file["note"], site_file
            packs = {v["name"]: v["reported"] for v in agent_row["versions"] if v["kind"] == "rule_pack"}
            assert packs and all(packs.values()), f"the real agent reports its rule packs in force: {agent_row}"
            rolled_back_at = datetime.now(UTC)
            await wait_alive(
                agent,
                lambda: (sensor_seen_at(cloud_engine, "fridge1.temperature") or rolled_back_at) > rolled_back_at,
                "readings of the old devices after the rollback",
            )
        finally:
            agent.stop()
