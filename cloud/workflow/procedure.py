"""The administrative penalty procedure (行政处罚一般程序 / 简易程序) as rules the case steps must satisfy.

:data:`~cloud.workflow.states.CASE_MACHINE` says which step follows which and whose duty it is; this module says
whether the step may be taken *now*, from the case's records and ``cloud/rules/penalty.toml`` + ``deadlines.toml``:

* 告知 (``notify``) needs the proposed penalty; the statement window (``statement``: 5 working days from the day
  the notice reaches the party) then runs. A hearing request is accepted only inside it.
* Nothing leaves 告知 while the window is open, unless the party has waived in writing (``waiver``).
* A hearing needs its notice (served ≥ ``hearing.notice_days_before`` days before the hearing) and its record
  (听证笔录) before the case goes to legal review.
* 法制审核 (``legal_review``: 10 working days) is required before any decision, and its opinion is recorded.
* 集体讨论 is required after a hearing and for fines at or above the configured amounts; its record names the
  participants (at least ``min_participants``) and the conclusion.
* 执行: the fine is due ``payment`` days after service; late payment adds ``rate_per_day`` of the fine per day,
  capped at ``cap_ratio`` × the fine (加处罚款不得超出罚款数额). A case with money owed cannot be closed.
* 当场处罚: a warning, or a fine within ``simplified.max_fine_individual`` / ``max_fine_organisation``.

Each refusal is a :class:`~cloud.workflow.service.Conflict` (409) with a Chinese + English reason and a ``code``.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from functools import cache
from typing import Any, Literal

from pydantic import Field

from cloud.rules.loader import RuleModel, load_model, rules_path
from cloud.workflow.deadlines import Deadline, compute_deadline
from cloud.workflow.money import round_fen, to_yuan
from cloud.workflow.service import Conflict, Invalid

__all__ = [
    "PartyType",
    "PenaltyRules",
    "amount_owed",
    "check_step",
    "discussion_required",
    "late_surcharge",
    "penalty_rules",
]

PartyType = Literal["individual", "organisation"]
PARTY_LABELS = {"individual": "公民", "organisation": "法人或者其他组织"}


class Simplified(RuleModel):
    basis: str
    max_fine_individual: Decimal = Field(ge=0)
    max_fine_organisation: Decimal = Field(ge=0)
    confidence: Literal["v", "r"]


class Hearing(RuleModel):
    basis: str
    notice_days_before: int = Field(ge=1, le=60)
    fine_individual: Decimal = Field(gt=0)
    fine_organisation: Decimal = Field(gt=0)
    confidence: Literal["v", "r"]


class CollectiveDiscussion(RuleModel):
    basis: str
    after_hearing: bool = True
    fine_individual_at_least: Decimal = Field(gt=0)
    fine_organisation_at_least: Decimal = Field(gt=0)
    min_participants: int = Field(ge=2, le=30)
    confidence: Literal["v", "r"]


class LatePayment(RuleModel):
    basis: str
    rate_per_day: Decimal = Field(gt=0, le=1)
    cap_ratio: Decimal = Field(gt=0, le=10)
    confidence: Literal["v", "r"]


class Publication(RuleModel):
    basis: str
    forbidden_patterns: list[str] = Field(default_factory=list)

    def personal_data(self, text: str) -> list[str]:
        return [m.group(0) for p in self.forbidden_patterns for m in re.finditer(p, text)]


class PenaltyRules(RuleModel):
    version: str
    simplified: Simplified
    hearing: Hearing
    collective_discussion: CollectiveDiscussion
    late_payment: LatePayment
    publication: Publication

    def fine_limit(self, party_type: PartyType) -> Decimal:
        s = self.simplified
        return s.max_fine_individual if party_type == "individual" else s.max_fine_organisation


@cache
def penalty_rules() -> PenaltyRules:
    """``penalty.toml`` (a county's own copy in ``$SENTINEL_WORKFLOW_RULES_DIR`` replaces the packaged one)."""
    return load_model(PenaltyRules, rules_path("penalty.toml"))


# ------------------------------------------------------------------------------------------ money
def late_surcharge(principal: Decimal, due: dt.date, paid_on: dt.date, rules: PenaltyRules | None = None) -> Decimal:
    """加处罚款 for paying ``principal`` on ``paid_on`` when it was due on ``due`` (0 when on time)."""
    late = rules or penalty_rules()
    days = (paid_on - due).days
    if days <= 0 or principal <= 0:
        return Decimal("0.00")
    raw = principal * late.late_payment.rate_per_day * days
    return round_fen(min(raw, principal * late.late_payment.cap_ratio))


def amount_owed(
    principal: Decimal | None, due: dt.date | None, payments: list[tuple[Decimal, dt.date]], as_of: dt.date
) -> dict[str, Any]:
    """Principal, surcharge, paid and outstanding on ``as_of`` (surcharge runs until the principal is paid)."""
    principal = to_yuan(principal or 0)
    paid = sum((to_yuan(a) for a, _ in payments), Decimal("0.00"))
    principal_paid_on = None
    running = Decimal("0.00")
    for amount, on in sorted(payments, key=lambda p: p[1]):
        running += amount
        if running >= principal:
            principal_paid_on = on
            break
    until = principal_paid_on or as_of
    surcharge = late_surcharge(principal, due, until) if due is not None else Decimal("0.00")
    total = principal + surcharge
    return {
        "principal": principal,
        "surcharge": surcharge,
        "total": total,
        "paid": paid,
        "outstanding": max(total - paid, Decimal("0.00")),
        "due": due.isoformat() if due else None,
    }


# ------------------------------------------------------------------------------------------ conditions
def discussion_required(steps: dict[str, Any], party_type: str | None, amount: Decimal | None) -> list[str]:
    """Why the case needs a collective discussion (empty: it does not)."""
    rules = penalty_rules().collective_discussion
    why: list[str] = []
    if rules.after_hearing and steps.get("hearing_record"):
        why.append("经过听证")
    limit = rules.fine_individual_at_least if party_type == "individual" else rules.fine_organisation_at_least
    if amount is not None and amount >= limit:
        why.append(f"拟罚款 {amount:.2f} 元达到 {limit:.2f} 元")
    if steps.get("major"):
        why.append("承办机构认定为情节复杂或重大违法")
    return why


def statement_window(notified_on: dt.date) -> Deadline:
    return compute_deadline("statement", notified_on)


def statement_window_days() -> int:
    from cloud.workflow.deadlines import period_days

    return period_days("statement")


PRE_REVIEW = {"registered", "approved", "investigating", "notified", "hearing", "legal_review"}


def _conflict(zh: str, en: str, code: str, **extra: Any) -> Conflict:
    return Conflict(f"{zh} / {en}", code=code, extra=extra)


def check_step(
    action: str,
    *,
    state: str,
    steps: dict[str, Any],
    today: dt.date,
    party_type: str | None,
    proposed: Decimal | None,
    outstanding: Decimal | None,
) -> None:
    """Raise :class:`Conflict` when ``action`` may not be taken now (the state machine checked order and duty)."""
    notice = steps.get("notice") or {}
    if action == "decide" and state in PRE_REVIEW:
        raise _conflict(
            "未经法制审核，不能作出行政处罚决定",
            "no decision without a completed legal review",
            "legal_review_required",
        )
    if action in ("submit_legal_review", "request_hearing") and state == "notified":
        due = dt.date.fromisoformat(notice["statement_due"])
        waived = any(s.get("kind") == "waiver" for s in steps.get("statements", []))
        if action == "request_hearing" and today > due:
            raise _conflict(
                f"听证申请期限已于 {due.isoformat()} 届满，不能再登记听证申请",
                f"the hearing request window closed on {due.isoformat()}",
                "window_closed",
                due=due.isoformat(),
            )
        if action == "submit_legal_review" and today <= due and not waived:
            raise _conflict(
                f"陈述、申辩和听证申请期限至 {due.isoformat()} 尚未届满（当事人未书面放弃），不能进入下一步",
                f"the statement window is open until {due.isoformat()} and the party has not waived",
                "statement_window_open",
                due=due.isoformat(),
            )
    if action == "submit_legal_review" and state == "hearing":
        if not steps.get("hearing_notice"):
            raise _conflict("尚未送达听证通知书", "the hearing notice is missing", "hearing_notice_missing")
        if not steps.get("hearing_record"):
            raise _conflict(
                "听证笔录尚未制作，不能提交法制审核", "the hearing record is missing", "hearing_record_missing"
            )
    if action == "decide" and state == "reviewed":
        why = discussion_required(steps, party_type, proposed)
        if why:
            raise _conflict(
                f"本案须经负责人集体讨论决定（{'；'.join(why)}）",
                f"a collective discussion is required ({len(why)} reason(s))",
                "collective_discussion_required",
                reasons=why,
            )
    if action == "close" and outstanding is not None and outstanding > 0:
        raise _conflict(
            f"尚有罚没款及加处罚款 {outstanding:.2f} 元未缴清，不能结案",
            f"{outstanding:.2f} yuan still owed",
            "money_outstanding",
            outstanding=f"{outstanding:.2f}",
        )


def check_on_the_spot(party_type: PartyType, amount: Decimal | None) -> None:
    """当场处罚 limits: a warning (no amount) or a fine within the configured maximum for the party type."""
    if amount is None or amount == 0:
        return
    limit = penalty_rules().fine_limit(party_type)
    if amount > limit:
        raise Invalid(
            f"简易程序对{PARTY_LABELS[party_type]}只能当场处以 {limit:.2f} 元以下罚款或者警告，"
            f"{amount:.2f} 元须适用普通程序 / on-the-spot fines for {party_type} are at most {limit:.2f} yuan",
            code="simplified_limit",
            extra={"limit": f"{limit:.2f}"},
        )
