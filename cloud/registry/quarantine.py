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

Counted in the ingest stats (``quarantined``, ``quarantined_by_reason``) and visible to administrators
(``GET /registry/quarantine``, ``quarantined`` on each pending device in the console's 待审批设备).

**Never announced** (no silent trust): data of a site the registry does not know (``site_unregistered``) or of a
registered site's sensor/device that neither the registry nor any announcement knows (``device_unannounced``) is
held the same way: the gate opens the pending row itself (``pending_device.reason``), journals
``device.unannounced_held`` once per (site, device) (routed to the system administrators) and holds the data
against it. A reading is attributed to a device by its ``sensor`` row, else by the announcement that listed it,
else by the agent's sensor naming ``<device>.<point>`` (:func:`device_of`). Approval of a device of an
unregistered site is refused until the site is registered (:func:`cloud.registry.service.approve_pending`).

The gate (:class:`Gate`, one per ingest writer) caches its view of the registry and re-reads it only when
``registry_version.n`` moved (database triggers on site, device, sensor, pending_device): one query per
transaction.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import msgspec
from sqlalchemy import JSON, Column, Connection, LargeBinary, event, text
from sqlalchemy import inspect as sa_inspect
from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, Session, SQLModel, col, func, select

from cloud.core.db import UTCDateTime, utcnow
from cloud.registry.models import ApprovalState, PendingDevice

log = logging.getLogger(__name__)

HELD = "device_pending"  # reason of a held message: its device was announced, nobody decided yet
SITE_UNREGISTERED = "site_unregistered"  # ... its site is not in the registry (nobody installed it)
DEVICE_UNANNOUNCED = "device_unannounced"  # ... a registered site's device/sensor that no one announced or registered
REJECTED = "device_rejected"  # dead-letter reason of a rejected device's data


def reason_label(reason: str) -> str:
    """The Chinese a person reads for a reason (the one vocabulary: ``labels.toml`` ``[quarantine_reasons]``)."""
    from cloud.labels import label_file

    return label_file().quarantine_reasons.get(reason, reason)


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
    #: reason → readings/alerts held for it (``device_pending`` / ``site_unregistered`` / ``device_unannounced``)
    by_reason: Counter[str] = field(default_factory=Counter)
    #: pending rows this transaction opened for data nobody announced (journaled once each)
    opened: list[dict[str, Any]] = field(default_factory=list)


# ---------------------------------------------------------------- the registry as the ingest sees it (cached)
class RegistryVersion(SQLModel, table=True):
    """One row whose ``n`` grows with every change of the tables the ingest's gate reads (database triggers on
    site, device, sensor, pending_device): the ingest reads this one number per transaction and reloads its view
    of the registry only when it moved -- whichever process (API, CLI, import, another ingest worker) changed it."""

    __tablename__ = "registry_version"

    id: int = Field(default=1, primary_key=True)
    n: int = 0


_WATCHED = ("site", "device", "sensor", "pending_device")


@event.listens_for(SQLModel.metadata, "after_create")
def _install_triggers(target: Any, connection: Connection, **_kw: Any) -> None:
    """Idempotent: runs after every ``create_all`` (new and existing databases alike)."""
    names = set(sa_inspect(connection).get_table_names())
    if "registry_version" not in names:
        return
    dialect = connection.dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = RegistryVersion.__table__  # type: ignore[attr-defined]
    # An existing database already has all of it: opening one writes nothing, so a process starting while another
    # holds SQLite's write lock (an API restarted next to a busy ingest) does not fail on "database is locked".
    if connection.execute(sa_select(table.c.n).where(table.c.id == 1)).first() is None:
        connection.execute(insert(table).values(id=1, n=0).on_conflict_do_nothing())
    installed = _installed_triggers(connection, dialect)
    bump = "UPDATE registry_version SET n = n + 1 WHERE id = 1"
    if dialect == "postgresql" and not {f"registry_version_{n}" for n in _WATCHED if n in names} <= installed:
        connection.execute(
            text(
                "CREATE OR REPLACE FUNCTION registry_version_bump() RETURNS trigger AS $$ "
                f"BEGIN {bump}; RETURN NULL; END $$ LANGUAGE plpgsql"
            )
        )
    for name in _WATCHED:
        if name not in names or f"registry_version_{name}" in installed:
            continue
        if dialect == "postgresql":
            connection.execute(
                text(
                    f"CREATE OR REPLACE TRIGGER registry_version_{name} AFTER INSERT OR UPDATE OR DELETE ON {name} "
                    "FOR EACH STATEMENT EXECUTE FUNCTION registry_version_bump()"
                )
            )
        elif dialect == "sqlite":
            for op in ("INSERT", "UPDATE", "DELETE"):
                connection.execute(
                    text(
                        f"CREATE TRIGGER IF NOT EXISTS registry_version_{name}_{op.lower()} AFTER {op} ON {name} "
                        f"BEGIN {bump}; END"
                    )
                )


def _installed_triggers(connection: Connection, dialect: str) -> set[str]:
    """Names of the registry-version triggers already there (SQLite: one name per table once all three exist)."""
    if dialect == "postgresql":
        rows = connection.execute(text("SELECT tgname FROM pg_trigger WHERE tgname LIKE 'registry_version_%'"))
        return {r[0] for r in rows}
    if dialect != "sqlite":
        return set()
    rows = connection.execute(
        text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'registry_version_%'")
    )
    found = {r[0] for r in rows}
    return {
        f"registry_version_{n}"
        for n in _WATCHED
        if all(f"registry_version_{n}_{op}" in found for op in ("insert", "update", "delete"))
    }


@dataclass(frozen=True)
class RegistryView:
    """What the gate needs of the registry, loaded in one go when :class:`RegistryVersion` moved."""

    version: int | None
    sites: frozenset[str]
    devices: frozenset[tuple[str, str]]
    sensors: frozenset[tuple[str, str]]
    #: (site, device) → its pending_device row (any state)
    pending: dict[tuple[str, str], Any]
    #: (site, sensor) → the pending/rejected row that lists it
    waiting_sensor: dict[tuple[str, str], Any]


def _load_view(conn: Connection, version: int | None) -> RegistryView:
    from cloud.registry.models import Device, Sensor, Site

    site_t = Site.__table__  # type: ignore[attr-defined]
    device_t = Device.__table__  # type: ignore[attr-defined]
    sensor_t = Sensor.__table__  # type: ignore[attr-defined]
    pending_t = PendingDevice.__table__  # type: ignore[attr-defined]
    pending: dict[tuple[str, str], Any] = {}
    waiting_sensor: dict[tuple[str, str], Any] = {}
    for row in conn.execute(
        sa_select(
            pending_t.c.id,
            pending_t.c.site_id,
            pending_t.c.device_id,
            pending_t.c.device_known,
            pending_t.c.sensors,
            pending_t.c.state,
            pending_t.c.reason,
        )
    ).all():
        pending[(row.site_id, row.device_id)] = row
        if _state(row) != ApprovalState.APPROVED.value:
            for sensor in row.sensors or []:
                waiting_sensor[(row.site_id, sensor)] = row
    return RegistryView(
        version=version,
        sites=frozenset(r[0] for r in conn.execute(sa_select(site_t.c.site_id))),
        devices=frozenset((r[0], r[1]) for r in conn.execute(sa_select(device_t.c.site_id, device_t.c.device_id))),
        sensors=frozenset((r[0], r[1]) for r in conn.execute(sa_select(sensor_t.c.site_id, sensor_t.c.sensor_id))),
        pending=pending,
        waiting_sensor=waiting_sensor,
    )


def _state(row: Any) -> str:
    return str(getattr(row.state, "value", row.state)).lower()


def device_of(sensor_id: str) -> str:
    """The device a reading of an unknown sensor is attributed to: nothing registered or announced says, so the
    edge agent's naming convention does (``<device>.<point>``, :meth:`edge.agent.Agent.announce`); a sensor id
    without a dot is taken as a one-sensor device of its own name."""
    return sensor_id.split(".", 1)[0] or sensor_id


class _Unknown(NamedTuple):
    """A pending row the gate uses for data of a never-announced site/device (existing, or opened now)."""

    id: int
    site_id: str
    device_id: str
    device_known: bool
    sensors: list[str]
    state: str
    reason: str


class Gate:
    """The ingest's quarantine hook, one per ingest writer: holds the data of devices nobody approved.

    The registry view is cached; each transaction reads :class:`RegistryVersion` (one query) and reloads the view
    only when the registry changed since."""

    def __init__(self) -> None:
        self._view: RegistryView | None = None
        self.reloads = 0

    def view(self, conn: Connection) -> RegistryView:
        table = RegistryVersion.__table__  # type: ignore[attr-defined]
        version = conn.execute(sa_select(table.c.n).where(table.c.id == 1)).scalar()
        view = self._view
        if view is None or version is None or view.version != version:
            view = self._view = _load_view(conn, version)
            self.reloads += 1
        return view

    def hold(
        self, conn: Connection, telemetry: list[Any], events: list[Any], raw: dict[int, Any], now: datetime
    ) -> tuple[list[Any], list[Any], Held]:
        """Split this transaction's new messages: the ones of unapproved, unannounced or unregistered devices are
        held (inserted here, in the caller's transaction); returns the telemetry batches and alert events that go
        on, and what was held.

        ``raw``: ``id(message)`` → the received item (``.topic``, ``.payload``) of each message."""
        held = Held()
        if not telemetry and not events:
            return telemetry, events, held
        view = self.view(conn)
        opened: dict[tuple[str, str], _Unknown] = {}

        def unknown(site: str, device: str, sensors: list[str], agent: str, device_type: str) -> Any:
            """The pending row data of (site, device) waits for: opened (or widened / reopened) as needed."""
            reason = SITE_UNREGISTERED if site not in view.sites else DEVICE_UNANNOUNCED
            key = (site, device)
            row = opened.get(key) or view.pending.get(key)
            if row is not None and _state(row) == ApprovalState.REJECTED.value and set(sensors) <= set(row.sensors):
                return row  # rejected before: dead-lettered like the rest of its data
            if row is not None and _state(row) == ApprovalState.PENDING.value and set(sensors) <= set(row.sensors):
                return row
            opened[key] = _open(conn, held, row, site, device, sensors, agent, device_type, reason, now, view)
            return opened[key]

        keep_tel: list[Any] = []
        for batch in telemetry:
            site = batch.site_id
            taken: dict[int, tuple[Any, list[str]]] = {}
            kept = []
            for reading in batch.readings:
                sensor = reading.sensor_id
                row = view.waiting_sensor.get((site, sensor))
                if row is None:
                    if site in view.sites and (site, sensor) in view.sensors:
                        kept.append(reading)
                        continue
                    row = unknown(site, device_of(sensor), [sensor], batch.agent_id, "unknown")
                taken.setdefault(row.id, (row, []))[1].append(sensor)
            for row, sensors in taken.values():
                _put(held, row, batch, "telemetry", sorted(set(sensors)), raw[id(batch)], now, readings=len(sensors))
            if not taken:
                keep_tel.append(batch)
            elif kept:
                keep_tel.append(_with_readings(batch, kept))
        keep_ev: list[Any] = []
        for ev in events:
            site, device, sensor = ev.site_id, ev.device_id, ev.sensor_id
            if device == ev.agent_id and sensor is None and site in view.sites:
                keep_ev.append(ev)  # the agent's own condition (outbox overflow …) at a registered site
                continue
            row = view.pending.get((site, device))
            if row is not None and _state(row) == ApprovalState.APPROVED.value:
                row = None
            if row is not None and row.device_known and sensor not in (row.sensors or []):
                row = None  # a known device: only its new sensors wait
            if row is None and not (
                site in view.sites
                and (site, device) in view.devices
                and (sensor is None or (site, sensor) in view.sensors)
            ):
                row = unknown(site, device, [sensor] if sensor else [], ev.agent_id, "unknown")
            if row is None:
                keep_ev.append(ev)
            else:
                _put(held, row, ev, "alert", [sensor] if sensor else [], raw[id(ev)], now)
        if held.rows:  # in the agent's order (its seq), whatever the kind: the replay follows the row ids
            held.rows.sort(key=lambda r: (r["site_id"], r["agent_id"], r["incarnation"] or "", r["seq"] or 0))
            conn.execute(Quarantined.__table__.insert(), held.rows)  # type: ignore[attr-defined]
        if held.dead_rows:
            from cloud.ingest.models import DeadLetter

            conn.execute(DeadLetter.__table__.insert(), held.dead_rows)  # type: ignore[attr-defined]
        if held.opened:
            _journal_opened(conn, held.opened, now)
        return keep_tel, keep_ev, held


def _open(
    conn: Connection,
    held: Held,
    row: Any,
    site: str,
    device: str,
    sensors: list[str],
    agent: str,
    device_type: str,
    reason: str,
    now: datetime,
    view: RegistryView,
) -> _Unknown:
    """Create the pending row of a never-announced device, or widen/reopen the existing one (new sensors)."""
    table = PendingDevice.__table__  # type: ignore[attr-defined]
    known = (site, device) in view.devices
    if row is None:
        listed = sorted(set(sensors))
        values: dict[str, Any] = {
            "site_id": site,
            "agent_id": agent,
            "device_id": device,
            "device_type": device_type,
            "model": None,
            "device_known": known,
            "sensors": listed,
            "state": ApprovalState.PENDING,
            "reason": reason,
            "first_seen": now,
            "last_seen": now,
        }
        key = conn.execute(table.insert().values(**values)).inserted_primary_key
        assert key is not None
        pending_id = int(key[0])
        held.opened.append({"id": pending_id, **values})
        return _Unknown(pending_id, site, device, known, listed, "pending", reason)
    state = _state(row)
    merged = sorted(set(row.sensors or []) | set(sensors)) if state == "pending" else sorted(set(sensors))
    if state == "pending":
        reason = row.reason or "announced"
    changes: dict[str, Any] = {"sensors": merged, "last_seen": now}
    if state != "pending":  # approved earlier (now something new is unknown) or rejected but different: ask again
        changes.update(state=ApprovalState.PENDING, reason=reason, decided_by=None, decided_at=None, note=None)
        held.opened.append({"id": row.id, "site_id": site, "device_id": device, "agent_id": agent, **changes})
    conn.execute(table.update().where(table.c.id == row.id).values(**changes))
    return _Unknown(row.id, site, device, known, merged, "pending", reason)


def _journal_opened(conn: Connection, opened: list[dict[str, Any]], now: datetime) -> None:
    """Each (site, device) whose data the gate started holding: journaled once (→ the admins' notification)."""
    from cloud import journal

    with Session(bind=conn) as session:
        for row in opened:
            journal.append(
                session,
                actor="system",
                action="device.unannounced_held",
                target_type="pending_device",
                target_id=row["id"],
                payload={
                    "site_id": row["site_id"],
                    "device_id": row["device_id"],
                    "agent_id": row["agent_id"],
                    "reason": row.get("reason"),
                    "reason_label": reason_label(str(row.get("reason"))),
                    "sensors": row["sensors"],
                },
                ts=now,
            )
        session.flush()


_DEFAULT_GATE = Gate()


def hold(
    conn: Connection, telemetry: list[Any], events: list[Any], raw: dict[int, Any], now: datetime
) -> tuple[list[Any], list[Any], Held]:
    """:meth:`Gate.hold` of a process-wide gate (the ingest writer owns its own :class:`Gate`)."""
    return _DEFAULT_GATE.hold(conn, telemetry, events, raw, now)


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
    reason = getattr(row, "reason", None) or HELD
    if reason not in (SITE_UNREGISTERED, DEVICE_UNANNOUNCED):
        reason = HELD
    n = readings if kind == "telemetry" else 1
    held.quarantined += n
    held.by_reason[reason] += n
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
            "reason": reason,
            "detail": _held_detail(reason, row),
            "received_at": now,
            "topic": topic[:512],
            "payload": bytes(payload),
        }
    )


def _held_detail(reason: str, row: Any) -> str:
    where = f"设备 {row.site_id}/{row.device_id}"
    if reason == SITE_UNREGISTERED:
        why = f"场所 {row.site_id} 未在登记册中（从未申报）：{where}"
    elif reason == DEVICE_UNANNOUNCED:
        why = f"{where} 未申报、未登记"
    else:
        why = f"{where} 尚未批准接入"
    return f"{why}（待审批编号 {row.id}）：数据隔离保存，登记场所并批准后按序补入"


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
