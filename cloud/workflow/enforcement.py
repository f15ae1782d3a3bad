"""Enforcement cases (执法, standard §8.5.2): case-source registration, statutory clocks, the steps of
:data:`~cloud.workflow.states.CASE_MACHINE` with online approval, the 立案审批表 signed by the approving head,
payments and penalty publication. Outcomes flow back to the clue (:mod:`cloud.workflow.feedback`).

Clocks (``cloud/rules/deadlines.toml``): ``report_verify`` runs from the day the clue was received (15 working days
on the official holiday calendar, +15 with the head's approval); ``case_decision`` from the day the case is opened
(90 days, +30 with approval, further only by collective decision). Every due date carries the calendar's
warnings, which the API shows next to it (a year without official holiday data falls back to weekdays).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from cloud.core.config import Settings
from cloud.core.db import utcnow
from cloud.documents.models import CaseApproval
from cloud.workflow import feedback, paperwork, staffing
from cloud.workflow.config import workflow_rules
from cloud.workflow.deadlines import (
    DeadlineError,
    Extension,
    ExtensionKind,
    Pause,
    compute_deadline,
    deadline_status,
    load_deadline_rules,
    remaining_working_days,
)
from cloud.workflow.models import CasePayment, DocumentRecord, EnforcementCase, PenaltyPublication
from cloud.workflow.service import Actor, Conflict, Forbidden, Invalid, NotFound, apply_transition, pick_role, record
from cloud.workflow.states import CASE_MACHINE, CaseState
from cloud.workflow.states import Role as Duty

OFFICER_ACTIONS = {"start_investigation", "submit_legal_review", "request_hearing", "record_payment"}
FINISHING = {"refuse_opening": "不予立案", "close": "结案", "terminate": "终止案件"}


def get_case(session: Session, case_id: int) -> EnforcementCase:
    case = session.get(EnforcementCase, case_id)
    if case is None:
        raise NotFound(f"案件 {case_id} 不存在 / case not found")
    return case


def _extensions(rows: list[dict[str, Any]]) -> list[Extension]:
    return [
        Extension(ExtensionKind(r["kind"]), r.get("days"), r.get("approved_by", ""), r.get("reason", "")) for r in rows
    ]


def _pauses(rows: list[dict[str, Any]]) -> list[Pause]:
    return [
        Pause(dt.date.fromisoformat(r["start"]), dt.date.fromisoformat(r["end"]) if r.get("end") else None, r["reason"])
        for r in rows
    ]


def compute_clocks(case: EnforcementCase, as_of: dt.date | None = None) -> list[dict[str, Any]]:
    """The case's statutory clocks with due date, status, working days left and calendar warnings."""
    as_of = as_of or paperwork.today()
    out: list[dict[str, Any]] = []
    clocks: list[tuple[str, str, dt.date | dt.datetime, list[dict[str, Any]], list[dict[str, Any]], bool]] = [
        (
            "verify",
            "report_verify",
            case.received_at,
            case.verify_extensions,
            case.verify_pauses,
            case.state == CaseState.REGISTERED,
        ),
    ]
    if case.opened_on is not None:
        clocks.append(
            (
                "decision",
                "case_decision",
                case.opened_on,
                case.decision_extensions,
                case.decision_pauses,
                case.state not in (CaseState.DECIDED, CaseState.PAID, CaseState.CLOSED, CaseState.TERMINATED),
            )
        )
    for clock, deadline_id, start, exts, pauses, running in clocks:
        d = compute_deadline(deadline_id, start, extensions=_extensions(exts), pauses=_pauses(pauses), as_of=as_of)
        out.append(
            {
                "clock": clock,
                "deadline_id": deadline_id,
                "name": d.name,
                "start": d.start.isoformat(),
                "due": d.due.isoformat(),
                "unit": d.unit.value,
                "total_days": d.total_days,
                "extension_days": d.extension_days,
                "running": running,
                "status": deadline_status(d, as_of).value if running else "stopped",
                "remaining_working_days": remaining_working_days(d, as_of).value if running else None,
                "basis": d.basis,
                "warnings": list(d.warnings),
            }
        )
    return out


def _refresh_dues(case: EnforcementCase) -> None:
    clocks = {c["clock"]: c for c in compute_clocks(case)}
    case.verify_due = dt.date.fromisoformat(clocks["verify"]["due"])
    if "decision" in clocks:
        case.decision_due = dt.date.fromisoformat(clocks["decision"]["due"])
    case.warnings = sorted({w for c in clocks.values() for w in c["warnings"]})


def register_case(
    session: Session,
    settings: Settings | None,
    actor: Actor,
    *,
    source: str,
    clue_id: int | None,
    task_id: int | None,
    subject_id: int | None,
    party_name: str | None,
    department_id: int | None,
    summary: str,
    legal_basis: list[str],
    received_at: dt.datetime,
    officers: list[int] | None = None,
) -> EnforcementCase:
    """Register a case source (案源登记) with ≥2 officers and the verification clock running."""
    members = staffing.pick(
        session,
        duty=Duty.ENFORCEMENT_OFFICER,
        count=workflow_rules().dispatch.officers_per_case,
        department_id=department_id,
        subject_id=subject_id,
        explicit=officers,
    )
    verify = compute_deadline("report_verify", received_at)
    case = EnforcementCase(
        case_no="",
        source=source,
        clue_id=clue_id,
        task_id=task_id,
        subject_id=subject_id,
        party_name=party_name,
        department_id=department_id,
        summary=summary[:4000],
        legal_basis=legal_basis,
        received_at=received_at,
        verify_due=verify.due,
        warnings=list(verify.warnings),
        created_by=actor.username,
    )
    session.add(case)
    session.flush()
    case.case_no = f"AY{paperwork.today().year}-{case.id:06d}"
    session.add(case)
    staffing.assign(session, "case", case.id or 0, members)
    record(
        session,
        actor,
        "case.registered",
        "case",
        case.id or 0,
        {
            "case_no": case.case_no,
            "source": source,
            "clue_id": clue_id,
            "task_id": task_id,
            "subject_id": subject_id,
            "department_id": department_id,
            "verify_due": verify.due.isoformat(),
            "warnings": list(verify.warnings),
            "officers": [m.actor.user_id for m in members],
            "officer_names": [m.actor.name for m in members],
        },
    )
    return case


def _approval_document(
    session: Session, settings: Settings, case: EnforcementCase, actor: Actor, opinion: str, legal_basis: list[str]
) -> DocumentRecord:
    from cloud.workflow.inspection import officers_of, party_of

    party, _ = party_of(session, case.subject_id, None, fallback=case.party_name or "")
    officers = [o for _, o in officers_of(session, "case", case.id or 0)]
    source = {"clue": "投诉举报、移送交办线索", "inspection": "监督检查发现", "manual": "其他"}.get(
        case.source, case.source
    )
    data = CaseApproval(
        doc_no=paperwork.next_doc_no(session, "case_approval", paperwork.today().year),
        agency=workflow_rules().bureau.agency,
        source=source,
        party=party,
        discovered_on=case.received_at.astimezone(paperwork.BEIJING).date(),
        summary=case.summary or "（见案源登记）",
        legal_basis=legal_basis or case.legal_basis or ["待调查确定"],
        handlers=officers,
        handler_opinion="建议立案调查",
        department_opinion="同意",
        head_opinion=opinion or "同意立案",
    )
    return paperwork.store_document(session, settings, data, actor, case_id=case.id, clue_id=case.clue_id)


def case_action(
    session: Session,
    settings: Settings | None,
    case: EnforcementCase,
    action: str,
    actor: Actor,
    *,
    reason: str | None = None,
    role: str | None = None,
    expected_version: int | None = None,
    opinion: str = "",
    legal_basis: list[str] | None = None,
    decision: str | None = None,
    penalty_amount: float | None = None,
) -> EnforcementCase:
    duty = pick_role(CASE_MACHINE, str(case.state), action, actor, role)
    if duty is Duty.ENFORCEMENT_OFFICER and action in OFFICER_ACTIONS:
        if actor.user_id not in staffing.assignees(session, "case", case.id or 0, open_only=True):
            raise Forbidden(f"{actor.name} 不是案件 {case.case_no} 的承办人 / not a handler of this case")
    values: dict[str, Any] = {}
    today = paperwork.today()
    if action == "approve_opening":
        values["opened_on"] = today
        if legal_basis:
            values["legal_basis"] = legal_basis
    elif action == "decide":
        if not decision or not decision.strip():
            raise Invalid("处理决定内容不能为空 / the decision text is required", code="decision_required")
        values.update(decision=decision.strip(), penalty_amount=penalty_amount, decided_on=today)
    elif action in ("close", "terminate", "refuse_opening"):
        values.update(closed_at=utcnow(), outcome=(reason or decision or FINISHING[action])[:2000])
    apply_transition(
        session,
        CASE_MACHINE,
        case,
        action,
        actor,
        reason=reason,
        role=duty.value,
        expected_version=expected_version,
        values=values,
        payload={"case_no": case.case_no, "clue_id": case.clue_id, "opinion": opinion or None},
    )
    if action == "approve_opening":
        assert settings is not None, "approving a case generates its approval form"
        _refresh_dues(case)
        session.add(case)
        doc = _approval_document(session, settings, case, actor, opinion, legal_basis or [])
        paperwork.sign(session, settings, doc, actor, role="部门负责人（批准立案）")
        record(
            session,
            actor,
            "case.approved",
            "case",
            case.id or 0,
            {
                "decision_due": case.decision_due.isoformat() if case.decision_due else None,
                "warnings": case.warnings,
                "document_id": doc.id,
            },
        )
        feedback.start_clue(session, case.clue_id, actor, because=f"case {case.case_no} opened")
    elif action == "decide":
        session.add(case)
    if action in FINISHING:
        staffing.release(session, "case", case.id or 0)
        outcome = f"案件 {case.case_no} {FINISHING[action]}：{case.outcome or ''}".rstrip("：")
        if action == "close" and case.decision:
            outcome = f"案件 {case.case_no} 结案：{case.decision}" + (
                f"（罚没款 {case.penalty_amount:g} 元已缴清）" if case.penalty_amount else ""
            )
        feedback.outcome_reached(session, case.clue_id, outcome, source=f"case:{case.id}")
        if case.task_id is not None:
            from cloud.workflow.models import InspectionTask

            task = session.get(InspectionTask, case.task_id)
            if task is not None:
                feedback.outcome_reached(session, task.clue_id, outcome, source=f"case:{case.id}")
    session.flush()
    return case


def extend(
    session: Session, case: EnforcementCase, actor: Actor, *, clock: str, kind: str, days: int | None, reason: str
) -> EnforcementCase:
    """Approve an extension of a clock (the approver named in deadlines.toml; collective decisions: bureau head)."""
    deadline_id = {"verify": "report_verify", "decision": "case_decision"}.get(clock)
    if deadline_id is None:
        raise Invalid(f"未知期限 {clock} / unknown clock (verify | decision)")
    spec = load_deadline_rules().spec(deadline_id)
    approver = Duty(spec.extension_approver or "bureau_head")
    if approver not in actor.duties:
        raise Forbidden(f"延长{spec.name}期限须经{approver.value}批准 / extension needs {approver.value}")
    if not reason or not reason.strip():
        raise Invalid("延期必须填写理由 / an extension needs a reason", code="reason_required")
    if clock == "verify" and case.state != CaseState.REGISTERED:
        raise Conflict("案件已作出立案决定，核查期限不能再延长 / verification is over")
    if clock == "decision" and (case.opened_on is None or case.decided_on is not None or case.closed_at is not None):
        raise Conflict("案件未立案或已作出决定，处理期限不能延长 / decision clock not running")
    rows = list(case.verify_extensions if clock == "verify" else case.decision_extensions)
    rows.append(
        {
            "kind": kind,
            "days": days,
            "approved_by": actor.username,
            "reason": reason.strip(),
            "at": utcnow().isoformat(),
        }
    )
    start = case.received_at if clock == "verify" else case.opened_on
    assert start is not None
    try:
        d = compute_deadline(deadline_id, start, extensions=_extensions(rows))
    except DeadlineError as exc:
        raise Conflict(str(exc), code="extension_not_allowed") from None
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    if clock == "verify":
        case.verify_extensions = rows
    else:
        case.decision_extensions = rows
    _refresh_dues(case)
    session.add(case)
    session.flush()
    record(
        session,
        actor,
        "case.extended",
        "case",
        case.id or 0,
        {
            "clock": clock,
            "kind": kind,
            "days": d.extension_days,
            "due": d.due.isoformat(),
            "reason": reason.strip(),
            "warnings": list(d.warnings),
        },
    )
    return case


def add_payment(
    session: Session,
    case: EnforcementCase,
    actor: Actor,
    *,
    amount: float,
    paid_on: dt.date,
    receipt_no: str,
    method: str,
) -> CasePayment:
    if case.state != CaseState.DECIDED:
        raise Conflict(f"案件处于“{CASE_MACHINE.state_label(case.state)}”状态，不能登记缴款 / not awaiting payment")
    if not case.penalty_amount:
        raise Conflict("处理决定没有罚没款 / the decision has no fine")
    payment = CasePayment(
        case_id=case.id or 0,
        amount=amount,
        paid_on=paid_on,
        receipt_no=receipt_no,
        method=method,
        recorded_by=actor.username,
    )
    session.add(payment)
    session.flush()
    total = session.exec(
        select(func.coalesce(func.sum(CasePayment.amount), 0)).where(CasePayment.case_id == case.id)
    ).one()
    record(
        session,
        actor,
        "case.payment",
        "case",
        case.id or 0,
        {
            "amount": amount,
            "paid_on": paid_on.isoformat(),
            "receipt_no": receipt_no,
            "method": method,
            "total_paid": float(total),
            "penalty_amount": case.penalty_amount,
        },
    )
    if float(total) + 1e-9 >= case.penalty_amount:
        duty = "enforcement_officer" if Duty.ENFORCEMENT_OFFICER in actor.duties else None
        if duty is None:
            from cloud.workflow.service import SYSTEM

            apply_transition(
                session, CASE_MACHINE, case, "record_payment", SYSTEM, payload={"total_paid": float(total)}
            )
        else:
            case_action(session, None, case, "record_payment", actor, role=duty)
    return payment


def publish(
    session: Session,
    case: EnforcementCase,
    actor: Actor,
    *,
    platform: str,
    url: str | None,
    published_on: dt.date,
    content: str,
) -> PenaltyPublication:
    if case.decided_on is None:
        raise Conflict("案件尚未作出处罚决定，不能公示 / no decision to publish")
    due = compute_deadline("penalty_publication", case.decided_on).due
    row = PenaltyPublication(
        case_id=case.id or 0,
        platform=platform,
        url=url,
        published_on=published_on,
        due=due,
        on_time=published_on <= due,
        content=content,
        recorded_by=actor.username,
    )
    session.add(row)
    session.flush()
    record(
        session,
        actor,
        "case.published",
        "case",
        case.id or 0,
        {
            "platform": platform,
            "url": url,
            "published_on": published_on.isoformat(),
            "due": due.isoformat(),
            "on_time": row.on_time,
        },
    )
    return row


def payments(session: Session, case_id: int) -> list[CasePayment]:
    return list(session.exec(select(CasePayment).where(CasePayment.case_id == case_id).order_by(col(CasePayment.id))))


def publications(session: Session, case_id: int) -> list[PenaltyPublication]:
    return list(session.exec(select(PenaltyPublication).where(PenaltyPublication.case_id == case_id)))


__all__ = ["add_payment", "case_action", "compute_clocks", "extend", "get_case", "publish", "register_case"]
