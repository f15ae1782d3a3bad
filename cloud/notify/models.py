"""Tables of the notification service: people and their channels, the duty roster, incidents, deliveries.

* :class:`Contact`: a person who can be notified: an app user (``key`` = username) or an external designated
  person of a site (``key`` = ``ext:<name>``), with their channel addresses and rank in their department.
* :class:`SiteContact`: a site's designated people (``designation`` e.g. ``gsp_designated``, ``site_contact``).
* :class:`DutyShift`: one concrete shift of the roster (aware start/end; shown in Asia/Shanghai).
* :class:`Incident`: one thing to know about (an alert, a clue, a deadline, a storm summary): folded repeats
  increase ``count``; acknowledged once for everybody; escalated level by level; an optional SLA clock.
* :class:`Notification`: an incident sent to one person at one escalation level.
* :class:`Delivery`: a notification on one channel: status, attempts, receipt or error, next attempt.
* :class:`FollowerCursor`: the persisted journal cursor of each follower (notify, clocks, …).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, String
from sqlmodel import Field, SQLModel

from cloud.core.db import UTCDateTime, utcnow


class Rank(StrEnum):
    INSPECTOR = "inspector"  # 检查人员
    SUPERVISOR = "supervisor"  # 督办/分管负责人
    HEAD = "head"  # 科室/所负责人
    EXTERNAL = "external"  # 企业指定人员


class WebhookFormat(StrEnum):
    GENERIC = "generic"
    WECOM = "wecom"  # 企业微信群机器人
    DINGTALK = "dingtalk"  # 钉钉群机器人


class ContactBase(SQLModel):
    key: str = Field(max_length=64, index=True, unique=True, description="username, or ext:<name> for externals")
    full_name: str = Field(default="", max_length=64)
    department: str | None = Field(default=None, max_length=64, index=True, description="部门编码")
    rank: Rank = Field(default=Rank.INSPECTOR, sa_type=String(16))
    email: str | None = Field(default=None, max_length=200)
    webhook_url: str | None = Field(default=None, max_length=500)
    webhook_format: WebhookFormat = Field(default=WebhookFormat.GENERIC, sa_type=String(16))
    webhook_secret: str | None = Field(default=None, max_length=200, description="DingTalk 加签 secret")
    mqtt: bool = Field(default=True, description="publish to ms/v1/notify/<key>")
    inapp: bool = True
    is_active: bool = True


class ContactCreate(ContactBase):
    pass


class Contact(ContactBase, table=True):
    __tablename__ = "notify_contact"
    id: int | None = Field(default=None, primary_key=True)
    ack_code_hash: str | None = Field(
        default=None, max_length=200, description="argon2 hash of the person's own ack code (people without a login)"
    )


class ContactPublic(ContactBase):
    id: int


class SiteContact(SQLModel, table=True):
    __tablename__ = "notify_site_contact"
    id: int | None = Field(default=None, primary_key=True)
    site_id: str = Field(max_length=64, index=True)
    contact_key: str = Field(max_length=64)
    designation: str = Field(default="site_contact", max_length=32)


class DutyShiftBase(SQLModel):
    department: str = Field(max_length=64, index=True)
    contact_key: str = Field(max_length=64, index=True)
    starts_at: datetime = Field(sa_type=UTCDateTime, index=True)
    ends_at: datetime = Field(sa_type=UTCDateTime, index=True)
    shift: str = Field(default="day", max_length=32, description="班次名称, e.g. day/night")


class DutyShift(DutyShiftBase, table=True):
    __tablename__ = "notify_duty_shift"
    id: int | None = Field(default=None, primary_key=True)


class DutyShiftPublic(DutyShiftBase):
    id: int


class IncidentStatus(StrEnum):
    OPEN = "open"  # 待确认
    ACKED = "acked"  # 已确认
    CLOSED = "closed"  # 已关闭（无需确认：摘要、已恢复且策略允许）


class IncidentBase(SQLModel):
    key: str = Field(max_length=200, index=True, description="fold key: clue:<id>, alert:<site>/<dev>/<rule>, …")
    kind: str = Field(max_length=32, description="alert | clue | task | supervision | summary | sla")
    route_id: str = Field(max_length=64)
    policy: str = Field(max_length=64)
    title: str = Field(max_length=300)
    body: str = Field(default="", max_length=2000)
    severity: str = Field(default="minor", max_length=16)
    category: str | None = Field(default=None, max_length=64)
    site_id: str | None = Field(default=None, max_length=64, index=True)
    department: str | None = Field(default=None, max_length=64)
    clue_id: int | None = Field(default=None, index=True)
    alert_id: int | None = Field(default=None, index=True)
    target_type: str | None = Field(default=None, max_length=32)
    target_id: str | None = Field(default=None, max_length=64)
    status: IncidentStatus = Field(default=IncidentStatus.OPEN, sa_type=String(8), index=True)
    count: int = Field(default=1, description="folded occurrences (告警次数)")
    level: int = Field(default=0, description="0 on duty, 1 supervisor, 2 head …")
    opened_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    escalate_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    acked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    acked_by: str | None = Field(default=None, max_length=64)
    acked_via: str | None = Field(default=None, max_length=16)
    cleared_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sla_name: str | None = Field(default=None, max_length=100)
    sla_due_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    sla_met_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sla_breached: bool = False
    understaffed: bool = Field(default=False, description="fewer recipients than the route requires")


class Incident(IncidentBase, table=True):
    __tablename__ = "notify_incident"
    id: int | None = Field(default=None, primary_key=True)
    source_event_id: int | None = None
    items: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON, description="summary items")


class IncidentPublic(IncidentBase):
    id: int


class Notification(SQLModel, table=True):
    __tablename__ = "notify_notification"
    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="notify_incident.id", index=True)
    recipient: str = Field(max_length=64, index=True)
    level: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    read_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    summarised_into: int | None = Field(default=None, description="storm control: summary incident id")


class NotificationPublic(SQLModel):
    id: int
    recipient: str
    level: int
    created_at: datetime
    read_at: datetime | None
    summarised_into: int | None
    incident: IncidentPublic


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # claimed by one lease holder (claimed_by/claimed_at) before its send: never sent twice
    SENT = "sent"
    FAILED = "failed"  # will retry
    DEAD = "dead"  # gave up after max_attempts
    SKIPPED = "skipped"  # channel not configured for this person / rate-limited into a summary


class DeliveryBase(SQLModel):
    notification_id: int = Field(foreign_key="notify_notification.id", index=True)
    channel: str = Field(max_length=16, index=True)
    address: str = Field(default="", max_length=500)
    status: DeliveryStatus = Field(default=DeliveryStatus.PENDING, sa_type=String(8), index=True)
    attempts: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    receipt: str | None = Field(default=None, max_length=500)
    error: str | None = Field(default=None, max_length=500)
    count: int = Field(default=1, description="incident counter at send time")
    link_jti: str | None = Field(default=None, max_length=32, description="one-time ack link of this delivery")
    claimed_by: str | None = Field(
        default=None, max_length=160, description="holder#token of the lease holder that claimed the (last) send"
    )
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime, description="when that send was claimed")


class Delivery(DeliveryBase, table=True):
    __tablename__ = "notify_delivery"
    id: int | None = Field(default=None, primary_key=True)


class DeliveryPublic(DeliveryBase):
    id: int


class AckLink(SQLModel, table=True):
    """A signed one-time acknowledgement link (its random id is in the signed token)."""

    __tablename__ = "notify_ack_link"
    jti: str = Field(primary_key=True, max_length=32)
    incident_id: int = Field(index=True)
    recipient: str = Field(max_length=64)
    channel: str = Field(max_length=16)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    proof_required: bool | None = Field(
        default=None, description="posted where others read it (a group): only the recipient's own proof acknowledges"
    )
    failed_proofs: int | None = Field(default=None, description="wrong passwords/codes given with this link")


class FollowerCursor(SQLModel, table=True):
    """Last journal event id a follower has fully processed (updated in the follower's own transaction)."""

    __tablename__ = "journal_cursor"
    name: str = Field(primary_key=True, max_length=64)
    last_id: int = 0
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
