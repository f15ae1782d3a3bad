"""The steps of a penalty case after investigation: their records, clocks and documents.

:func:`before` is called by :func:`cloud.workflow.enforcement.case_action` before the state changes: it checks
the procedure (:func:`cloud.workflow.procedure.check_step`) and returns the column values the step sets (dates,
clocks, the step's record in ``EnforcementCase.steps``). :func:`after` generates the step's document once the
transition is stored. Records carry the name and user of whoever entered them; documents print those.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlmodel import Session

from cloud.core.config import Settings
from cloud.core.db import utcnow
from cloud.documents.procedure import (
    DiscussionRecord,
    HearingNotice,
    HearingRecord,
    LegalReviewOpinion,
    Line,
    OnTheSpotDecision,
    PenaltyDecision,
    PenaltyNotice,
    ProcedureDocument,
    ServiceReceipt,
)
from cloud.workflow import paperwork, procedure
from cloud.workflow.config import workflow_rules
from cloud.workflow.deadlines import compute_deadline
from cloud.workflow.models import DocumentRecord, EnforcementCase
from cloud.workflow.money import format_yuan
from cloud.workflow.service import Actor, Conflict, Invalid, record

__all__ = ["StepInput", "after", "before", "check", "entered_by", "owed"]

RIGHTS = (
    "根据《中华人民共和国行政处罚法》第四十四条、第四十五条的规定，你（单位）有权进行陈述和申辩；"
    "符合听证条件的，有权要求举行听证。"
)


@dataclass(frozen=True, slots=True)
class StepInput:
    """Everything a step may carry (each step reads what it needs and refuses what is missing)."""

    on: dt.date | None = None  # the day the step happened (notice served, hearing held, decision served)
    party_type: str | None = None
    proposed_decision: str | None = None
    amount: Decimal | None = None
    decision: str | None = None
    method: str | None = None  # service method: direct | post | electronic | notice
    receiver: str | None = None
    participants: list[str] = field(default_factory=list)
    major: bool = False


def entered_by(actor: Actor, duty: str, text: str) -> dict[str, Any]:
    return {"user": actor.username, "name": actor.name, "duty": duty, "text": text, "at": utcnow().isoformat()}


def owed(case: EnforcementCase, payments: list[tuple[Decimal, dt.date]], as_of: dt.date) -> dict[str, Any]:
    return procedure.amount_owed(case.penalty_amount, case.payment_due, payments, as_of)


def _require(value: Any, zh: str, en: str, code: str) -> Any:
    if value in (None, "", []):
        raise Invalid(f"{zh} / {en}", code=code)
    return value


def _party_type(case: EnforcementCase, step: StepInput) -> str:
    party_type = step.party_type or case.party_type
    if party_type not in ("individual", "organisation"):
        raise Invalid(
            "须注明当事人类型（公民 individual / 法人或者其他组织 organisation）/ party_type required",
            code="party_type_required",
        )
    return party_type


def check(case: EnforcementCase, action: str, *, today: dt.date, outstanding: Decimal | None = None) -> None:
    """:func:`cloud.workflow.procedure.check_step` on the case's state and records."""
    procedure.check_step(
        action,
        state=str(case.state),
        steps=case.steps or {},
        today=today,
        party_type=case.party_type,
        proposed=case.proposed_amount,
        outstanding=outstanding,
    )


def before(
    case: EnforcementCase,
    action: str,
    actor: Actor,
    duty: str,
    step: StepInput,
    *,
    reason: str | None,
    today: dt.date,
    outstanding: Decimal | None,
) -> dict[str, Any]:
    """Check the step against the procedure and return the values it sets on the case."""
    check(case, action, today=today, outstanding=outstanding)
    steps = dict(case.steps or {})
    values: dict[str, Any] = {}
    if action == "notify":
        party_type = _party_type(case, step)
        proposed = _require(step.proposed_decision, "须填写拟作出的行政处罚", "proposed penalty required", "proposal")
        served = step.on or today
        if served > today:
            raise Invalid("告知书送达日不能晚于今天 / the notice cannot be served in the future", code="future_date")
        window = procedure.statement_window(served)
        steps["notice"] = {
            **entered_by(actor, duty, proposed),
            "notified_on": served.isoformat(),
            "statement_due": window.due.isoformat(),
            "proposed_amount": format_yuan(step.amount) or None,
            "warnings": list(window.warnings),
        }
        values.update(
            party_type=party_type,
            proposed_amount=step.amount,
            notified_on=served,
            statement_due=window.due,
            steps=steps,
        )
    elif action == "request_hearing":
        steps["hearing_request"] = entered_by(actor, duty, reason or "当事人申请听证")
        steps["hearing_request"]["requested_on"] = (step.on or today).isoformat()
        values["steps"] = steps
    elif action == "submit_legal_review":
        review = compute_deadline("legal_review", today)
        steps["legal_review"] = {
            "submitted_on": today.isoformat(),
            "due": review.due.isoformat(),
            "submitted_by": actor.username,
            "warnings": list(review.warnings),
        }
        values.update(legal_review_due=review.due, steps=steps)
    elif action == "pass_review":
        steps["legal_review"] = {**steps.get("legal_review", {}), "opinion": entered_by(actor, duty, reason or "")}
        values["steps"] = steps
    elif action == "return_for_investigation":
        steps.pop("legal_review", None)
        steps.setdefault("returns", []).append(entered_by(actor, duty, reason or ""))
        values.update(steps=steps, legal_review_due=None)
    elif action == "collective_discussion":
        minimum = procedure.penalty_rules().collective_discussion.min_participants
        people = [p.strip() for p in step.participants if p.strip()]
        if len(set(people)) < minimum:
            raise Invalid(
                f"集体讨论须至少 {minimum} 名负责人参加并记录姓名 / at least {minimum} named participants",
                code="participants_required",
            )
        steps["discussion"] = {**entered_by(actor, duty, reason or ""), "participants": people}
        steps["discussion"]["held_on"] = (step.on or today).isoformat()
        values["steps"] = steps
    elif action == "decide":
        text = _require(step.decision, "处理决定内容不能为空", "the decision text is required", "decision_required")
        values.update(decision=text.strip(), penalty_amount=step.amount, decided_on=today)
        steps["decision"] = entered_by(actor, duty, text.strip())
        values["steps"] = steps
    elif action in ("serve", "on_the_spot"):
        if action == "on_the_spot":
            party_type = _party_type(case, step)
            procedure.check_on_the_spot(party_type, step.amount)  # type: ignore[arg-type]
            text = _require(step.decision, "须填写当场处罚内容", "the decision text is required", "decision_required")
            values.update(
                procedure="simplified",
                party_type=party_type,
                decision=text.strip(),
                penalty_amount=step.amount,
                decided_on=today,
                opened_on=today,
            )
            steps["decision"] = entered_by(actor, duty, text.strip())
        served = step.on or today
        if served > today:
            raise Invalid("送达日不能晚于今天 / service cannot be in the future", code="future_date")
        amount = step.amount if action == "on_the_spot" else case.penalty_amount
        due = compute_deadline("payment", served) if amount else None
        steps["service"] = {
            **entered_by(actor, duty, step.method or ("direct" if action == "on_the_spot" else "")),
            "served_on": served.isoformat(),
            "receiver": step.receiver or "",
            "payment_due": due.due.isoformat() if due else None,
            "warnings": list(due.warnings) if due else [],
        }
        if action == "serve":
            _require(step.method, "须注明送达方式", "the service method is required", "method_required")
        values.update(served_on=served, payment_due=due.due if due else None, steps=steps)
    return values


# ------------------------------------------------------------------------------------------ documents
def _common(session: Session, case: EnforcementCase) -> dict[str, Any]:
    from cloud.workflow.inspection import party_of

    party, _ = party_of(session, case.subject_id, None, fallback=case.party_name or "")
    return {"agency": workflow_rules().bureau.agency, "case_no": case.case_no, "party": party}


def _lines(*pairs: tuple[str, str | None]) -> list[Line]:
    return [Line(label=label, value=value or "") for label, value in pairs]


def _signed(e: dict[str, Any] | None) -> str:
    """``text（name，date）``: an opinion as entered, with who entered it and when."""
    if not e:
        return ""
    at = dt.datetime.fromisoformat(e["at"]).astimezone(paperwork.BEIJING).date().isoformat()
    return f"{e['text']}（{e['name']}，{at}）"


def _make(
    session: Session,
    kind: type[ProcedureDocument],
    base: dict[str, Any],
    *,
    lines: list[Line],
    signatures: list[str],
    paragraphs: list[str] | None = None,
) -> ProcedureDocument:
    """A step's document with the next number of its kind (this year's series)."""
    doc_no = paperwork.next_doc_no(session, kind.template, paperwork.today().year)
    return kind(doc_no=doc_no, **base, lines=lines, paragraphs=paragraphs or [], signatures=signatures)


def _document(session: Session, case: EnforcementCase, action: str) -> ProcedureDocument | None:
    s = case.steps or {}
    base = _common(session, case)
    rules = workflow_rules().bureau
    remedy = (
        f"如不服本决定，可以在收到本决定书之日起六十日内向{rules.reconsideration_body}申请行政复议，"
        f"或者在六个月内依法向{rules.court}提起行政诉讼。"
        if rules.reconsideration_body and rules.court
        else "如不服本决定，可以依法申请行政复议或者提起行政诉讼。"
    )
    amount = format_yuan(case.penalty_amount)
    if action == "notify":
        n = s["notice"]
        return _make(
            session,
            PenaltyNotice,
            base,
            lines=_lines(
                ("拟作出的行政处罚", n["text"]),
                ("拟罚款金额（元）", n.get("proposed_amount") or "无"),
                ("告知书送达日期", n["notified_on"]),
                ("陈述、申辩、听证申请截止日", paperwork.due_text(n["statement_due"], n.get("warnings"))),
            ),
            paragraphs=[
                RIGHTS,
                f"请于 {paperwork.due_text(n['statement_due'], n.get('warnings'))} 前"
                f"（{procedure.statement_window_days()} 个工作日内）向本机关提出；"
                "逾期未提出的，视为放弃上述权利。",
                *n.get("warnings", []),
            ],
            signatures=["当事人（签收）"],
        )
    if action == "pass_review":
        r = s["legal_review"]
        return _make(
            session,
            LegalReviewOpinion,
            base,
            lines=_lines(
                ("提交审核日期", r["submitted_on"]),
                ("审核期限", paperwork.due_text(r["due"], r.get("warnings"))),
                ("法制审核意见", _signed(r.get("opinion"))),
            ),
            signatures=["法制审核人员（签名）"],
        )
    if action == "collective_discussion":
        d = s["discussion"]
        return _make(
            session,
            DiscussionRecord,
            base,
            lines=_lines(
                ("讨论日期", d["held_on"]),
                ("参加人员", "、".join(d["participants"])),
                ("主持人", d["name"]),
                ("讨论结论", _signed(d)),
            ),
            signatures=["主持人（签名）", "记录人（签名）"],
        )
    if action == "decide":
        return _make(
            session,
            PenaltyDecision,
            base,
            lines=_lines(
                ("违法事实", case.summary),
                ("处罚依据", "；".join(case.legal_basis)),
                ("行政处罚决定", case.decision),
                ("罚没款金额（元）", amount or "无"),
                ("法制审核意见", _signed(s.get("legal_review", {}).get("opinion"))),
                ("集体讨论结论", _signed(s.get("discussion"))),
                ("决定人", s.get("decision", {}).get("name")),
            ),
            paragraphs=[
                "罚款自收到本决定书之日起十五日内缴纳；到期不缴纳的，每日按罚款数额的百分之三加处罚款，"
                "加处罚款的数额不超出罚款的数额。",
                remedy,
            ],
            signatures=[],
        )
    if action in ("serve", "on_the_spot"):
        v = s["service"]
        if action == "on_the_spot":
            return _make(
                session,
                OnTheSpotDecision,
                base,
                lines=_lines(
                    ("违法事实", case.summary),
                    ("处罚依据", "；".join(case.legal_basis)),
                    ("行政处罚决定", case.decision),
                    ("罚款金额（元）", amount or "无（警告）"),
                    ("缴款期限", paperwork.due_text(v.get("payment_due"), v.get("warnings")) or "无"),
                    ("执法人员", v["name"]),
                ),
                paragraphs=[RIGHTS, remedy],
                signatures=["执法人员（签名）", "当事人（签收）"],
            )
        return _make(
            session,
            ServiceReceipt,
            base,
            lines=_lines(
                ("送达文书", "行政处罚决定书"),
                ("送达日期", v["served_on"]),
                ("送达方式", SERVICE_METHODS.get(v["text"], v["text"])),
                ("受送达人", v.get("receiver")),
                ("缴款期限", paperwork.due_text(v.get("payment_due"), v.get("warnings")) or "无"),
                ("送达人", v["name"]),
            ),
            signatures=["受送达人（签收）", "送达人（签名）"],
        )
    return None


SERVICE_METHODS = {"direct": "直接送达", "post": "邮寄送达", "electronic": "电子送达", "notice": "公告送达"}


def store(
    session: Session, settings: Settings, case: EnforcementCase, data: ProcedureDocument, actor: Actor
) -> DocumentRecord:
    doc = paperwork.store_document(session, settings, data, actor, case_id=case.id, clue_id=case.clue_id)
    paperwork.sign(session, settings, doc, actor, role=data.title)
    return doc


def _publication_clock(session: Session, case: EnforcementCase, actor: Actor, decided_on: dt.date) -> None:
    """An ordinary-procedure decision must be published (``penalty_publication``, 20 working days): the
    supervision monitor follows ``case.decided`` until ``case.published`` and raises a clue when it runs out."""
    due = compute_deadline("penalty_publication", decided_on)
    payload = {
        "case_no": case.case_no,
        "clue_id": case.clue_id,
        "decided_on": decided_on.isoformat(),
        "publication_due": due.due.isoformat(),
        "warnings": list(due.warnings),
    }
    record(session, actor, "case.decided", "case", case.id or 0, payload)


def after(session: Session, settings: Settings | None, case: EnforcementCase, action: str, actor: Actor) -> None:
    """Generate and sign the step's document, and journal the clock the step started."""
    clocks = {
        "notify": ("case.notified", {"statement_due": case.statement_due}),
        "submit_legal_review": ("case.review_submitted", {"legal_review_due": case.legal_review_due}),
        "serve": ("case.served", {"payment_due": case.payment_due}),
        "on_the_spot": ("case.served", {"payment_due": case.payment_due}),
    }
    if action == "decide" and case.decided_on is not None:
        _publication_clock(session, case, actor, case.decided_on)
    if action in clocks:
        event, dates = clocks[action]
        record(
            session,
            actor,
            event,
            "case",
            case.id or 0,
            {
                "case_no": case.case_no,
                "clue_id": case.clue_id,
                **{k: v.isoformat() if v else None for k, v in dates.items()},
            },
        )
    if settings is None:
        return
    data = _document(session, case, action)
    if data is not None:
        store(session, settings, case, data, actor)


# ------------------------------------------------------------------------------------------ records between steps
def add_statement(
    case: EnforcementCase, actor: Actor, *, kind: str, content: str, received_on: dt.date
) -> dict[str, Any]:
    """A statement, defence or written waiver received from the party while the window is open."""
    if str(case.state) != "notified":
        raise Conflict("只有在告知后、陈述申辩期内才能登记陈述申辩 / not in the statement window", code="not_notified")
    row = {**entered_by(actor, "enforcement_officer", content), "kind": kind, "received_on": received_on.isoformat()}
    steps = dict(case.steps or {})
    steps["statements"] = [*steps.get("statements", []), row]
    case.steps = steps
    return row


def add_hearing_notice(
    case: EnforcementCase, actor: Actor, *, hearing_on: dt.date, place: str, host: str, notified_on: dt.date
) -> dict[str, Any]:
    if str(case.state) != "hearing":
        raise Conflict("案件不在听证程序中 / the case is not in the hearing step", code="not_hearing")
    days = procedure.penalty_rules().hearing.notice_days_before
    if hearing_on < notified_on + dt.timedelta(days=days):
        raise Invalid(
            f"听证通知书应在举行听证的 {days} 日前送达（{notified_on.isoformat()} 送达，最早 "
            f"{(notified_on + dt.timedelta(days=days)).isoformat()} 举行）/ the notice must reach the party "
            f"{days} days before the hearing",
            code="hearing_notice_too_late",
        )
    row = {
        **entered_by(actor, "legal_reviewer", place),
        "hearing_on": hearing_on.isoformat(),
        "notified_on": notified_on.isoformat(),
        "host": host,
    }
    steps = dict(case.steps or {})
    steps["hearing_notice"] = row
    case.steps = steps
    return row


def add_hearing_record(
    case: EnforcementCase, actor: Actor, *, held_on: dt.date, participants: list[str], summary: str
) -> dict[str, Any]:
    notice = (case.steps or {}).get("hearing_notice")
    if str(case.state) != "hearing" or not notice:
        raise Conflict("没有已送达的听证通知书，不能制作听证笔录 / no hearing notice", code="hearing_notice_missing")
    if held_on < dt.date.fromisoformat(notice["hearing_on"]):
        raise Invalid("听证举行日早于通知的听证日期 / the hearing cannot precede its notice date", code="too_early")
    row = {**entered_by(actor, "legal_reviewer", summary), "held_on": held_on.isoformat(), "participants": participants}
    steps = dict(case.steps or {})
    steps["hearing_record"] = row
    case.steps = steps
    return row


def hearing_documents(
    session: Session, settings: Settings, case: EnforcementCase, actor: Actor, which: str
) -> DocumentRecord:
    s = case.steps or {}
    base = _common(session, case)
    data: ProcedureDocument
    if which == "notice":
        n = s["hearing_notice"]
        data = _make(
            session,
            HearingNotice,
            base,
            lines=_lines(
                ("听证时间", n["hearing_on"]),
                ("听证地点", n["text"]),
                ("听证主持人", n["host"]),
                ("通知送达日期", n["notified_on"]),
            ),
            paragraphs=["当事人可以亲自参加听证，也可以委托一至二人代理；无正当理由拒不出席的，视为放弃听证权利。"],
            signatures=["当事人（签收）"],
        )
    else:
        r = s["hearing_record"]
        data = _make(
            session,
            HearingRecord,
            base,
            lines=_lines(
                ("听证日期", r["held_on"]),
                ("参加人员", "、".join(r["participants"])),
                ("听证记录", r["text"]),
                ("记录人", r["name"]),
            ),
            signatures=["听证主持人（签名）", "当事人（签名）", "记录人（签名）"],
        )
    return store(session, settings, case, data, actor)
