"""The channel interface and the message every channel renders in its own format."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Protocol

SEVERITY_LABELS = {"critical": "紧急", "major": "重要", "minor": "次要", "warning": "警告", "indeterminate": "待定"}
LEVEL_LABELS = {0: "", 1: "【升级·分管负责人】", 2: "【升级·部门负责人】"}


class ChannelError(Exception):
    """A send that failed; ``retry`` False means retrying cannot help (e.g. no address)."""

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    delivery_id: int
    notification_id: int
    incident_id: int
    channel: str
    recipient: str
    address: str
    kind: str
    title: str
    body: str
    severity: str
    category: str | None
    site_id: str | None
    clue_id: int | None
    count: int
    level: int
    ts: dt.datetime
    ack_url: str | None = None
    ack_proof_required: bool = False
    recipient_name: str = ""
    webhook_format: str = "generic"
    webhook_secret: str | None = None

    def headline(self) -> str:
        prefix = LEVEL_LABELS.get(self.level, f"【升级·第{self.level}级】")
        times = f"（累计 {self.count} 次）" if self.count > 1 else ""
        return f"{prefix}{self.title}{times}"

    def ack_label(self) -> str:
        """The link text: a link in a group is one person's, and says whose it is."""
        if not self.ack_proof_required:
            return "确认收到"
        who = self.recipient_name or self.recipient
        return f"确认收到（仅限 {who} 本人，需输入本人密码或个人确认码）"

    def text(self) -> str:
        local = self.ts.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d %H:%M:%S")
        lines = [self.headline(), self.body, f"时间：{local}（北京时间）", f"通知编号：{self.incident_id}"]
        if self.clue_id:
            lines.append(f"线索编号：{self.clue_id}")
        if self.ack_url:
            lines.append(f"{self.ack_label()}：{self.ack_url}")
        return "\n".join(line for line in lines if line)

    def as_json(self) -> dict[str, Any]:
        return {
            "type": "notification",
            "id": self.notification_id,
            "incident_id": self.incident_id,
            "delivery_id": self.delivery_id,
            "recipient": self.recipient,
            "kind": self.kind,
            "title": self.title,
            "headline": self.headline(),
            "body": self.body,
            "severity": self.severity,
            "category": self.category,
            "site_id": self.site_id,
            "clue_id": self.clue_id,
            "count": self.count,
            "level": self.level,
            "ts": self.ts.isoformat(),
            "ack_url": self.ack_url,
            "ack_proof_required": self.ack_proof_required,
        }


class Channel(Protocol):
    name: str

    async def send(self, message: OutboundMessage) -> str:
        """Deliver one message; return a receipt; raise :class:`ChannelError` on failure."""
        ...

    async def close(self) -> None: ...
