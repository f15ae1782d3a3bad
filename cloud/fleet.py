"""The fleet view: every edge agent with what an operator needs to see at a glance (issue 15).

Built from the presence rows the ingest keeps (status, heartbeat, clock checks) and the open alerts: online means
"heard from within its offline interval" (``SENTINEL_SITE_OFFLINE_AFTER_S`` or the agent's override), not the last
status message. An offline agent's still-open edge alerts are shown as **state unknown** (状态未知): nobody can
tell whether the condition still holds, so they must not look current.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Field, Session, SQLModel, col, select

from cloud.alerts import Alert, AlertStatus
from cloud.core.config import Settings
from cloud.core.db import utcnow
from cloud.fleet_commands import desired_versions
from cloud.presence import AgentPresence

#: alert state shown in the fleet view
ALERT_OPEN, ALERT_UNKNOWN = "open", "state_unknown"
ALERT_STATE_LABELS = {ALERT_OPEN: "告警中", ALERT_UNKNOWN: "状态未知（代理离线）"}


class FleetAlert(SQLModel):
    id: int
    rule_id: str
    device_id: str
    severity: str
    message: str
    started_at: datetime
    state: str = Field(description="open | state_unknown (the agent is offline: the condition may have changed)")
    state_label: str


class FleetAgent(SQLModel):
    site_id: str
    agent_id: str
    online: bool
    online_label: str
    last_seen_at: datetime
    silent_s: float
    incarnation: str | None
    agent_version: str
    config_version_reported: str | None
    config_version_desired: str | None = Field(
        default=None, description="version of the last push_config command for the agent (None: never pushed)"
    )
    outbox_depth: int | None
    clock_offset_s: float | None
    clock_skewed: bool
    cpu_percent: float | None
    rss_mb: float | None
    open_alerts: list[FleetAlert]


def fleet_view(session: Session, settings: Settings, now: datetime | None = None) -> list[FleetAgent]:
    now = now or utcnow()
    agents = session.exec(select(AgentPresence).order_by(col(AgentPresence.site_id), col(AgentPresence.agent_id)))
    open_alerts = session.exec(select(Alert).where(Alert.status == AlertStatus.OPEN).order_by(col(Alert.id))).all()
    by_agent: dict[tuple[str, str], list[Alert]] = {}
    for alert in open_alerts:
        if alert.agent_id:
            by_agent.setdefault((alert.site_id, alert.agent_id), []).append(alert)
    desired = desired_versions(session)
    out: list[FleetAgent] = []
    for a in agents:
        limit = timedelta(seconds=a.offline_after_s or settings.site_offline_after_s)
        online = now - a.last_seen_at <= limit
        alerts = []
        for alert in by_agent.get((a.site_id, a.agent_id), []):
            # the cloud's own alerts about the agent (offline, clock, seq conflict) are current; the edge's are not
            unknown = not online and alert.source == "edge"
            state = ALERT_UNKNOWN if unknown else ALERT_OPEN
            alerts.append(
                FleetAlert(
                    id=alert.id or 0,
                    rule_id=alert.rule_id,
                    device_id=alert.device_id,
                    severity=alert.severity,
                    message=alert.message,
                    started_at=alert.started_at,
                    state=state,
                    state_label=ALERT_STATE_LABELS[state],
                )
            )
        out.append(
            FleetAgent(
                site_id=a.site_id,
                agent_id=a.agent_id,
                online=online,
                online_label="在线" if online else "离线",
                last_seen_at=a.last_seen_at,
                silent_s=round(max(0.0, (now - a.last_seen_at).total_seconds()), 1),
                incarnation=a.incarnation,
                agent_version=a.agent_version,
                config_version_reported=a.config_version,
                config_version_desired=desired.get((a.site_id, a.agent_id)),
                outbox_depth=a.outbox_depth,
                clock_offset_s=a.clock_offset_s,
                clock_skewed=a.clock_skew_s is not None,
                cpu_percent=a.cpu_percent,
                rss_mb=a.rss_mb,
                open_alerts=alerts,
            )
        )
    return out
