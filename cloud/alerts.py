"""Alerts mirrored from the edge (and raised by the cloud itself), one open instance per identity.

Identity is ``(site_id, device_id, rule_id)``. A unique *partial* index over open alerts plus
``INSERT … ON CONFLICT DO NOTHING RETURNING`` makes "raise" atomic on SQLite and PostgreSQL: two
raises milliseconds apart, in two workers, still leave exactly one open alert, and only the one
insert that created it hands the alert over to clue collection.

Lifecycle (mirrors :class:`protocols.AlertPhase`): ``raise``/``update`` open the alert when none is open
(an update whose raise was lost still counts) or update the open one; ``clear`` closes the open one
(a clear of an older instance, recognised by its edge ``alert_id``, is ignored).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, String, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, Session, SQLModel, col, select

from cloud.core.db import UTCDateTime, utcnow
from protocols import AlertEvent, AlertPhase


class AlertStatus(StrEnum):
    OPEN = "open"
    CLEARED = "cleared"


class AlertSource(StrEnum):
    EDGE = "edge"  # raised by an edge agent's rules
    CLOUD = "cloud"  # raised by the cloud (presence: site_offline, sensor_stale)


class AlertBase(SQLModel):
    site_id: str = Field(max_length=64, index=True)
    device_id: str = Field(max_length=64)
    rule_id: str = Field(max_length=64)
    agent_id: str | None = Field(default=None, max_length=64)
    sensor_id: str | None = Field(default=None, max_length=64)
    edge_alert_id: str | None = Field(default=None, max_length=64, description="alert_id given by the edge")
    source: AlertSource = Field(default=AlertSource.EDGE, sa_type=String(8))
    status: AlertStatus = Field(default=AlertStatus.OPEN, index=True, sa_type=String(8))
    severity: str = Field(max_length=16)
    category: str = Field(max_length=64)
    value: float | None = None
    limit: float | None = None
    unit: str | None = Field(default=None, max_length=16)
    message: str = Field(default="", max_length=500)
    started_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime, description="time of the last lifecycle step")
    cleared_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    update_count: int = 0
    evidence: list[dict[str, Any]] = Field(
        default_factory=list, sa_type=JSON, description="snapshots referenced by SHA-256 (GET /evidence/{sha256})"
    )


class Alert(AlertBase, table=True):
    __table_args__ = (
        Index(
            "uq_alert_open_identity",
            "site_id",
            "device_id",
            "rule_id",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AlertPublic(AlertBase):
    id: int
    created_at: datetime


class AlertsPublic(SQLModel):
    data: list[AlertPublic]
    count: int


@dataclass(frozen=True, slots=True)
class AlertSignal:
    """One lifecycle step, from an edge :class:`~protocols.AlertEvent` or from the cloud itself."""

    site_id: str
    device_id: str
    rule_id: str
    phase: AlertPhase
    severity: str
    category: str
    message: str
    ts: datetime
    started_at: datetime
    agent_id: str | None = None
    sensor_id: str | None = None
    edge_alert_id: str | None = None
    value: float | None = None
    limit: float | None = None
    unit: str | None = None
    source: AlertSource = AlertSource.EDGE
    evidence: tuple[dict[str, Any], ...] = ()

    @classmethod
    def from_event(cls, event: AlertEvent) -> AlertSignal:
        return cls(
            site_id=event.site_id,
            device_id=event.device_id,
            rule_id=event.rule_id,
            phase=event.phase,
            severity=event.severity.value,
            category=event.category,
            message=event.message,
            ts=event.ts,
            started_at=event.started_at,
            agent_id=event.agent_id,
            sensor_id=event.sensor_id,
            edge_alert_id=event.alert_id,
            value=event.value,
            limit=event.limit,
            unit=event.unit,
            evidence=tuple(ref.model_dump() for ref in event.evidence),
        )


@dataclass(frozen=True, slots=True)
class AlertOutcome:
    alert: Alert | None
    created: bool  # this step opened a new alert (and handed it to clue collection)
    cleared: bool


def _insert_if_absent(session: Session, signal: AlertSignal) -> int | None:
    """Insert an open alert unless one is open for the identity; the new id, or None."""
    values = {
        "site_id": signal.site_id,
        "device_id": signal.device_id,
        "rule_id": signal.rule_id,
        "agent_id": signal.agent_id,
        "sensor_id": signal.sensor_id,
        "edge_alert_id": signal.edge_alert_id,
        "source": signal.source.value,
        "status": AlertStatus.OPEN.value,
        "severity": signal.severity,
        "category": signal.category,
        "value": signal.value,
        "limit": signal.limit,
        "unit": signal.unit,
        "message": signal.message,
        "started_at": signal.started_at,
        "updated_at": signal.ts,
        "update_count": 0,
        "evidence": list(signal.evidence),
        "created_at": utcnow(),
    }
    table = Alert.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["site_id", "device_id", "rule_id"], index_where=text("status = 'open'"))
        .returning(table.c.id)
    )
    new_id = session.connection().execute(stmt).scalar_one_or_none()
    return int(new_id) if new_id is not None else None


def open_alert(session: Session, *, site_id: str, device_id: str, rule_id: str) -> Alert | None:
    return session.exec(
        select(Alert).where(
            Alert.site_id == site_id,
            Alert.device_id == device_id,
            Alert.rule_id == rule_id,
            Alert.status == AlertStatus.OPEN,
        )
    ).first()


def _open_alert_for_change(session: Session, signal: AlertSignal) -> Alert | None:
    """The open alert of the signal's identity, about to be changed.

    SQLite writers already hold the database write lock (``BEGIN IMMEDIATE``). PostgreSQL has no such lock:
    the row is locked (``FOR UPDATE``, re-read after the lock is granted) so concurrent updates of one alert
    serialise instead of losing increments (read-modify-write in Python).
    """
    if session.get_bind().dialect.name != "postgresql":
        return open_alert(session, site_id=signal.site_id, device_id=signal.device_id, rule_id=signal.rule_id)
    return session.exec(
        select(Alert)
        .where(
            Alert.site_id == signal.site_id,
            Alert.device_id == signal.device_id,
            Alert.rule_id == signal.rule_id,
            Alert.status == AlertStatus.OPEN,
        )
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()


def apply_signal(session: Session, signal: AlertSignal) -> AlertOutcome:
    """Apply one lifecycle step atomically. Flushes, never commits (the caller owns the transaction)."""
    if signal.phase is AlertPhase.CLEAR:
        alert = _open_alert_for_change(session, signal)
        if alert is None or (
            signal.edge_alert_id and alert.edge_alert_id and signal.edge_alert_id != alert.edge_alert_id
        ):
            return AlertOutcome(alert, created=False, cleared=False)
        alert.status = AlertStatus.CLEARED
        alert.cleared_at = signal.ts
        alert.updated_at = signal.ts
        # the value stays the one that raised (or last updated) the alert: the value at clear time is back in
        # range and would misstate the alert (a 9.5 °C alert showed -5.5); it is in the clear event and telemetry
        alert.evidence = _merge_evidence(alert.evidence, signal.evidence)
        alert.update_count += 1
        session.add(alert)
        session.flush()
        _journal(session, "alert.cleared", alert)  # followers: notifications, assessment
        return AlertOutcome(alert, created=False, cleared=True)

    new_id = _insert_if_absent(session, signal)
    if new_id is not None:
        alert = session.get(Alert, new_id)
        assert alert is not None
        from cloud.workflow.clues import collect_from_alert

        clue = collect_from_alert(session, alert)
        # followers: notifications (the clue's severity: the most severe of its sources), assessment
        _journal(session, "alert.raised", alert, clue_id=clue.id, clue_severity=clue.severity)
        return AlertOutcome(alert, created=True, cleared=False)

    alert = _open_alert_for_change(session, signal)
    if alert is None:  # cleared between our insert attempt and now (another worker): retry once
        return apply_signal(session, signal)
    escalated = alert.severity != signal.severity
    alert.severity = signal.severity
    alert.message = signal.message or alert.message
    alert.value = signal.value if signal.value is not None else alert.value
    alert.limit = signal.limit if signal.limit is not None else alert.limit
    alert.edge_alert_id = signal.edge_alert_id or alert.edge_alert_id
    alert.updated_at = max(alert.updated_at, signal.ts)
    alert.evidence = _merge_evidence(alert.evidence, signal.evidence)
    alert.update_count += 1
    session.add(alert)
    session.flush()
    if escalated and alert.id is not None:
        from cloud.workflow.clues import clue_title
        from cloud.workflow.grouping import escalate

        escalate(session, alert.id, alert.severity, clue_title(alert))
    return AlertOutcome(alert, created=False, cleared=False)


MAX_EVIDENCE = 50  # evidence references kept per alert (the newest)


def _merge_evidence(kept: list[dict[str, Any]], new: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """Evidence of every lifecycle step, once per SHA-256, in arrival order (a new list: JSON columns need it)."""
    seen = {ref.get("sha256") for ref in kept}
    return [*kept, *(ref for ref in new if ref.get("sha256") not in seen)][-MAX_EVIDENCE:]


def _journal(
    session: Session, action: str, alert: Alert, *, clue_id: int | None = None, clue_severity: str | None = None
) -> None:
    """Append ``alert.raised`` / ``alert.cleared`` to the journal (the feed notifications and assessment follow)."""
    from cloud import journal

    journal.append(
        session,
        actor=f"agent:{alert.agent_id}" if alert.agent_id else "system",
        action=action,
        target_type="alert",
        target_id=alert.id or 0,
        payload={
            "alert_id": alert.id,
            "clue_id": clue_id,
            "clue_severity": clue_severity,
            "site_id": alert.site_id,
            "device_id": alert.device_id,
            "sensor_id": alert.sensor_id,
            "rule_id": alert.rule_id,
            "severity": alert.severity,
            "category": alert.category,
            "source": alert.source,
            "message": alert.message,
            "value": alert.value,
            "limit": alert.limit,
            "unit": alert.unit,
            "started_at": alert.started_at,
            "evidence": [ref.get("sha256") for ref in alert.evidence],
        },
    )


def list_alerts(
    session: Session,
    *,
    status: AlertStatus | None = None,
    site_id: str | None = None,
    severity: str | None = None,
    category: str | None = None,
    rule_id: str | None = None,
    since: datetime | None = None,
    site_ids: Collection[str] | None = None,
    offset: int = 0,
    limit: int = 100,
) -> tuple[list[Alert], int]:
    """Alerts matching the filters, newest first, and their total; ``site_ids`` limits them to those sites
    (jurisdiction; None = every site)."""
    from sqlalchemy import func

    conditions: list[Any] = []
    if status is not None:
        conditions.append(Alert.status == status)
    if site_id:
        conditions.append(Alert.site_id == site_id)
    if severity:
        conditions.append(Alert.severity == severity)
    if category:
        conditions.append(Alert.category == category)
    if rule_id:
        conditions.append(Alert.rule_id == rule_id)
    if since is not None:
        conditions.append(col(Alert.started_at) >= since)
    if site_ids is not None:
        conditions.append(col(Alert.site_id).in_(sorted(site_ids)))
    total = session.exec(select(func.count()).select_from(Alert).where(*conditions)).one()
    rows = session.exec(
        select(Alert).where(*conditions).order_by(col(Alert.id).desc()).offset(offset).limit(limit)
    ).all()
    return list(rows), int(total)
