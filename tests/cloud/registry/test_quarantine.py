"""Quarantine of unapproved devices (#13 item 4), end to end on a real mosquitto + the ingest + the API.

An agent announces a new fridge probe (pending approval) and a rogue camera. Their readings and alert are held
apart: not in /latest, no alert, no clue; the administrator sees them (GET /registry/quarantine, the pending list's
``quarantined``). Approving the fridge replays its data in order into the normal path (readings with their own
timestamps, the alert -> a clue dated when it happened); rejecting the camera turns its data into dead letters
with the reason, and later data of the rejected camera is dead-lettered too. Every message is acked.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import aiomqtt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from cloud.app import create_app
from cloud.core.config import Settings
from cloud.registry.models import Device, PendingDevice, Sensor, Site
from cloud.telemetry.store import TelemetryStore
from protocols import AlertEvent, AlertPhase, Channel, Reading, Severity, TelemetryBatch, decode, encode, topic_for
from protocols.messages import Ack, Announce, AnnouncedDevice
from sentinel_cli.servers import Server
from tests.cloud.conftest import ADMIN_PASSWORD, running_ingest, wait_until
from tests.cloud.test_ingest import publish_all, scalar

pytestmark = pytest.mark.broker
SITE, AGENT = "pharmacy-q", "agent-q"
#: a recent past (the ingest refuses data older than any edge backlog can be: clock_behind)
T0 = datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0) - timedelta(days=1)


def telemetry(seq: int, *sensors: str) -> tuple[str, bytes]:
    ts = T0 + timedelta(minutes=seq)
    readings = [Reading(sensor_id=s, ts=ts, value=4.0 + seq / 10, unit="°C") for s in sensors]
    batch = TelemetryBatch(site_id=SITE, agent_id=AGENT, seq=seq, sent_at=ts, readings=readings)
    return topic_for(SITE, AGENT, Channel.TELEMETRY), encode(batch)


def alarm(seq: int) -> tuple[str, bytes]:
    event = AlertEvent(
        site_id=SITE,
        agent_id=AGENT,
        seq=seq,
        alert_id="al-q-fridge2",
        device_id="fridge-2",
        sensor_id="t2",
        rule_id="drug_fridge_high",
        phase=AlertPhase.RAISE,
        severity=Severity.MAJOR,
        category="drug_storage",
        value=12.0,
        limit=8.0,
        unit="°C",
        message="药品冷藏柜温度 12.0 °C 超过上限 8 °C",
        ts=T0 + timedelta(minutes=seq),
        started_at=T0 + timedelta(minutes=seq),
    )
    return topic_for(SITE, AGENT, Channel.EVENTS), encode(event)


def announce() -> tuple[str, bytes]:
    msg = Announce(
        site_id=SITE,
        agent_id=AGENT,
        ts=T0,
        devices=[
            AnnouncedDevice(device_id="probe-1", device_type="probe", sensors=["t1"]),
            AnnouncedDevice(device_id="fridge-2", device_type="probe", sensors=["t2"]),
            AnnouncedDevice(device_id="cam-x", device_type="camera", sensors=["x1"]),
        ],
    )
    return topic_for(SITE, AGENT, Channel.ANNOUNCE), encode(msg)


def sensors_latest(store: TelemetryStore) -> set[str]:
    return {row.sensor_id for row in store.latest(site_id=SITE)}


async def test_unapproved_devices_are_quarantined_until_approved_then_replayed_in_order(
    mosquitto: Server, cloud_settings: Settings, cloud_engine: Engine, cloud_store: TelemetryStore
) -> None:
    cloud_settings.mqtt_port = mosquitto.port
    with Session(cloud_engine) as session:
        session.add(Site(site_id=SITE, name="隔离测试药房", category="drug"))
        session.flush()
        session.add(Device(site_id=SITE, device_id="probe-1", device_type="probe"))
        session.flush()
        session.add(Sensor(site_id=SITE, sensor_id="t1", device_id="probe-1"))
        session.commit()
    acked: set[int] = set()
    async with running_ingest(cloud_settings, cloud_engine, cloud_store) as service:
        async with aiomqtt.Client("127.0.0.1", mosquitto.port, identifier="q-acks") as listener:
            await listener.subscribe(topic_for(SITE, AGENT, Channel.ACK), qos=1)

            async def collect_acks() -> None:
                async for message in listener.messages:
                    ack = decode(bytes(message.payload), Ack)  # type: ignore[arg-type]
                    acked.update(s for r in ack.committed for s in range(r.first, r.last + 1))

            reader = asyncio.create_task(collect_acks())
            try:
                await publish_all(mosquitto.port, [announce()])
                await wait_until(lambda: scalar(cloud_engine, "SELECT count(*) FROM pending_device") == 2, 20, "held")
                # t1 is approved, t2 (fridge-2) and x1 (cam-x) are not; seq 3 is fridge-2's alarm
                await publish_all(
                    mosquitto.port, [telemetry(1, "t1", "t2"), telemetry(2, "t2"), alarm(3), telemetry(4, "x1")]
                )
                await wait_until(lambda: acked >= {1, 2, 3, 4}, 20, "every message acked")
                assert sensors_latest(cloud_store) == {"t1"}  # nothing of the unapproved devices
                assert scalar(cloud_engine, "SELECT count(*) FROM alert") == 0
                assert scalar(cloud_engine, "SELECT count(*) FROM clue") == 0
                assert service.writer.stats.quarantined == 4  # type: ignore[attr-defined]

                app = create_app(cloud_settings, run_background=False)
                with TestClient(app) as client:
                    token = client.post(
                        "/api/v1/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD}
                    ).json()["access_token"]
                    h = {"Authorization": f"Bearer {token}"}
                    pending = {p["device_id"]: p for p in client.get("/api/v1/registry/pending", headers=h).json()}
                    assert pending["fridge-2"]["quarantined"] == 3 and pending["cam-x"]["quarantined"] == 1
                    held = client.get("/api/v1/registry/quarantine", headers=h).json()
                    assert [(q["kind"], q["seq"], q["sensors"], q["reason"]) for q in held] == [
                        ("telemetry", 1, ["t2"], "device_pending"),
                        ("telemetry", 2, ["t2"], "device_pending"),
                        ("alert", 3, ["t2"], "device_pending"),
                        ("telemetry", 4, ["x1"], "device_pending"),
                    ]
                    assert "尚未批准接入" in held[0]["detail"]
                    fridge, cam = pending["fridge-2"]["id"], pending["cam-x"]["id"]
                    r = client.post(f"/api/v1/registry/pending/{fridge}/approve", headers=h, json={"note": "核实"})
                    assert r.status_code == 200, r.text
                    r = client.post(f"/api/v1/registry/pending/{cam}/reject", headers=h, json={"note": "非本场所"})
                    assert r.status_code == 200, r.text
                    assert client.get("/api/v1/registry/quarantine", headers=h).json() == []
                    latest = client.get(f"/api/v1/telemetry/sites/{SITE}/latest", headers=h).json()
                app.state.engine.dispose()

                # approval replayed fridge-2's data in order, with its own timestamps
                assert {row["sensor_id"] for row in latest} == {"t1", "t2"}
                t2 = cloud_store.query_readings(site_id=SITE, sensor_id="t2", start=T0, end=T0 + timedelta(hours=1))
                assert [r.ts for r in t2] == [T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)]
                with cloud_engine.connect() as conn:
                    alert = conn.execute(text("SELECT device_id, started_at FROM alert")).one()
                    clue = conn.execute(text("SELECT site_id, sensor_id FROM clue")).one()
                    dead = conn.execute(text("SELECT reason, detail FROM dead_letter")).all()
                    journal = conn.execute(
                        text("SELECT action FROM journal_event WHERE action LIKE 'device.quarantine%' ORDER BY id")
                    ).all()
                assert alert.device_id == "fridge-2" and clue.sensor_id == "t2"
                assert str(alert.started_at).startswith("2026-11-30 08:03")
                assert [d.reason for d in dead] == ["device_rejected"] and "拒绝" in dead[0].detail
                assert [j.action for j in journal] == ["device.quarantine_released", "device.quarantine_discarded"]

                # afterwards: the approved probe's data flows normally; the rejected camera's is dead-lettered
                await publish_all(mosquitto.port, [telemetry(5, "t2"), telemetry(6, "x1")])
                await wait_until(lambda: acked >= {5, 6}, 20, "acks after the decisions")
                assert scalar(cloud_engine, "SELECT count(*) FROM dead_letter WHERE reason='device_rejected'") == 2
                assert scalar(cloud_engine, "SELECT count(*) FROM quarantine") == 0
                with Session(cloud_engine) as session:
                    states = {p.device_id: p.state.value for p in session.exec(select(PendingDevice))}
                assert states == {"fridge-2": "approved", "cam-x": "rejected"}
            finally:
                reader.cancel()
