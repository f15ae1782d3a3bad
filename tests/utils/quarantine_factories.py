"""A device waiting for approval with data held for it, as the ingest leaves it (#13 quarantine): a
``pending_device`` row and ``quarantine`` rows carrying real encoded protocol messages on their real topics, so
that approving replays them through :func:`cloud.registry.quarantine.release` like held ingest data.

For console and API tests that do not run a broker; the ingest's own hold is tested on mosquitto in
tests/cloud/registry/test_quarantine.py."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine
from sqlmodel import Session

from cloud.core.db import utcnow, writer
from cloud.registry.models import PendingDevice
from cloud.registry.quarantine import HELD, Quarantined
from protocols.messages import AlertEvent, AlertPhase, Reading, Severity, TelemetryBatch, encode
from protocols.topics import Channel, topic_for


def held_device(
    engine: Engine,
    *,
    site_id: str,
    device_id: str,
    device_type: str,
    sensors: list[str],
    batches: int = 2,
    alert: bool = False,
    agent_id: str = "edge-1",
    unit: str = "°C",
) -> int:
    """Create the pending device and its held messages (``batches`` telemetry batches with one reading per sensor,
    then one alarm if ``alert``); returns the pending id."""
    now = utcnow()
    with Session(writer(engine)) as session:
        pending = PendingDevice(
            site_id=site_id,
            agent_id=agent_id,
            device_id=device_id,
            device_type=device_type,
            sensors=sensors,
            first_seen=now - dt.timedelta(minutes=30),
            last_seen=now - dt.timedelta(minutes=1),
        )
        session.add(pending)
        session.flush()
        messages: list[TelemetryBatch | AlertEvent] = []
        for seq in range(1, batches + 1):
            ts = now - dt.timedelta(minutes=20 - seq)
            readings = [Reading(sensor_id=s, ts=ts, value=4.0 + seq, unit=unit) for s in sensors]
            messages.append(TelemetryBatch(site_id=site_id, agent_id=agent_id, seq=seq, sent_at=ts, readings=readings))
        if alert:
            ts = now - dt.timedelta(minutes=5)
            messages.append(
                AlertEvent(
                    site_id=site_id,
                    agent_id=agent_id,
                    seq=batches + 1,
                    alert_id=f"{device_id}-alarm-1",
                    device_id=device_id,
                    sensor_id=sensors[0],
                    rule_id="temp_high",
                    phase=AlertPhase.RAISE,
                    severity=Severity.MAJOR,
                    category="drug_storage",
                    value=9.5,
                    limit=8.0,
                    unit=unit,
                    message="冷藏柜温度 9.5 °C 超出 2–8 °C",
                    ts=ts,
                    started_at=ts,
                )
            )
        for message in messages:
            telemetry = isinstance(message, TelemetryBatch)
            session.add(
                Quarantined(
                    site_id=site_id,
                    agent_id=agent_id,
                    device_id=device_id,
                    pending_id=pending.id or 0,
                    kind="telemetry" if telemetry else "alert",
                    seq=message.seq,
                    sensors=sensors if telemetry else [],
                    reason=HELD,
                    detail="设备尚未批准接入：数据隔离保存，批准后按序补入",
                    received_at=now,
                    topic=topic_for(site_id, agent_id, Channel.TELEMETRY if telemetry else Channel.EVENTS),
                    payload=encode(message),
                )
            )
        session.commit()
        return pending.id or 0
