"""No silent trust (#13 item 4): data of a site or device NOBODY announced is quarantined too, end to end on a
real mosquitto + the ingest + the API.

* a ghost site (never registered, never announced) publishes readings and an alarm: all held
  (``site_unregistered``), acked, nothing in /latest, no alert, no clue, so nothing to notify; the pending row the
  ingest opened shows in ``GET /registry/pending`` with its count, reason and Chinese label, journaled once for
  the admins (``device.unannounced_held``, routed to the system administrators), counted in the ingest stats;
  approving it is refused until the site is registered; registering the site, then approving, replays the held
  data in the agent's order: the readings with their own timestamps, the alarm becomes a clue dated when it
  happened;
* a registered site's agent publishes a sensor no announcement and no registry row knows, in the same batch as a
  registered one: the registered reading is stored, the unknown one held (``device_unannounced``); rejecting it
  turns the held data into dead letters.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import aiomqtt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from cloud.app import create_app
from cloud.core.config import Settings
from cloud.ingest.writer import IngestWriter, RawMessage
from cloud.notify.config import load_rules
from cloud.notify.routing import system_admins
from cloud.registry.quarantine import DEVICE_UNANNOUNCED, SITE_UNREGISTERED
from cloud.telemetry.store import TelemetryStore
from protocols import AlertEvent, AlertPhase, Channel, Reading, Severity, TelemetryBatch, decode, encode, topic_for
from protocols.messages import Ack
from sentinel_cli.servers import Server
from tests.cloud.conftest import ADMIN_PASSWORD, running_ingest, wait_until
from tests.cloud.test_ingest import publish_all, scalar
from tests.utils.registration import register

GHOST, KNOWN, AGENT = "ghost-site", "pharmacy-k", "agent-g"
T0 = datetime.now(UTC).replace(hour=8, minute=0, second=0, microsecond=0) - timedelta(days=1)
PROBE = "fridge-1.temperature"


def telemetry(site: str, seq: int, *sensors: str) -> tuple[str, bytes]:
    ts = T0 + timedelta(minutes=seq)
    readings = [Reading(sensor_id=s, ts=ts, value=4.0 + seq / 10, unit="°C") for s in sensors]
    batch = TelemetryBatch(site_id=site, agent_id=AGENT, seq=seq, sent_at=ts, readings=readings)
    return topic_for(site, AGENT, Channel.TELEMETRY), encode(batch)


def alarm(site: str, seq: int) -> tuple[str, bytes]:
    ts = T0 + timedelta(minutes=seq)
    event = AlertEvent(
        site_id=site,
        agent_id=AGENT,
        seq=seq,
        alert_id="al-ghost-1",
        device_id="fridge-1",
        sensor_id=PROBE,
        rule_id="drug_fridge_high",
        phase=AlertPhase.RAISE,
        severity=Severity.MAJOR,
        category="drug_storage",
        value=12.0,
        limit=8.0,
        unit="°C",
        message="药品冷藏柜温度 12.0 °C 超过上限 8 °C",
        ts=ts,
        started_at=ts,
    )
    return topic_for(site, AGENT, Channel.EVENTS), encode(event)


@pytest.fixture
def admin(cloud_settings: Settings) -> Iterator[tuple[TestClient, dict[str, str]]]:
    app = create_app(cloud_settings, run_background=False)
    with TestClient(app) as client:
        token = client.post("/api/v1/auth/token", data={"username": "admin", "password": ADMIN_PASSWORD}).json()
        yield client, {"Authorization": f"Bearer {token['access_token']}"}
    app.state.engine.dispose()


async def _acked(port: int, site: str, acked: set[int]) -> asyncio.Task[None]:
    client = aiomqtt.Client("127.0.0.1", port, identifier=f"acks-{site}")
    await client.__aenter__()
    await client.subscribe(topic_for(site, AGENT, Channel.ACK), qos=1)

    async def collect() -> None:
        try:
            async for message in client.messages:
                ack = decode(bytes(message.payload), Ack)  # type: ignore[arg-type]
                acked.update(s for r in ack.committed for s in range(r.first, r.last + 1))
        finally:
            await client.__aexit__(None, None, None)

    return asyncio.create_task(collect())


@pytest.mark.broker
async def test_a_ghost_site_is_held_until_registered_and_approved_then_replayed_in_order(
    mosquitto: Server,
    cloud_settings: Settings,
    cloud_engine: Engine,
    cloud_store: TelemetryStore,
    admin: tuple[TestClient, dict[str, str]],
) -> None:
    cloud_settings.mqtt_port = mosquitto.port
    client, h = admin
    acked: set[int] = set()
    async with running_ingest(cloud_settings, cloud_engine, cloud_store) as service:
        reader = await _acked(mosquitto.port, GHOST, acked)
        try:
            # mosquitto_pub -t ms/v1/ghost-site/agent-g/telemetry with valid batches, and an alarm
            await publish_all(
                mosquitto.port,
                [telemetry(GHOST, 1, PROBE), alarm(GHOST, 2), telemetry(GHOST, 3, PROBE)],
            )
            await wait_until(lambda: acked >= {1, 2, 3}, 20, "every message acked (kept in the quarantine)")
        finally:
            reader.cancel()
        stats = service.writer.stats  # type: ignore[attr-defined]
        assert stats.quarantined == 3 and stats.quarantined_by_reason == {SITE_UNREGISTERED: 3}
    assert cloud_store.latest(site_id=GHOST) == []
    assert scalar(cloud_engine, "SELECT count(*) FROM alert") == 0
    assert scalar(cloud_engine, "SELECT count(*) FROM clue") == 0
    with cloud_engine.connect() as conn:
        journal = conn.execute(text("SELECT action, payload FROM journal_event ORDER BY id")).all()
    actions = [j.action for j in journal]
    assert "alert.raised" not in actions  # nothing for the notification service to send about the ghost's alarm
    assert actions.count("device.unannounced_held") == 1  # once per (site, device), not per message
    # ... and that event goes to the system administrators (routing.toml)
    route = next(r for r in load_rules().routing.routes if "device.unannounced_held" in (r.when.action or []))
    assert route.recipients == ["admins"]
    with cloud_engine.connect() as conn:
        from sqlmodel import Session

        assert system_admins(Session(bind=conn)) == ["admin"]

    pending = client.get("/api/v1/registry/pending", headers=h).json()
    assert [(p["site_id"], p["device_id"], p["sensors"], p["quarantined"]) for p in pending] == [
        (GHOST, "fridge-1", [PROBE], 3)
    ]
    assert pending[0]["reason"] == SITE_UNREGISTERED and pending[0]["site_registered"] is False
    assert pending[0]["reason_label"] == "场所未登记"
    held = client.get("/api/v1/registry/quarantine", headers=h).json()
    assert [(q["kind"], q["seq"], q["reason"]) for q in held] == [
        ("telemetry", 1, SITE_UNREGISTERED),
        ("alert", 2, SITE_UNREGISTERED),
        ("telemetry", 3, SITE_UNREGISTERED),
    ]
    pending_id = pending[0]["id"]
    refused = client.post(f"/api/v1/registry/pending/{pending_id}/approve", headers=h, json={})
    assert refused.status_code == 409 and "尚未登记" in refused.text  # register the site first

    r = client.post(
        "/api/v1/registry/sites", headers=h, json={"site_id": GHOST, "name": "新开药房", "category": "drug"}
    )
    assert r.status_code in (200, 201), r.text
    r = client.post(f"/api/v1/registry/pending/{pending_id}/approve", headers=h, json={"note": "现场核实"})
    assert r.status_code == 200, r.text
    assert client.get("/api/v1/registry/quarantine", headers=h).json() == []
    latest = client.get(f"/api/v1/telemetry/sites/{GHOST}/latest", headers=h).json()
    assert [row["sensor_id"] for row in latest] == [PROBE]
    rows = cloud_store.query_readings(site_id=GHOST, sensor_id=PROBE, start=T0, end=T0 + timedelta(hours=1))
    assert [row.ts for row in rows] == [T0 + timedelta(minutes=1), T0 + timedelta(minutes=3)]
    with cloud_engine.connect() as conn:
        alert = conn.execute(text("SELECT device_id, started_at FROM alert")).one()
        clue = conn.execute(text("SELECT site_id, sensor_id FROM clue")).one()
    assert alert.device_id == "fridge-1" and (clue.site_id, clue.sensor_id) == (GHOST, PROBE)
    assert str(alert.started_at).startswith((T0 + timedelta(minutes=2)).strftime("%Y-%m-%d %H:%M"))


@pytest.mark.broker
async def test_an_unannounced_sensor_of_a_known_site_is_held_next_to_stored_good_data_then_rejected(
    mosquitto: Server,
    cloud_settings: Settings,
    cloud_engine: Engine,
    cloud_store: TelemetryStore,
    admin: tuple[TestClient, dict[str, str]],
) -> None:
    cloud_settings.mqtt_port = mosquitto.port
    register(cloud_engine, KNOWN, devices={"probe-1": ["t1"]})
    client, h = admin
    acked: set[int] = set()
    async with running_ingest(cloud_settings, cloud_engine, cloud_store) as service:
        reader = await _acked(mosquitto.port, KNOWN, acked)
        try:
            await publish_all(mosquitto.port, [telemetry(KNOWN, 1, "t1", "rogue.t9"), telemetry(KNOWN, 2, "t1")])
            await wait_until(lambda: acked >= {1, 2}, 20, "both batches acked")
        finally:
            reader.cancel()
        assert service.writer.stats.quarantined_by_reason == {DEVICE_UNANNOUNCED: 1}  # type: ignore[attr-defined]
    # the good reading next to the unknown one was stored, never dropped
    assert {row.sensor_id for row in cloud_store.latest(site_id=KNOWN)} == {"t1"}
    assert cloud_store.count() == 2
    pending = client.get("/api/v1/registry/pending", headers=h).json()
    assert [(p["device_id"], p["sensors"], p["reason"], p["quarantined"]) for p in pending] == [
        ("rogue", ["rogue.t9"], DEVICE_UNANNOUNCED, 1)
    ]
    assert pending[0]["site_registered"] is True
    r = client.post(f"/api/v1/registry/pending/{pending[0]['id']}/reject", headers=h, json={"note": "非本场所设备"})
    assert r.status_code == 200, r.text
    with cloud_engine.connect() as conn:
        dead = conn.execute(text("SELECT reason, detail FROM dead_letter")).all()
    assert [d.reason for d in dead] == ["device_rejected"] and "拒绝" in dead[0].detail
    assert scalar(cloud_engine, "SELECT count(*) FROM quarantine") == 0
    assert {row.sensor_id for row in cloud_store.latest(site_id=KNOWN)} == {"t1"}


def test_the_gate_reads_one_number_per_transaction_and_reloads_only_after_a_registry_change(
    cloud_engine: Engine, cloud_store: TelemetryStore
) -> None:
    """The hook runs in every ingest transaction: its registry view is cached, checked by one query (the
    ``registry_version`` row the database triggers bump), reloaded only when the registry changed."""
    register(cloud_engine, KNOWN, devices={"probe-1": ["t1"]})
    writer = IngestWriter(cloud_engine, cloud_store)
    gate = writer._quarantine.__self__  # type: ignore[union-attr]
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement)

    from sqlalchemy import event

    writer.commit([RawMessage(*telemetry(KNOWN, 1, "t1"))])
    assert gate.reloads == 1
    event.listen(cloud_engine, "before_cursor_execute", count)
    try:
        for seq in range(2, 7):
            writer.commit([RawMessage(*telemetry(KNOWN, seq, "t1"))])
    finally:
        event.remove(cloud_engine, "before_cursor_execute", count)
    assert gate.reloads == 1  # five transactions, no reload
    registry = [s for s in statements if any(f" {t}" in s.lower() for t in ("registry_version", "sensor", "site"))]
    assert sum("registry_version" in s for s in registry) == 5  # one per transaction
    assert not [s for s in registry if "from sensor" in s.lower() or "from site" in s.lower()]
    assert cloud_store.count() == 6

    writer.commit([RawMessage(*telemetry(KNOWN, 7, "t2"))])  # not registered yet: held
    assert cloud_store.count() == 6
    register(cloud_engine, KNOWN, devices={"probe-1": ["t3"]})  # another process registers a sensor
    writer.commit([RawMessage(*telemetry(KNOWN, 8, "t3"))])
    assert cloud_store.count() == 7 and gate.reloads == 2  # the pending row opened for t2 and the registration
