"""Quarantine (隔离区): telemetry and alerts of devices nobody has approved are stored apart, never used.

A device (or new sensors of a known device) an agent announced waits in ``pending_device`` for an administrator.
Until it is approved its readings and alert events are **held** here (table ``quarantine``, with the reason and the
pending approval they wait for) instead of entering the normal path: they never reach the telemetry store (so not
``/latest`` nor readings), never become clues, never notify anybody. The ingest calls :func:`hold` once per
transaction, after its dedup ledger has claimed the messages (a held message is durably kept, so it is acked as
committed and the agent does not resend it).

* **approve** (:func:`release`, from ``POST /registry/pending/{id}/approve``): the held messages are replayed in
  the order they arrived into the normal path -- readings into the telemetry store, alert events through
  ``apply_signal`` with their original timestamps (so they may now become clues) -- and removed; journaled
  ``device.quarantine_released``.
* **reject** (:func:`discard`): the held messages become dead letters with reason ``device_rejected`` (kept for
  the dead-letter retention, replayable by an administrator); data that still arrives from a rejected device
  is dead-lettered the same way.

Counted in the ingest stats (``quarantined``) and visible to administrators (``GET /registry/quarantine``,
``quarantined`` on each pending device in the console's 待审批设备).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy import JSON, Column, Connection, LargeBinary
from sqlalchemy import select as sa_select
from sqlmodel import Field, Session, SQLModel, col, func, select

from cloud.core.db import UTCDateTime, utcnow
from cloud.registry.models import ApprovalState, PendingDevice

log = logging.getLogger(__name__)

HELD = "device_pending"  # reason of a held message
REJECTED = "device_rejected"  # dead-letter reason of a rejected device's data


class QuarantineBase(SQLModel):
    site_id: str = Field(max_length=64, index=True)
    agent_id: str = Field(max_length=64)
    device_id: str | None = Field(default=None, max_length=64)
    pending_id: int = Field(index=True, description="the approval it waits for")
    kind: str = Field(max_length=16, description="telemetry | alert")
    seq: int | None = None
    incarnation: str | None = Field(default=None, max_length=64)
    sensors: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    reason: str = Field(default=HELD, max_length=64)
    detail: str = Field(default="", max_length=500)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Quarantined(QuarantineBase, table=True):
    __tablename__ = "quarantine"

    id: int | None = Field(default=None, primary_key=True)
    topic: str = Field(max_length=512)
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class QuarantinedPublic(QuarantineBase):
    id: int
    readings: int = Field(default=0, description="readings held (telemetry)")


@dataclass
class Held:
    """What :func:`hold` took out of one transaction."""

    quarantined: int = 0
    dead: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)
    dead_rows: list[dict[str, Any]] = field(default_factory=list)


def _waiting(conn: Connection) -> list[Any]:
    table = PendingDevice.__table__  # type: ignore[attr-defined]
    states = [ApprovalState.PENDING.value, ApprovalState.REJECTED.value]
    rows = conn.execute(
        sa_select(
            table.c.id, table.c.site_id, table.c.device_id, table.c.device_known, table.c.sensors, table.c.state
        ).where(table.c.state.in_(states + [s.upper() for s in states]))
    ).all()
    return list(rows)


def hold(
    conn: Connection, telemetry: list[Any], events: list[Any], raw: dict[int, Any], now: datetime
) -> tuple[list[Any], list[Any], Held]:
    """Split this transaction's new messages: the ones of unapproved devices are held (inserted here, in the
    caller's transaction); returns the telemetry batches and alert events that go on, and what was held.

    ``raw``: ``id(message)`` → the received item (``.topic``, ``.payload``) of each message."""
    held = Held()
    waiting = _waiting(conn)
    if not waiting:
        return telemetry, events, held
    by_sensor: dict[tuple[str, str], Any] = {}
    by_device: dict[tuple[str, str], Any] = {}
    for row in waiting:
        by_device[(row.site_id, row.device_id)] = row
        for sensor in row.sensors or []:
            by_sensor[(row.site_id, sensor)] = row
    keep_tel: list[Any] = []
    for batch in telemetry:
        taken: dict[int, tuple[Any, list[str]]] = {}
        kept = []
        for reading in batch.readings:
            row = by_sensor.get((batch.site_id, reading.sensor_id))
            if row is None:
                kept.append(reading)
                continue
            taken.setdefault(row.id, (row, []))[1].append(reading.sensor_id)
        for row, sensors in taken.values():
            _put(held, row, batch, "telemetry", sorted(set(sensors)), raw[id(batch)], now, readings=len(sensors))
        if not taken:
            keep_tel.append(batch)
        elif kept:
            keep_tel.append(_with_readings(batch, kept))
    keep_ev: list[Any] = []
    for event in events:
        row = by_device.get((event.site_id, event.device_id))
        if row is not None and row.device_known and event.sensor_id not in (row.sensors or []):
            row = None  # a known device: only its new sensors wait
        if row is None:
            keep_ev.append(event)
        else:
            _put(held, row, event, "alert", [event.sensor_id] if event.sensor_id else [], raw[id(event)], now)
    if held.rows:  # in the agent's order (its seq), whatever the kind: the replay follows the row ids
        held.rows.sort(key=lambda r: (r["site_id"], r["agent_id"], r["incarnation"] or "", r["seq"] or 0))
        conn.execute(Quarantined.__table__.insert(), held.rows)  # type: ignore[attr-defined]
    if held.dead_rows:
        from cloud.ingest.models import DeadLetter

        conn.execute(DeadLetter.__table__.insert(), held.dead_rows)  # type: ignore[attr-defined]
    return keep_tel, keep_ev, held


def _with_readings(batch: Any, readings: list[Any]) -> Any:
    if isinstance(batch, msgspec.Struct):
        return msgspec.structs.replace(batch, readings=readings)
    return batch.model_copy(update={"readings": readings})


def _put(
    held: Held,
    row: Any,
    message: Any,
    kind: str,
    sensors: list[str],
    raw: Any,
    now: datetime,
    *,
    readings: int = 1,
) -> None:
    topic, payload = raw.topic, raw.payload
    device = getattr(message, "device_id", None) or row.device_id
    state = str(getattr(row.state, "value", row.state)).lower()
    if state == ApprovalState.REJECTED.value:
        held.dead += 1
        held.dead_rows.append(
            {
                "topic": topic[:512],
                "reason": REJECTED,
                "detail": f"设备 {row.site_id}/{row.device_id} 的接入申请已被拒绝（待审批编号 {row.id}），"
                f"其{'读数' if kind == 'telemetry' else '告警'}不入库 (device rejected); sensors {sensors}",
                "payload": bytes(payload),
                "agent_id": message.agent_id,
                "seq": None,  # acked as committed (kept here), not rejected: the agent must not resend it
                "incarnation": message.incarnation,
                "received_at": now,
            }
        )
        return
    held.quarantined += readings if kind == "telemetry" else 1
    held.rows.append(
        {
            "site_id": message.site_id,
            "agent_id": message.agent_id,
            "device_id": device,
            "pending_id": row.id,
            "kind": kind,
            "seq": message.seq,
            "incarnation": message.incarnation,
            "sensors": sensors,
            "reason": HELD,
            "detail": f"设备 {row.site_id}/{row.device_id} 尚未批准接入（待审批编号 {row.id}）："
            "数据隔离保存，批准后按序补入",
            "received_at": now,
            "topic": topic[:512],
            "payload": bytes(payload),
        }
    )


# ---------------------------------------------------------------- the administrator's decisions
def held_for(session: Session, pending_id: int) -> Sequence[Quarantined]:
    return session.exec(
        select(Quarantined).where(Quarantined.pending_id == pending_id).order_by(col(Quarantined.id))
    ).all()


def counts(session: Session) -> dict[int, int]:
    """pending id → number of held messages."""
    rows = session.exec(select(Quarantined.pending_id, func.count()).group_by(col(Quarantined.pending_id))).all()
    return {int(p): int(n) for p, n in rows}


def release(session: Session, store: Any, pending: PendingDevice, *, by: str) -> dict[str, int]:
    """Replay the messages held for ``pending`` (just approved) in arrival order into the normal path."""
    from cloud import journal
    from cloud.alerts import AlertSignal, apply_signal
    from protocols.messages import AlertEvent, TelemetryBatch, decode_for_topic

    rows = list(held_for(session, pending.id or 0))
    readings = alerts = 0
    for row in rows:
        _address, message = decode_for_topic(row.topic, row.payload)
        if isinstance(message, TelemetryBatch):
            mine = [r for r in message.readings if r.sensor_id in set(row.sensors)]
            if mine:
                batch = message.model_copy(update={"readings": mine})
                readings += store.write_batches(
                    [batch], connection=session.connection() if store.transactional else None
                )
        elif isinstance(message, AlertEvent):
            apply_signal(session, AlertSignal.from_event(message))
            alerts += 1
        session.delete(row)
    summary = {"messages": len(rows), "readings": readings, "alerts": alerts}
    journal.append(
        session,
        actor=by,
        action="device.quarantine_released",
        target_type="pending_device",
        target_id=pending.id or 0,
        payload={"site_id": pending.site_id, "device_id": pending.device_id, **summary},
    )
    session.flush()
    return summary


def discard(session: Session, pending: PendingDevice, *, by: str) -> int:
    """The device was rejected: its held messages become dead letters ``device_rejected``."""
    from cloud import journal
    from cloud.ingest.models import DeadLetter

    rows = list(held_for(session, pending.id or 0))
    for row in rows:
        session.add(
            DeadLetter(
                topic=row.topic,
                reason=REJECTED,
                detail=f"设备 {pending.site_id}/{pending.device_id} 的接入申请被 {by} 拒绝：隔离区数据转为死信"
                f"（{row.kind}，传感器 {row.sensors}，收到于 {row.received_at.isoformat()}）",
                payload=row.payload,
                agent_id=row.agent_id,
                seq=row.seq,
                incarnation=row.incarnation,
                received_at=row.received_at,
            )
        )
        session.delete(row)
    journal.append(
        session,
        actor=by,
        action="device.quarantine_discarded",
        target_type="pending_device",
        target_id=pending.id or 0,
        payload={"site_id": pending.site_id, "device_id": pending.device_id, "messages": len(rows)},
    )
    session.flush()
    return len(rows)
