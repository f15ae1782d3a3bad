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
from cloud.fleet_commands import (
    REGISTER_MAP,
    RULE_PACK,
    SITE_CONFIG,
    STATE_LABELS,
    ArtifactKey,
    CommandState,
    FleetCommand,
    last_pushes,
)
from cloud.presence import AgentPresence
from cloud.registry.models import Site

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


ARTIFACT_LABELS = {SITE_CONFIG: "站点配置", RULE_PACK: "规则包", REGISTER_MAP: "寄存器映射"}
IN_SYNC_LABEL, DRIFT_LABEL = "已同步", "未同步"


class ArtifactVersion(SQLModel):
    """One file the agent runs on: the version the cloud last pushed (desired) and the one the agent reports."""

    kind: str = Field(description="site_config | rule_pack | register_map")
    name: str = Field(description="file name without .toml ('' for the site file)")
    label: str = Field(description="e.g. 站点配置, 规则包 gsp.toml")
    desired: str | None = Field(description="version of the last push (None: never pushed from the cloud)")
    reported: str | None = Field(description="version in force on the agent (after a rollback: the previous one)")
    in_sync: bool | None = Field(description="desired == reported (None: nothing desired)")
    sync_label: str = Field(description="已同步 | 未同步 | '' (never pushed)")
    note: str = Field(default="", description="why they differ, when known (push open, failed, rolled back …)")


def _drift_note(push: FleetCommand, reported: str | None, reports: bool) -> str:
    """Why a pushed version is not (yet) in force, from its command."""
    if push.state in (CommandState.PENDING.value, CommandState.SENT.value):
        return f"下发中（{STATE_LABELS[push.state]}）"
    if push.rolled_back:
        return f"新版本健康检查未通过，已自动回滚；生效版本 {reported or push.version_in_force or '—'}"
    if push.state == CommandState.FAILED.value:
        return f"下发失败：{(push.reason or '')[:200]}"
    if push.state == CommandState.EXPIRED.value:
        return "下发已过期（代理未回复）"
    if reported is None and reports:
        return "站点配置未引用此文件"
    if reported is None:
        return "代理未上报此项版本（旧版代理）"
    return "代理上报的版本与最近一次下发不同（可能在本地被修改）"


def artifact_versions(presence: AgentPresence, pushes: dict[ArtifactKey, FleetCommand]) -> list[ArtifactVersion]:
    """Desired vs reported for the site file, every rule pack and every register map (reported or pushed)."""
    reported: dict[ArtifactKey, str | None] = {(SITE_CONFIG, ""): presence.config_version}
    reports = {
        RULE_PACK: presence.rule_pack_versions,
        REGISTER_MAP: presence.register_map_versions,
        SITE_CONFIG: {"": presence.config_version} if presence.config_version else None,
    }
    for kind in (RULE_PACK, REGISTER_MAP):
        for name, version in (reports[kind] or {}).items():
            reported[(kind, name)] = version
    order = {SITE_CONFIG: 0, RULE_PACK: 1, REGISTER_MAP: 2}
    out = []
    for kind, name in sorted(set(reported) | set(pushes), key=lambda k: (order[k[0]], k[1])):
        push = pushes.get((kind, name))
        now = reported.get((kind, name))
        desired = push.config_version if push is not None else None
        in_sync = None if desired is None else desired == now
        out.append(
            ArtifactVersion(
                kind=kind,
                name=name,
                label=ARTIFACT_LABELS[kind] + (f" {name}.toml" if name else ""),
                desired=desired,
                reported=now,
                in_sync=in_sync,
                sync_label="" if in_sync is None else IN_SYNC_LABEL if in_sync else DRIFT_LABEL,
                note=_drift_note(push, now, reports[kind] is not None) if push is not None and not in_sync else "",
            )
        )
    return out


class FleetAgent(SQLModel):
    site_id: str
    site_name: str | None = Field(default=None, description="the site's registered name (None: not registered)")
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
    versions: list[ArtifactVersion] = Field(
        default_factory=list, description="site file, rule packs, register maps: desired vs reported"
    )
    versions_in_sync: bool = Field(default=True, description="no pushed version differs from the reported one")
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
    pushes = last_pushes(session)
    names = {s.site_id: s.name for s in session.exec(select(Site))}
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
        versions = artifact_versions(a, pushes.get((a.site_id, a.agent_id), {}))
        out.append(
            FleetAgent(
                site_id=a.site_id,
                site_name=names.get(a.site_id),
                agent_id=a.agent_id,
                online=online,
                online_label="在线" if online else "离线",
                last_seen_at=a.last_seen_at,
                silent_s=round(max(0.0, (now - a.last_seen_at).total_seconds()), 1),
                incarnation=a.incarnation,
                agent_version=a.agent_version,
                config_version_reported=a.config_version,
                config_version_desired=next((v.desired for v in versions if v.kind == SITE_CONFIG), None),
                versions=versions,
                versions_in_sync=all(v.in_sync is not False for v in versions),
                outbox_depth=a.outbox_depth,
                clock_offset_s=a.clock_offset_s,
                clock_skewed=a.clock_skew_s is not None,
                cpu_percent=a.cpu_percent,
                rss_mb=a.rss_mb,
                open_alerts=alerts,
            )
        )
    return out
