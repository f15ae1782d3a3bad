"""Clue collection (线索归集, §8.2), minimal form: every new alert becomes a clue or folds into one.

An alert folds into the open clue with the same (site, device, rule) that was last fed less than
:data:`FOLD_WINDOW` ago; a closed clue never absorbs anything. :func:`collect_from_alert` is the one
hand-over point from :mod:`cloud.alerts`; it runs inside the alert's transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from sqlalchemy import String
from sqlmodel import Field, Session, SQLModel, col, select

from cloud.core.db import UTCDateTime, utcnow

if TYPE_CHECKING:
    from cloud.alerts import Alert

FOLD_WINDOW = timedelta(hours=24)

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
    "food_cold_chain": "食品冷链",
    "food": "食品安全",
    "elevator": "电梯",
    "boiler": "锅炉",
    "pressure_vessel": "压力容器",
    "special_equipment": "特种设备",
    "power": "供电",
    "video": "视频监控",
    "presence": "设备在线",
}


class ClueStatus(StrEnum):
    OPEN = "open"  # 待处理
    CLOSED = "closed"  # 已办结


class ClueBase(SQLModel):
    site_id: str = Field(index=True, max_length=64)
    device_id: str | None = Field(default=None, max_length=64)
    sensor_id: str | None = Field(default=None, max_length=64)
    rule_id: str | None = Field(default=None, max_length=64)
    category: str = Field(index=True, max_length=64)
    severity: str = Field(max_length=16)
    value: float | None = None
    unit: str | None = Field(default=None, max_length=16)
    title: str = Field(max_length=300, description="线索标题（中文）")
    channel: str = Field(default="sensor", max_length=32, description="来源渠道: sensor, 12315, 12345, …")
    status: ClueStatus = Field(default=ClueStatus.OPEN, index=True, sa_type=String(16))
    source_count: int = Field(default=1, description="folded sources (alerts) counter")
    first_seen_at: datetime = Field(sa_type=UTCDateTime)
    last_seen_at: datetime = Field(sa_type=UTCDateTime)


class Clue(ClueBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ClueSource(SQLModel, table=True):
    """One source folded into a clue (today: an alert)."""

    __tablename__ = "clue_source"

    id: int | None = Field(default=None, primary_key=True)
    clue_id: int = Field(foreign_key="clue.id", index=True)
    alert_id: int | None = Field(default=None, index=True)
    added_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CluePublic(ClueBase):
    id: int
    created_at: datetime


class CluesPublic(SQLModel):
    data: list[CluePublic]
    count: int


def clue_title(alert: Alert) -> str:
    severity = SEVERITY_LABELS.get(alert.severity, alert.severity)
    category = CATEGORY_LABELS.get(alert.category, alert.category)
    where = alert.site_id + (f"/{alert.sensor_id}" if alert.sensor_id else f"/{alert.device_id}")
    return f"【{severity}】{category}告警 {where}：{alert.message}"[:300]


def _more_severe(a: str, b: str) -> str:
    rank = {s: i for i, s in enumerate(SEVERITY_ORDER)}
    return a if rank.get(a, 99) <= rank.get(b, 99) else b


def collect_from_alert(session: Session, alert: Alert) -> Clue:
    """Create a clue for a new alert, or fold it into the matching open clue. Flushes, never commits."""
    since = alert.started_at - FOLD_WINDOW
    clue = session.exec(
        select(Clue)
        .where(
            Clue.site_id == alert.site_id,
            Clue.device_id == alert.device_id,
            Clue.rule_id == alert.rule_id,
            Clue.status == ClueStatus.OPEN,
            col(Clue.last_seen_at) >= since,
        )
        .order_by(col(Clue.id).desc())
    ).first()
    if clue is None:
        clue = Clue(
            site_id=alert.site_id,
            device_id=alert.device_id,
            sensor_id=alert.sensor_id,
            rule_id=alert.rule_id,
            category=alert.category,
            severity=alert.severity,
            value=alert.value,
            unit=alert.unit,
            title=clue_title(alert),
            first_seen_at=alert.started_at,
            last_seen_at=alert.started_at,
        )
    else:
        clue.source_count += 1
        clue.severity = _more_severe(alert.severity, clue.severity)
        clue.value = alert.value
        clue.last_seen_at = max(clue.last_seen_at, alert.started_at)
    session.add(clue)
    session.flush()
    session.add(ClueSource(clue_id=clue.id, alert_id=alert.id))
    session.flush()
    return clue
