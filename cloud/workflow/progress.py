"""Progress lookup for the public (办理进度查询): a receipt number plus the verification code printed with it.

* :func:`issue_code` gives a work order a 6-digit verification code (stored as a salted SHA-256 only) when the
  kiosk prints its receipt; the code is shown once.
* :func:`lookup` answers the status of the work order as a citizen may see it — kind, category, when received,
  the stage (待决定是否受理 / 已受理 / 不予受理 / 调解 … / 已办结) and the next due date, marked 预计 when the
  working-day calendar of that year is provisional — and never personal data (no names, phones, addresses, no
  respondent, no facts). A wrong code counts against the receipt NUMBER typed, whether such a receipt exists or
  not (:class:`ReceiptLookupGuard`), so the answers never tell which numbers exist; after :data:`MAX_FAILURES`
  the number is locked for :data:`LOCK_HOURS` hours (``progress.locked`` journaled for a real receipt) — long
  enough to stop guessing a 6-digit code, short enough that a stranger locking a citizen out costs a day, not the
  lookup (the service window and 12315 still answer). Every lookup is journaled without the code.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Field, Session, SQLModel, select

from cloud.core.db import UTCDateTime, utcnow
from cloud.workflow.clues import CATEGORY_LABELS, Clue
from cloud.workflow.models import WorkOrder
from cloud.workflow.service import record
from cloud.workflow.states import ClueState

__all__ = ["LOCK_HOURS", "MAX_FAILURES", "LookupRefused", "ReceiptCode", "ReceiptLookupGuard", "issue_code", "lookup"]

MAX_FAILURES = 5
LOCK_HOURS = 24
TZ = ZoneInfo("Asia/Shanghai")
KIND_LABELS = {"complaint": "投诉", "report": "举报", "referral": "交办", "walk_in": "来访来信"}


class ReceiptCode(SQLModel, table=True):
    """The verification code of a receipt (hash only) and the failed lookups counted against it."""

    __tablename__ = "receipt_code"

    work_order_id: int = Field(primary_key=True)
    receipt_no: str = Field(max_length=64, unique=True)
    salt: str = Field(max_length=32)
    code_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ReceiptLookupGuard(SQLModel, table=True):
    """Failed lookups per receipt number as typed (existing or not) and the lock they lead to."""

    __tablename__ = "receipt_lookup_guard"

    receipt_no: str = Field(primary_key=True, max_length=64)
    failures: int = 0
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)


def _hash(salt: str, code: str) -> str:
    return hashlib.sha256(f"{salt}:{code}".encode()).hexdigest()


def issue_code(session: Session, order: WorkOrder) -> str:
    """A new 6-digit verification code for the order's receipt (returned once, stored hashed)."""
    assert order.id is not None and order.external_no
    code = f"{secrets.randbelow(10**6):06d}"
    salt = secrets.token_hex(8)
    session.add(
        ReceiptCode(work_order_id=order.id, receipt_no=order.external_no, salt=salt, code_hash=_hash(salt, code))
    )
    session.flush()
    return code


class LookupRefused(Exception):
    """Unknown receipt, wrong code or locked receipt: one message for the first two (no probing)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message, self.code = message, code


@dataclass(frozen=True, slots=True)
class Due:
    on: date
    provisional: bool
    what: str

    def view(self) -> dict[str, object]:
        return {
            "date": self.on.isoformat(),
            "certainty": "provisional" if self.provisional else "official",
            "label": ("预计 " if self.provisional else "")
            + f"{self.on.year}年{self.on.month}月{self.on.day}日前{self.what}",
        }


def _stage(session: Session, order: WorkOrder) -> tuple[str, Due | None, date | None]:
    clue = session.get(Clue, order.clue_id) if order.clue_id else None
    if clue is not None and clue.state == ClueState.MERGED and clue.merged_into_id:
        clue = session.get(Clue, clue.merged_into_id) or clue
    closed_on = clue.closed_at.astimezone(TZ).date() if clue is not None and clue.closed_at else None
    if clue is not None and clue.state == ClueState.CLOSED:
        return "已办结", None, closed_on
    if clue is not None and clue.state == ClueState.NO_ACTION:
        return "经核查不予处理", None, closed_on
    if order.acceptance == "refused":
        return "不予受理（已告知）", None, order.decided_on
    if order.acceptance == "accepted":
        if order.mediation_outcome:
            return "调解已结束", None, order.mediation_ended_on
        due = Due(order.mediation_due, False, "完成调解") if order.mediation_due else None
        return "已受理，正在调解处理", due, None
    if order.kind == "complaint":
        provisional = bool(order.accept_due_warnings)
        due = Due(order.accept_due, provisional, "决定是否受理") if order.accept_due else None
        return "已收到，待决定是否受理", due, None
    if clue is not None and clue.state in (ClueState.DISPATCHED, ClueState.IN_EXECUTION):
        return "正在核查处理", None, None
    return "已收到，正在处理", None, None


def lookup(session: Session, receipt_no: str, code: str) -> dict[str, object]:
    """The public status of a receipt, or :class:`LookupRefused`. Commits nothing; the caller commits."""
    number = receipt_no.strip()
    now = utcnow()
    guard = session.get(ReceiptLookupGuard, number)
    if guard is not None and guard.locked_until is not None and guard.locked_until > now:
        raise LookupRefused(
            f"查询码错误次数过多，该回执号已暂停自助查询 {LOCK_HOURS} 小时；请携带回执到受理窗口或拨打 12315 查询"
            " / locked",
            "locked",
        )
    row = session.exec(select(ReceiptCode).where(ReceiptCode.receipt_no == number)).first()
    order = session.get(WorkOrder, row.work_order_id) if row is not None else None
    if row is None or order is None or not hmac.compare_digest(row.code_hash, _hash(row.salt, code.strip())):
        guard = guard or ReceiptLookupGuard(receipt_no=number)
        if guard.locked_until is not None:  # an expired lock: a fresh count
            guard.failures, guard.locked_until = 0, None
        guard.failures += 1
        if guard.failures >= MAX_FAILURES:
            guard.locked_until = now + timedelta(hours=LOCK_HOURS)
            if row is not None:
                payload = {"failures": guard.failures}
                record(session, "kiosk", "progress.locked", "work_order", row.work_order_id, payload)
        session.add(guard)
        raise LookupRefused("回执号或查询码不正确，请核对后重试 / receipt or code not recognised", "not_recognised")
    if guard is not None:
        session.delete(guard)
    stage, due, ended = _stage(session, order)
    record(session, "kiosk", "progress.viewed", "work_order", row.work_order_id, {"stage": stage})
    return {
        "receipt_no": row.receipt_no,
        "kind_label": KIND_LABELS.get(order.kind, "投诉举报"),
        "category_label": CATEGORY_LABELS.get(order.category, "其他"),
        "received_on": order.received_at.astimezone(TZ).date().isoformat(),
        "stage": stage,
        "due": due.view() if due else None,
        "ended_on": ended.isoformat() if ended else None,
    }
