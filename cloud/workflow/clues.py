"""Clues (线索, standard §8.2): the table, and collection from sensor/camera alerts.

Every channel ends in :func:`cloud.workflow.grouping.collect`, which resolves the subject and site, folds the
source into a matching open clue (configuration: ``cloud/rules/grouping.toml``) or creates a new clue, journals
it and runs analysis. :func:`collect_from_alert` is the hand-over point from :mod:`cloud.alerts`; it runs inside
the alert's transaction (flushes, never commits). Work orders (12315/12345, walk-in, letters, superiors) come
through :mod:`cloud.workflow.intake`; clues produced by analysis, inspection, enforcement and assessment through
:func:`cloud.workflow.grouping.collect` with ``kind="feedback"``.

``status`` (open/closed) is kept for readers that only care whether a clue is finished; ``state`` is the full
state of :data:`cloud.workflow.states.CLUE_MACHINE`; ``version`` is the compare-and-set counter of transitions.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import JSON, Column, String, Text
from sqlmodel import Field, Session, SQLModel

from cloud.core.db import UTCDateTime, utcnow
from cloud.workflow.states import ClueState, state_type

if TYPE_CHECKING:
    from cloud.alerts import Alert

SEVERITY_LABELS: dict[str, str] = {
    "critical": "紧急",
    "major": "重要",
    "minor": "次要",
    "warning": "警告",
    "indeterminate": "待定",
}
SEVERITY_ORDER = list(SEVERITY_LABELS)
CATEGORY_LABELS: dict[str, str] = {
    "drug_storage": "药品储存",
    "drug_cold_chain": "药品冷链",
    "food_cold_chain": "食品冷链",
    "food": "食品安全",
    "elevator": "电梯",
    "boiler": "锅炉",
    "pressure_vessel": "压力容器",
    "special_equipment": "特种设备",
    "power": "供电",
    "video": "视频监控",
    "presence": "设备在线",
    "consumer_dispute": "消费纠纷",
    "online_advertising": "网络广告",
    "online_price": "网络价格",
    "check_in_location": "签到位置异常",
}
KIND_LABELS: dict[str, str] = {
    "alert": "感知告警",
    "complaint": "投诉",
    "report": "举报",
    "referral": "交办移送",
    "walk_in": "来访来信",
    "feedback": "工作中发现",
}
TERMINAL_STATES = frozenset({ClueState.CLOSED, ClueState.NO_ACTION, ClueState.MERGED})


class ClueStatus(StrEnum):
    OPEN = "open"  # 待处理
    CLOSED = "closed"  # 已办结


class ClueBase(SQLModel):
    site_id: str | None = Field(default=None, index=True, max_length=64)
    device_id: str | None = Field(default=None, max_length=64)
    sensor_id: str | None = Field(default=None, max_length=64)
    rule_id: str | None = Field(default=None, max_length=64)
    category: str = Field(index=True, max_length=64)
    severity: str = Field(max_length=16)
    value: float | None = None
    unit: str | None = Field(default=None, max_length=16)
    title: str = Field(max_length=300, description="线索标题（中文）")
    channel: str = Field(default="sensor", max_length=32, description="来源渠道: sensor, hotline_12345, …")
    kind: str = Field(default="alert", max_length=16, description="alert complaint report referral walk_in feedback")
    status: ClueStatus = Field(default=ClueStatus.OPEN, index=True, sa_type=String(16))
    state: ClueState = Field(default=ClueState.NEW, index=True, sa_type=state_type(ClueState))
    source_count: int = Field(default=1, description="folded sources counter")
    first_seen_at: datetime = Field(sa_type=UTCDateTime)
    last_seen_at: datetime = Field(sa_type=UTCDateTime)
    subject_id: int | None = Field(default=None, index=True, description="市场主体 (registry)")
    subject_name: str | None = Field(default=None, max_length=200, description="主体名称（未登记时为被投诉人）")
    department_id: int | None = Field(default=None, index=True, description="承办部门 (jurisdiction)")
    group_key: str = Field(default="", max_length=300, index=True)
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    disposal: str | None = Field(default=None, max_length=20, description="current analysis disposal")
    result: str | None = Field(default=None, max_length=2000, description="办理结果")
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    parent_clue_id: int | None = Field(default=None, description="clue this one was produced from")
    merged_into_id: int | None = Field(default=None)


class Clue(ClueBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    version: int = Field(default=0, description="compare-and-set counter, +1 per transition")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    created_by: str = Field(default="system", max_length=64)


class ClueSource(SQLModel, table=True):
    """One source folded into a clue: an alert, a work order, or a task/case/plan that produced it."""

    __tablename__ = "clue_source"

    id: int | None = Field(default=None, primary_key=True)
    clue_id: int = Field(foreign_key="clue.id", index=True)
    alert_id: int | None = Field(default=None, index=True)
    work_order_id: int | None = Field(default=None, index=True)
    kind: str = Field(default="alert", max_length=16)
    channel: str = Field(default="sensor", max_length=32)
    ref: str | None = Field(default=None, max_length=64, description="工单号 / task / case reference")
    summary: str = Field(default="", max_length=500)
    extra: dict[str, object] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    added_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CluePublic(ClueBase):
    id: int
    version: int
    created_at: datetime
    created_by: str


class CluesPublic(SQLModel):
    data: list[CluePublic]
    count: int


class ClueSourcePublic(SQLModel):
    id: int
    kind: str
    channel: str
    alert_id: int | None
    work_order_id: int | None
    ref: str | None
    summary: str
    added_at: datetime


_QUANTITY_LABELS = {"temperature": "温度", "humidity": "湿度"}


def place_label(session: Session | None, site_id: str, device_id: str | None, sensor_id: str | None) -> str:
    """Where an alert happened as a person reads it: 场所名称·设备名称 温度, ids only for what is not registered."""
    from cloud.registry.models import Device, Site

    site = session.get(Site, site_id) if session is not None else None
    device = session.get(Device, (site_id, device_id)) if session is not None and device_id else None
    where = site.name if site is not None else site_id
    if device is not None and device.name:
        quantity = (sensor_id or "").rsplit(".", 1)[-1] if sensor_id and "." in sensor_id else ""
        return f"{where}·{device.name}" + (f"{_QUANTITY_LABELS.get(quantity, '')}" if quantity else "")
    if site is not None:
        return where
    return where + (f"/{sensor_id}" if sensor_id else f"/{device_id}")


def clue_title(alert: Alert, session: Session | None = None) -> str:
    severity = SEVERITY_LABELS.get(alert.severity, alert.severity)
    category = CATEGORY_LABELS.get(alert.category, alert.category)
    where = place_label(session, alert.site_id, alert.device_id, alert.sensor_id)
    return f"【{severity}】{category}告警 {where}：{_without_place(alert.message, where)}"[:300]


def _without_place(message: str, where: str) -> str:
    """The agent's message without the measuring point the title already names (an edge rule's message starts with
    the point's name: 药品冷藏柜 1 号温度 9.3°C … would read twice after 场所·药品冷藏柜 1 号温度)."""
    point = where.split("·", 1)[1] if "·" in where else ""
    if point and message.startswith(point) and message[len(point) :].strip(" ：:"):
        return message[len(point) :].lstrip(" ：:")
    return message


def more_severe(a: str, b: str) -> str:
    rank = {s: i for i, s in enumerate(SEVERITY_ORDER)}
    return a if rank.get(a, 99) <= rank.get(b, 99) else b


def collect_from_alert(session: Session, alert: Alert) -> Clue:
    """Create a clue for a new alert, or fold it into the matching open clue. Flushes, never commits."""
    from cloud.workflow.grouping import Incoming, collect

    channel = "video" if alert.category.startswith(("kitchen_", "video")) else "sensor"
    incoming = Incoming(
        kind="alert",
        channel=channel,
        category=alert.category,
        severity=alert.severity,
        title=clue_title(alert, session),
        at=alert.started_at,
        site_id=alert.site_id,
        device_id=alert.device_id,
        sensor_id=alert.sensor_id,
        rule_id=alert.rule_id,
        value=alert.value,
        unit=alert.unit,
        summary=alert.message[:500],
        alert_id=alert.id,
        ref=alert.edge_alert_id,
    )
    return collect(session, incoming, actor=f"agent:{alert.agent_id}" if alert.agent_id else "system").clue
