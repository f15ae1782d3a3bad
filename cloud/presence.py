"""Presence: which agents and sensors are alive, and alerts when they fall silent.

* The ingest records every status (retained; the agent's last will says ``offline``/``lwt``), every
  heartbeat, and the cloud-clock time it last heard from each agent and each sensor.
* :class:`PresenceMonitor` runs periodically: an agent silent longer than its interval raises a cloud-side
  ``site_offline`` alert (device = agent); a sensor silent longer than its interval raises ``sensor_stale``
  (device = sensor; not while its site is offline, to avoid a flood). Both go through the same atomic
  alert upsert → clue path as edge alerts and are cleared when data returns.

Intervals: ``SENTINEL_SITE_OFFLINE_AFTER_S`` and ``SENTINEL_SENSOR_STALE_AFTER_S``, overridable per agent
(``AgentPresence.offline_after_s``) and per sensor (``SensorPresence.stale_after_s``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Connection, Engine
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Field, Session, SQLModel, select

from cloud.alerts import Alert, AlertSignal, AlertSource, AlertStatus, apply_signal
from cloud.core.config import Settings
from cloud.core.db import UTCDateTime, utcnow, writer
from protocols import AlertPhase, Heartbeat, SiteState, Status

log = logging.getLogger(__name__)

SITE_OFFLINE = "site_offline"
SENSOR_STALE = "sensor_stale"


class AgentPresence(SQLModel, table=True):
    __tablename__ = "agent_presence"

    site_id: str = Field(primary_key=True, max_length=64)
    agent_id: str = Field(primary_key=True, max_length=64)
    state: str = Field(default=SiteState.ONLINE.value, max_length=16)
    reason: str | None = Field(default=None, max_length=200)
    agent_version: str = Field(default="", max_length=32)
    status_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    heartbeat_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_seen_at: datetime = Field(sa_type=UTCDateTime, description="cloud clock: last message of any kind")
    outbox_depth: int | None = None
    last_acked_seq: int | None = None
    offline_after_s: float | None = Field(default=None, description="override of SENTINEL_SITE_OFFLINE_AFTER_S")
    incarnation: str | None = Field(default=None, max_length=64, description="epoch of the agent installation")
    clock_offset_s: float | None = Field(default=None, description="agent clock minus cloud clock (agent's estimate)")
    cpu_percent: float | None = None
    rss_mb: float | None = None
    config_version: str | None = Field(default=None, max_length=64, description="config version the agent reports")
    rule_pack_versions: dict[str, str] | None = Field(
        default=None, sa_type=JSON, description="rule pack name → version the agent reports in force"
    )
    register_map_versions: dict[str, str] | None = Field(
        default=None, sa_type=JSON, description="register map name → version the agent reports in force"
    )
    clock_skew_s: float | None = Field(
        default=None, description="set while the agent's clock is off beyond SENTINEL_CLOCK_SKEW_MAX_S (its offset)"
    )


class SensorPresence(SQLModel, table=True):
    __tablename__ = "sensor_presence"

    site_id: str = Field(primary_key=True, max_length=64)
    sensor_id: str = Field(primary_key=True, max_length=64)
    agent_id: str = Field(max_length=64)
    last_received_at: datetime = Field(sa_type=UTCDateTime)
    stale_after_s: float | None = Field(default=None, description="override of SENTINEL_SENSOR_STALE_AFTER_S")


class AgentPresencePublic(SQLModel):
    agent_id: str
    site_id: str
    state: str
    reason: str | None
    last_seen_at: datetime
    heartbeat_at: datetime | None
    outbox_depth: int | None


def _insert(conn: Connection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def record_status(conn: Connection, msg: Status, now: datetime) -> None:
    table = AgentPresence.__table__  # type: ignore[attr-defined]
    values = {
        "agent_id": msg.agent_id,
        "site_id": msg.site_id,
        "state": msg.state.value,
        "reason": msg.reason,
        "agent_version": msg.agent_version,
        "status_at": msg.ts,
        "last_seen_at": now,
        "incarnation": msg.incarnation,
    }
    stmt = _insert(conn)(table).values(**values)
    update = {k: stmt.excluded[k] for k in ("state", "reason", "agent_version", "status_at")}
    if msg.incarnation is not None:
        update["incarnation"] = stmt.excluded.incarnation
    if msg.state is SiteState.ONLINE:
        update["last_seen_at"] = stmt.excluded.last_seen_at
    conn.execute(stmt.on_conflict_do_update(index_elements=["site_id", "agent_id"], set_=update))


def record_heartbeat(conn: Connection, msg: Heartbeat, now: datetime, *, clock_skew_s: float | None = None) -> None:
    table = AgentPresence.__table__  # type: ignore[attr-defined]
    values = {
        "agent_id": msg.agent_id,
        "site_id": msg.site_id,
        "state": SiteState.ONLINE.value,
        "heartbeat_at": msg.ts,
        "last_seen_at": now,
        "outbox_depth": msg.outbox_depth,
        "last_acked_seq": msg.last_acked_seq,
        "agent_version": "",
        "incarnation": msg.incarnation,
        "clock_offset_s": msg.clock_offset_s,
        "cpu_percent": msg.cpu_percent,
        "rss_mb": msg.rss_mb,
        "config_version": msg.config_version,
        "rule_pack_versions": msg.rule_pack_versions,
        "register_map_versions": msg.register_map_versions,
        "clock_skew_s": clock_skew_s,
    }
    stmt = _insert(conn)(table).values(**values)
    fields: tuple[str, ...] = ("state", "heartbeat_at", "last_seen_at", "outbox_depth", "last_acked_seq")
    fields += ("incarnation", "clock_offset_s", "cpu_percent", "rss_mb", "config_version", "clock_skew_s")
    fields += ("rule_pack_versions", "register_map_versions")
    update = {k: stmt.excluded[k] for k in fields}
    conn.execute(stmt.on_conflict_do_update(index_elements=["site_id", "agent_id"], set_=update))


def touch(
    conn: Connection, *, agents: Iterable[tuple[str, str]], sensors: Iterable[tuple[str, str, str]], now: datetime
) -> None:
    """Mark agents ``(agent_id, site_id)`` and sensors ``(site_id, sensor_id, agent_id)`` as heard from now."""
    agent_rows = [{"agent_id": a, "site_id": s, "last_seen_at": now} for a, s in agents]
    if agent_rows:
        table = AgentPresence.__table__  # type: ignore[attr-defined]
        stmt = _insert(conn)(table)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["site_id", "agent_id"], set_={"last_seen_at": stmt.excluded.last_seen_at}
            ),
            agent_rows,
        )
    sensor_rows = [{"site_id": s, "sensor_id": n, "agent_id": a, "last_received_at": now} for s, n, a in sensors]
    if sensor_rows:
        table = SensorPresence.__table__  # type: ignore[attr-defined]
        stmt = _insert(conn)(table)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["site_id", "sensor_id"],
                set_={"last_received_at": stmt.excluded.last_received_at, "agent_id": stmt.excluded.agent_id},
            ),
            sensor_rows,
        )


class PresenceMonitor:
    """Periodic silence check; owned by the app lifespan (or the ingest command), cancelled on shutdown."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine

    def check(self, now: datetime | None = None) -> dict[str, int]:
        """One pass: raise and clear site_offline / sensor_stale alerts. Returns counts (for logs/tests)."""
        now = now or utcnow()
        site_after = self.settings.site_offline_after_s
        sensor_after = self.settings.sensor_stale_after_s
        counts = {"raised": 0, "cleared": 0}
        with Session(writer(self.engine)) as session:
            open_cloud = {
                (a.site_id, a.device_id, a.rule_id): a
                for a in session.exec(
                    select(Alert).where(Alert.status == AlertStatus.OPEN, Alert.source == AlertSource.CLOUD)
                ).all()
            }
            offline_sites: set[str] = set()
            for agent in session.exec(select(AgentPresence)).all():
                limit = timedelta(seconds=agent.offline_after_s or site_after)
                silent = now - agent.last_seen_at > limit
                key = (agent.site_id, agent.agent_id, SITE_OFFLINE)
                if silent:
                    offline_sites.add(agent.site_id)
                    if key not in open_cloud:
                        minutes = int((now - agent.last_seen_at).total_seconds() // 60)
                        reason = (
                            f"（{agent.reason}）" if agent.state == SiteState.OFFLINE.value and agent.reason else ""
                        )
                        self._signal(
                            session,
                            key,
                            AlertPhase.RAISE,
                            now,
                            agent.last_seen_at,
                            agent_id=agent.agent_id,
                            severity="major",
                            message=f"站点 {agent.site_id} 边缘代理 {agent.agent_id} 已离线 "
                            f"{minutes} 分钟{reason}，可能断电或断网",
                        )
                        counts["raised"] += 1
                elif key in open_cloud:
                    self._signal(
                        session,
                        key,
                        AlertPhase.CLEAR,
                        now,
                        agent.last_seen_at,
                        agent_id=agent.agent_id,
                        severity="major",
                        message=f"站点 {agent.site_id} 已恢复在线",
                    )
                    counts["cleared"] += 1
            for sensor in session.exec(select(SensorPresence)).all():
                limit = timedelta(seconds=sensor.stale_after_s or sensor_after)
                silent = now - sensor.last_received_at > limit
                key = (sensor.site_id, sensor.sensor_id, SENSOR_STALE)
                if silent and sensor.site_id not in offline_sites and key not in open_cloud:
                    self._signal(
                        session,
                        key,
                        AlertPhase.RAISE,
                        now,
                        sensor.last_received_at,
                        agent_id=sensor.agent_id,
                        sensor_id=sensor.sensor_id,
                        severity="minor",
                        message=f"测点 {sensor.sensor_id} 超过 {int(limit.total_seconds())} 秒无数据",
                    )
                    counts["raised"] += 1
                elif not silent and key in open_cloud:
                    self._signal(
                        session,
                        key,
                        AlertPhase.CLEAR,
                        now,
                        sensor.last_received_at,
                        agent_id=sensor.agent_id,
                        sensor_id=sensor.sensor_id,
                        severity="minor",
                        message=f"测点 {sensor.sensor_id} 数据已恢复",
                    )
                    counts["cleared"] += 1
            session.commit()
        if counts["raised"] or counts["cleared"]:
            log.info("presence check: %(raised)d raised, %(cleared)d cleared", counts)
        return counts

    @staticmethod
    def _signal(
        session: Session,
        key: tuple[str, str, str],
        phase: AlertPhase,
        now: datetime,
        since: datetime,
        *,
        severity: str,
        message: str,
        agent_id: str | None = None,
        sensor_id: str | None = None,
    ) -> None:
        site_id, device_id, rule_id = key
        apply_signal(
            session,
            AlertSignal(
                site_id=site_id,
                device_id=device_id,
                rule_id=rule_id,
                phase=phase,
                severity=severity,
                category="presence",
                message=message,
                ts=now,
                started_at=since if phase is AlertPhase.RAISE else now,
                agent_id=agent_id,
                sensor_id=sensor_id,
                source=AlertSource.CLOUD,
            ),
        )

    async def run(self) -> None:
        """Check every ``presence_check_s`` until cancelled; a failing check is logged once per streak."""
        failing = False
        while True:
            try:
                await asyncio.to_thread(self.check)
                if failing:
                    log.info("presence check recovered")
                failing = False
            except Exception:
                if not failing:
                    log.exception("presence check failed (logged once until it recovers)")
                failing = True
            await asyncio.sleep(self.settings.presence_check_s)


def list_agents(session: Session) -> list[AgentPresence]:
    return list(session.exec(select(AgentPresence).order_by(AgentPresence.site_id, AgentPresence.agent_id)).all())
