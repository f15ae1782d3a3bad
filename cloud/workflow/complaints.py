"""Complaint handling (投诉) and reporter feedback (举报) with their statutory clocks.

* Acceptance: within ``complaint_accept`` (7 working days of receipt) the bureau accepts or refuses a complaint;
  a refusal names one of the grounds of ``cloud/rules/complaints.toml``. The complainant gets a 投诉处理告知书
  (a signed document) and, when the work order has a phone number, a queued message
  (:class:`~cloud.workflow.models.ComplainantMessage`). Journal: ``complaint.decided`` (``to`` accepted/refused).
* Mediation: from acceptance, ``mediation`` (45 working days); it ends with an outcome of ``complaints.toml
  [mediation_outcomes]`` (``complaint.mediation_ended``).
* Reporter feedback: when the open/not-open decision on a named report is made, ``reporter_feedback`` (5 working
  days) starts (``report.feedback_due``) until the feedback is recorded (``report.feedback_sent``).

The supervision monitor follows these events (``supervision.toml``): a clock that runs out becomes a supervision
clue (督办线索). Personal data never enters the journal or the document (the complainant is "工单 N").
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any

from pydantic import Field
from sqlmodel import Session, col, select

from cloud.core.config import Settings
from cloud.documents.models import Party
from cloud.documents.procedure import ComplaintNotice, Line
from cloud.rules.loader import RuleModel, load_model, rules_path
from cloud.workflow import paperwork
from cloud.workflow.config import workflow_rules
from cloud.workflow.deadlines import compute_deadline, period_days
from cloud.workflow.models import ComplainantMessage, DocumentRecord, WorkOrder
from cloud.workflow.service import Actor, Conflict, Invalid, NotFound, record

__all__ = [
    "ComplaintRules",
    "complaint_rules",
    "decide_acceptance",
    "end_mediation",
    "feedback_due_for_clue",
    "get_order",
    "send_feedback",
]


class Ground(RuleModel):
    label: str = Field(min_length=2, max_length=300)
    basis: str = Field(min_length=2, max_length=300)


class ComplaintRules(RuleModel):
    version: str
    basis: str
    refusal_grounds: dict[str, Ground] = Field(min_length=1)
    mediation_outcomes: dict[str, str] = Field(min_length=1)


@cache
def complaint_rules() -> ComplaintRules:
    return load_model(ComplaintRules, rules_path("complaints.toml"))


def get_order(session: Session, order_id: int) -> WorkOrder:
    order = session.get(WorkOrder, order_id)
    if order is None:
        raise NotFound(f"工单 {order_id} 不存在 / work order not found")
    return order


def _ref(order: WorkOrder) -> str:
    return f"工单 {order.external_no or order.id}"


def _notify_complainant(session: Session, order: WorkOrder, text: str) -> ComplainantMessage | None:
    if order.anonymous or not order.complainant_phone:
        return None
    message = ComplainantMessage(work_order_id=order.id or 0, to=order.complainant_phone, text=text[:1000])
    session.add(message)
    session.flush()
    return message


def _document(
    session: Session, settings: Settings, order: WorkOrder, actor: Actor, lines: list[tuple[str, str]], text: str
) -> DocumentRecord:
    data = ComplaintNotice(
        doc_no=paperwork.next_doc_no(session, "complaint_notice", paperwork.today().year),
        agency=workflow_rules().bureau.agency,
        party=Party(name=f"投诉人（{_ref(order)}）", address="见工单登记信息"),
        lines=[Line(label=k, value=v) for k, v in lines],
        paragraphs=[text],
        signatures=[],
    )
    doc = paperwork.store_document(session, settings, data, actor, clue_id=order.clue_id)
    paperwork.sign(session, settings, doc, actor, role="受理人员")
    return doc


def decide_acceptance(
    session: Session,
    settings: Settings,
    order: WorkOrder,
    actor: Actor,
    *,
    decision: str,
    ground: str | None,
    note: str,
    on: dt.date | None = None,
) -> dict[str, Any]:
    """Accept or refuse a complaint (with a ground from complaints.toml when refusing) and tell the complainant."""
    if order.kind != "complaint":
        raise Conflict("只有投诉需要作出受理决定 / only complaints are accepted or refused", code="not_a_complaint")
    if order.acceptance:
        raise Conflict(f"{_ref(order)} 已于 {order.decided_on} 作出受理决定 / already decided", code="already_decided")
    rules = complaint_rules()
    today = on or paperwork.today()
    received = order.received_at.astimezone(paperwork.BEIJING).date()
    if today < received or today > paperwork.today():
        raise Invalid("决定日期须在收到工单之后且不晚于今天 / decision date out of range", code="bad_date")
    if decision == "refused":
        if ground not in rules.refusal_grounds:
            raise Invalid(
                f"不予受理须说明法定理由之一：{'、'.join(rules.refusal_grounds)} / a refusal needs a ground",
                code="ground_required",
                extra={"grounds": sorted(rules.refusal_grounds)},
            )
    elif decision != "accepted":
        raise Invalid("decision: accepted | refused")
    on_time = order.accept_due is None or today <= order.accept_due
    order.acceptance = decision
    order.decided_on = today
    order.refusal_ground = ground if decision == "refused" else None
    order.decision_note = note.strip()[:2000]
    order.decided_by = actor.username
    lines = [("被投诉人", order.respondent_name or ""), ("收到日期", received.isoformat())]
    if decision == "accepted":
        mediation = compute_deadline("mediation", today)
        order.mediation_due = mediation.due
        lines += [
            ("处理决定", "予以受理"),
            ("受理日期", today.isoformat()),
            ("调解期限", paperwork.due_text(mediation.due, mediation.warnings)),
        ]
        text = (
            f"你于 {received.isoformat()} 提出的投诉，本机关已于 {today.isoformat()} 决定受理，将组织调解；"
            f"自受理之日起 {period_days('mediation')} 个工作日内未能达成调解协议的，终止调解。"
        )
        warnings = list(mediation.warnings)
    else:
        g = rules.refusal_grounds[ground or ""]
        lines += [("处理决定", "不予受理"), ("不予受理理由", g.label), ("依据", g.basis)]
        text = f"你于 {received.isoformat()} 提出的投诉，本机关决定不予受理。理由：{g.label}。"
        warnings = []
    if order.decision_note:
        lines.append(("说明", order.decision_note))
    doc = _document(session, settings, order, actor, lines, text + "".join(warnings))
    message = _notify_complainant(session, order, f"【{workflow_rules().bureau.agency}】{text}")
    session.add(order)
    session.flush()
    payload = {
        "to": decision,
        "ground": order.refusal_ground,
        "on_time": on_time,
        "clue_id": order.clue_id,
        "document_id": doc.id,
        "message_queued": message is not None,
    }
    record(session, actor, "complaint.decided", "work_order", order.id or 0, payload)
    if decision == "accepted":
        record(
            session,
            actor,
            "complaint.accepted",
            "work_order",
            order.id or 0,
            {
                "clue_id": order.clue_id,
                "mediation_due": order.mediation_due.isoformat() if order.mediation_due else None,
            },
        )
    return {**payload, "mediation_due": order.mediation_due.isoformat() if order.mediation_due else None}


def end_mediation(
    session: Session, order: WorkOrder, actor: Actor, *, outcome: str, note: str, on: dt.date | None = None
) -> dict[str, Any]:
    rules = complaint_rules()
    if order.acceptance != "accepted":
        raise Conflict("投诉未受理，没有调解 / no mediation without acceptance", code="not_accepted")
    if order.mediation_outcome:
        raise Conflict(f"调解已于 {order.mediation_ended_on} 结束 / mediation already ended", code="mediation_ended")
    if outcome not in rules.mediation_outcomes:
        raise Invalid(f"调解结果须为：{'、'.join(rules.mediation_outcomes)} / unknown outcome", code="bad_outcome")
    day = on or paperwork.today()
    if outcome == "expired" and order.mediation_due and day <= order.mediation_due:
        raise Conflict(
            f"调解期限至 {order.mediation_due.isoformat()} 尚未届满 / the mediation period has not run out",
            code="mediation_running",
        )
    order.mediation_outcome = outcome
    order.mediation_ended_on = day
    order.decision_note = (order.decision_note + f"\n调解结果：{rules.mediation_outcomes[outcome]} {note}").strip()
    session.add(order)
    _notify_complainant(
        session, order, f"【{workflow_rules().bureau.agency}】你的投诉{rules.mediation_outcomes[outcome]}。"
    )
    session.flush()
    payload = {"to": outcome, "on": day.isoformat(), "clue_id": order.clue_id}
    record(session, actor, "complaint.mediation_ended", "work_order", order.id or 0, payload)
    return payload


def feedback_due_for_clue(
    session: Session, clue_id: int | None, actor: Actor, *, decided_on: dt.date, opened: bool
) -> None:
    """Start the reporter-feedback clock of every named report folded into ``clue_id``."""
    if clue_id is None:
        return
    from cloud.workflow.clues import ClueSource

    ids = [
        i for i in session.exec(select(ClueSource.work_order_id).where(ClueSource.clue_id == clue_id)) if i is not None
    ]
    if not ids:
        return
    for order in session.exec(select(WorkOrder).where(col(WorkOrder.id).in_(ids), WorkOrder.kind == "report")):
        if order.anonymous or order.feedback_due is not None:
            continue
        due = compute_deadline("reporter_feedback", decided_on)
        order.feedback_due = due.due
        session.add(order)
        record(
            session,
            actor,
            "report.feedback_due",
            "work_order",
            order.id or 0,
            {"clue_id": clue_id, "opened": opened, "feedback_due": due.due.isoformat(), "warnings": list(due.warnings)},
        )
    session.flush()


def send_feedback(session: Session, order: WorkOrder, actor: Actor, *, text: str) -> dict[str, Any]:
    if order.kind != "report" or order.feedback_due is None:
        raise Conflict("该工单没有待反馈的立案决定 / no feedback due", code="no_feedback_due")
    if order.feedback_sent_on is not None:
        raise Conflict("已反馈 / feedback already sent", code="feedback_sent")
    today = paperwork.today()
    order.feedback_sent_on = today
    session.add(order)
    message = _notify_complainant(session, order, f"【{workflow_rules().bureau.agency}】{text}")
    session.flush()
    payload = {
        "to": "sent",
        "on_time": today <= order.feedback_due,
        "message_queued": message is not None,
        "clue_id": order.clue_id,
    }
    record(session, actor, "report.feedback_sent", "work_order", order.id or 0, payload)
    return payload
