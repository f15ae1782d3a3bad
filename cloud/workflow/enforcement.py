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
from decimal import Decimal
from typing import Any

from sqlmodel import Session, col, select

from cloud.core.config import Settings
from cloud.core.db import utcnow
from cloud.documents.models import CaseApproval
from cloud.workflow import feedback, paperwork, penalty, procedure, staffing
from cloud.workflow.config import workflow_rules
from cloud.workflow.deadlines import (
    Deadline,
    DeadlineError,
    DeadlineSpec,
    Extension,
    ExtensionKind,
    Pause,
    compute_deadline,
    deadline_status,
    load_deadline_rules,
    remaining_working_days,
)
from cloud.workflow.models import CasePayment, DocumentRecord, EnforcementCase, PenaltyPublication
from cloud.workflow.money import format_yuan, to_yuan
from cloud.workflow.penalty import StepInput
from cloud.workflow.service import (
    Actor,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    apply_transition,
    from_transition_error,
    pick_role,
    record,
)
from cloud.workflow.states import CASE_MACHINE, CaseState, TransitionError
from cloud.workflow.states import Role as Duty

OFFICER_ACTIONS = {
    "start_investigation",
    "notify",
    "request_hearing",
    "submit_legal_review",
    "serve",
    "record_payment",
    "on_the_spot",
}
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
    """Stored pauses as engine pauses (the engine's ``reason`` is the pause kind: testing, appraisal...)."""
    return [
        Pause(
            dt.date.fromisoformat(r["start"]),
            dt.date.fromisoformat(r["end"]) if r.get("end") else None,
            r.get("kind") or r["reason"],
        )
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
    state = str(case.state)
    if case.notified_on is not None:
        clocks.append(("statement", "statement", case.notified_on, [], [], state == "notified"))
    review = (case.steps or {}).get("legal_review") or {}
    if review.get("submitted_on"):
        start_review = dt.date.fromisoformat(review["submitted_on"])
        clocks.append(("legal_review", "legal_review", start_review, [], [], state == "legal_review"))
    if case.served_on is not None and case.payment_due is not None:
        clocks.append(("payment", "payment", case.served_on, [], [], state == "served"))
    for m in case.measures or []:
        start_m = dt.date.fromisoformat(m["started_on"])
        exts_m = [{"kind": "approval", "days": None}] * int(m.get("extensions", 0))
        clocks.append((f"measure:{m['id']}", m["kind"], start_m, exts_m, [], not m.get("ended_on")))
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
                "paused_days": d.paused_days,
                "suspended": d.suspended,
                "running": running,
                "status": deadline_status(d, as_of).value if running else "stopped",
                "remaining_working_days": remaining_working_days(d, as_of).value if running else None,
                "basis": d.basis,
                "confidence": d.confidence,
                "certainty": "provisional" if d.warnings else "official",
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


OPENING_OPINIONS = {"enforcement_officer": "handler", "department_head": "department"}


def _approval_document(
    session: Session, settings: Settings, case: EnforcementCase, actor: Actor, opinion: str, legal_basis: list[str]
) -> DocumentRecord:
    """The 立案审批表 with the opinions as entered: each handler's, the department head's and the approver's,
    each followed by the name of the person who entered it and the date."""
    from cloud.workflow.inspection import officers_of, party_of

    party, _ = party_of(session, case.subject_id, None, fallback=case.party_name or "")
    officers = [o for _, o in officers_of(session, "case", case.id or 0)]
    source = {"clue": "投诉举报、移送交办线索", "inspection": "监督检查发现", "manual": "其他"}.get(
        case.source, case.source
    )
    opinions = (case.steps or {}).get("opinions", [])
    handler = "；".join(penalty._signed(o) for o in opinions if o["duty"] == "enforcement_officer")
    department = "；".join(penalty._signed(o) for o in opinions if o["duty"] == "department_head")
    head = penalty._signed(penalty.entered_by(actor, "bureau_head", opinion or "同意立案"))
    data = CaseApproval(
        doc_no=paperwork.next_doc_no(session, "case_approval", paperwork.today().year),
        agency=workflow_rules().bureau.agency,
        source=source,
        party=party,
        discovered_on=case.received_at.astimezone(paperwork.BEIJING).date(),
        summary=case.summary or "（见案源登记）",
        legal_basis=legal_basis or case.legal_basis or ["待调查确定"],
        handlers=officers,
        handler_opinion=handler,
        department_opinion=department,
        head_opinion=head,
    )
    return paperwork.store_document(session, settings, data, actor, case_id=case.id, clue_id=case.clue_id)


def add_opinion(
    session: Session, case: EnforcementCase, actor: Actor, *, opinion: str, role: str | None = None
) -> dict[str, Any]:
    """An opinion on opening the case (承办人意见 by a handler of the case, 承办机构负责人意见 by a department
    head), stored with who entered it; the 立案审批表 prints exactly these."""
    if case.state != CaseState.REGISTERED:
        raise Conflict("立案审批已完成，不能再填写立案意见 / the opening decision is made", code="opening_decided")
    text = opinion.strip()
    if not text:
        raise Invalid("意见不能为空 / the opinion is empty", code="opinion_required")
    duty = (
        Duty(role)
        if role
        else next((d for d in (Duty.ENFORCEMENT_OFFICER, Duty.DEPARTMENT_HEAD) if d in actor.duties), None)
    )
    if duty is None or duty not in actor.duties or duty.value not in OPENING_OPINIONS:
        raise Forbidden("立案意见由承办人或承办机构负责人填写 / opinions come from a handler or the department head")
    if duty is Duty.ENFORCEMENT_OFFICER and actor.user_id not in staffing.assignees(session, "case", case.id or 0):
        raise Forbidden(f"{actor.name} 不是案件 {case.case_no} 的承办人 / not a handler of this case")
    row = penalty.entered_by(actor, duty.value, text)
    steps = dict(case.steps or {})
    steps["opinions"] = [o for o in steps.get("opinions", []) if o["user"] != actor.username or o["duty"] != duty.value]
    steps["opinions"].append(row)
    case.steps = steps
    session.add(case)
    session.flush()
    record(session, actor, "case.opinion", "case", case.id or 0, {"duty": duty.value, "stage": "opening"})
    return row


def _opening_opinions_present(case: EnforcementCase) -> None:
    duties = {o["duty"] for o in (case.steps or {}).get("opinions", [])}
    missing = [
        label
        for duty, label in (("enforcement_officer", "承办人意见"), ("department_head", "承办机构负责人意见"))
        if duty not in duties
    ]
    if missing:
        raise Conflict(
            f"立案审批表缺少{'、'.join(missing)}，不能批准立案 / opinions missing before approval: {missing}",
            code="opinion_missing",
            extra={"missing": missing},
        )


def payment_rows(session: Session, case_id: int) -> list[tuple[Decimal, dt.date]]:
    return [(p.amount, p.paid_on) for p in payments(session, case_id)]


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
    step: StepInput | None = None,
) -> EnforcementCase:
    duty = pick_role(CASE_MACHINE, str(case.state), action, actor, role)
    if duty is Duty.ENFORCEMENT_OFFICER and action in OFFICER_ACTIONS:
        if actor.user_id not in staffing.assignees(session, "case", case.id or 0, open_only=True):
            raise Forbidden(f"{actor.name} 不是案件 {case.case_no} 的承办人 / not a handler of this case")
    step = step or StepInput()
    today = paperwork.today()
    outstanding = None
    if action == "close" and case.penalty_amount:
        outstanding = penalty.owed(case, payment_rows(session, case.id or 0), today)["outstanding"]
    try:  # order, duty and reason first (403 / 422 / 409), then what the procedure requires now (409)
        CASE_MACHINE.transition(case.state, action, duty, reason=reason)
    except TransitionError as exc:
        if exc.code == "invalid_transition" and action == "decide" and str(case.state) in procedure.PRE_REVIEW:
            penalty.check(case, action, today=today)
        raise from_transition_error(exc) from None
    values = penalty.before(case, action, actor, duty.value, step, reason=reason, today=today, outstanding=outstanding)
    if action == "approve_opening":
        _opening_opinions_present(case)
        values["opened_on"] = today
        if legal_basis:
            values["legal_basis"] = legal_basis
    elif action in ("close", "terminate", "refuse_opening"):
        values.update(closed_at=utcnow(), outcome=(reason or case.decision or FINISHING[action])[:2000])
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
        payload={
            "case_no": case.case_no,
            "clue_id": case.clue_id,
            "opinion": opinion or None,
            "amount": format_yuan(step.amount) or None,
        },
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
    if action in ("approve_opening", "refuse_opening"):  # named reporters are told within 5 working days
        from cloud.workflow.complaints import feedback_due_for_clue

        feedback_due_for_clue(session, case.clue_id, actor, decided_on=today, opened=action == "approve_opening")
    else:
        _refresh_dues(case)
        session.add(case)
        penalty.after(session, settings, case, action, actor)
    if action in FINISHING:
        staffing.release(session, "case", case.id or 0)
        outcome = f"案件 {case.case_no} {FINISHING[action]}：{case.outcome or ''}".rstrip("：")
        if action == "close" and case.decision:
            outcome = f"案件 {case.case_no} 结案：{case.decision}" + (
                f"（罚没款 {format_yuan(case.penalty_amount)} 元已缴清）" if case.penalty_amount else ""
            )
        feedback.outcome_reached(session, case.clue_id, outcome, source=f"case:{case.id}")
        if case.task_id is not None:
            from cloud.workflow.models import InspectionTask

            task = session.get(InspectionTask, case.task_id)
            if task is not None:
                feedback.outcome_reached(session, task.clue_id, outcome, source=f"case:{case.id}")
    session.flush()
    return case


CLOCKS = {"verify": "report_verify", "decision": "case_decision"}


def _clock_approver(actor: Actor, clock: str, *, what: str, what_en: str) -> tuple[str, DeadlineSpec]:
    """The clock's deadline id and spec, after checking that ``actor`` is its approver (deadlines.toml)."""
    deadline_id = CLOCKS.get(clock)
    if deadline_id is None:
        raise Invalid(f"未知期限 {clock} / unknown clock (verify | decision)")
    spec = load_deadline_rules().spec(deadline_id)
    approver = Duty(spec.extension_approver or "bureau_head")
    if approver not in actor.duties:
        raise Forbidden(f"{what}{spec.name}期限须经{approver.value}批准 / {what_en} needs {approver.value}")
    return deadline_id, spec


def _clock_running(case: EnforcementCase, clock: str, *, what: str, what_en: str) -> None:
    if clock == "verify" and case.state != CaseState.REGISTERED:
        raise Conflict(f"案件已作出立案决定，核查期限不能再{what} / verification is over, cannot be {what_en}")
    if clock == "decision" and (case.opened_on is None or case.decided_on is not None or case.closed_at is not None):
        raise Conflict(f"案件未立案或已作出决定，处理期限不能{what} / decision clock not running, cannot be {what_en}")


def extend(
    session: Session, case: EnforcementCase, actor: Actor, *, clock: str, kind: str, days: int | None, reason: str
) -> EnforcementCase:
    """Approve an extension of a clock (the approver named in deadlines.toml; collective decisions: bureau head)."""
    deadline_id, _ = _clock_approver(actor, clock, what="延长", what_en="extension")
    if not reason or not reason.strip():
        raise Invalid("延期必须填写理由 / an extension needs a reason", code="reason_required")
    _clock_running(case, clock, what="延长", what_en="extended")
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
    pauses = case.verify_pauses if clock == "verify" else case.decision_pauses
    try:
        d = compute_deadline(
            deadline_id, start, extensions=_extensions(rows), pauses=_pauses(pauses), as_of=paperwork.today()
        )
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


def _overlapping(rows: list[dict[str, Any]], start: dt.date, end: dt.date | None, skip: int | None = None) -> bool:
    """Whether [start, end] (``end=None``: open) meets a stored pause other than ``skip`` (both ends inclusive)."""
    for r in rows:
        if r.get("id") == skip:
            continue
        r_start = dt.date.fromisoformat(r["start"])
        r_end = dt.date.fromisoformat(r["end"]) if r.get("end") else None
        if (end is None or r_start <= end) and (r_end is None or start <= r_end):
            return True
    return False


def _pause_rows(case: EnforcementCase, clock: str) -> list[dict[str, Any]]:
    return [dict(r) for r in (case.verify_pauses if clock == "verify" else case.decision_pauses)]


def _store_pauses(
    session: Session, case: EnforcementCase, clock: str, deadline_id: str, rows: list[dict[str, Any]]
) -> Deadline:
    start = case.received_at if clock == "verify" else case.opened_on
    assert start is not None
    try:
        d = compute_deadline(
            deadline_id,
            start,
            extensions=_extensions(case.verify_extensions if clock == "verify" else case.decision_extensions),
            pauses=_pauses(rows),
            as_of=paperwork.today(),
        )
    except DeadlineError as exc:
        raise Conflict(str(exc), code="pause_not_allowed") from None
    if clock == "verify":
        case.verify_pauses = rows
    else:
        case.decision_pauses = rows
    _refresh_dues(case)
    session.add(case)
    session.flush()
    return d


def pause(
    session: Session,
    case: EnforcementCase,
    actor: Actor,
    *,
    clock: str,
    kind: str,
    reason: str,
    start: dt.date | None = None,
) -> dict[str, Any]:
    """Start a pause of a clock (检测、检验、检疫、鉴定等期间不计入): the approver of the clock's extensions, a
    kind the deadline allows (``pausable`` in deadlines.toml), no overlap with another pause of the clock."""
    deadline_id, spec = _clock_approver(actor, clock, what="中止", what_en="a pause")
    if not reason or not reason.strip():
        raise Invalid("中止计算必须填写理由 / a pause needs a reason", code="reason_required")
    _clock_running(case, clock, what="中止", what_en="paused")
    if kind not in spec.pausable:
        raise Conflict(
            f"{spec.name}不因“{kind}”中止计算 / {deadline_id}: pause kind {kind!r} not allowed "
            f"(allowed: {spec.pausable})",
            code="pause_not_allowed",
        )
    today = paperwork.today()
    start = start or today
    clock_start = case.received_at if clock == "verify" else case.opened_on
    assert clock_start is not None
    trigger = compute_deadline(deadline_id, clock_start).start
    if start > today:
        raise Invalid("中止开始日不能晚于今天 / a pause cannot start in the future", code="pause_in_future")
    if start <= trigger:
        raise Invalid(
            f"中止开始日须晚于起算日 {trigger.isoformat()} / a pause starts after the trigger day",
            code="pause_before_start",
        )
    rows = _pause_rows(case, clock)
    if _overlapping(rows, start, None):
        raise Conflict(
            "与该期限已有的中止期间重叠（或尚有未结束的中止） / overlaps another pause of this clock",
            code="pause_overlap",
        )
    row: dict[str, Any] = {
        "id": 1 + max((int(r.get("id") or 0) for r in case.verify_pauses + case.decision_pauses), default=0),
        "kind": kind,
        "start": start.isoformat(),
        "end": None,
        "reason": reason.strip(),
        "started_by": actor.username,
        "at": utcnow().isoformat(),
    }
    rows.append(row)
    d = _store_pauses(session, case, clock, deadline_id, rows)
    record(
        session,
        actor,
        "case.paused",
        "case",
        case.id or 0,
        {
            "clock": clock,
            "pause_id": row["id"],
            "kind": kind,
            "start": row["start"],
            "reason": row["reason"],
            "due": d.due.isoformat(),  # provisional while the pause is open
            "warnings": list(d.warnings),
        },
    )
    return row


def end_pause(
    session: Session, case: EnforcementCase, actor: Actor, pause_id: int, *, end: dt.date | None = None
) -> dict[str, Any]:
    """End an open pause on ``end`` (inclusive, default today); the clock resumes the next day."""
    clock = next(
        (c for c in CLOCKS if any(r.get("id") == pause_id for r in _pause_rows(case, c))),
        None,
    )
    if clock is None:
        raise NotFound(f"案件 {case.case_no} 没有中止记录 {pause_id} / pause not found")
    deadline_id, _ = _clock_approver(actor, clock, what="中止", what_en="a pause")
    rows = _pause_rows(case, clock)
    row = next(r for r in rows if r.get("id") == pause_id)
    if row.get("end"):
        raise Conflict(f"中止 {pause_id} 已于 {row['end']} 结束 / pause already ended", code="pause_ended")
    today = paperwork.today()
    end = end or today
    start = dt.date.fromisoformat(row["start"])
    if end < start:
        raise Invalid(
            f"中止结束日 {end.isoformat()} 早于开始日 {row['start']} / a pause cannot end before it starts",
            code="pause_end_before_start",
        )
    if end > today:
        raise Invalid("中止结束日不能晚于今天 / a pause cannot end in the future", code="pause_in_future")
    if _overlapping(rows, start, end, skip=pause_id):
        raise Conflict("与该期限已有的中止期间重叠 / overlaps another pause of this clock", code="pause_overlap")
    row.update(end=end.isoformat(), ended_by=actor.username, ended_at=utcnow().isoformat())
    d = _store_pauses(session, case, clock, deadline_id, rows)
    record(
        session,
        actor,
        "case.pause_ended",
        "case",
        case.id or 0,
        {
            "clock": clock,
            "pause_id": pause_id,
            "kind": row.get("kind"),
            "start": row["start"],
            "end": row["end"],
            "paused_days": d.paused_days,
            "due": d.due.isoformat(),
            "warnings": list(d.warnings),
        },
    )
    return row


def add_payment(
    session: Session,
    case: EnforcementCase,
    actor: Actor,
    *,
    amount: Decimal,
    paid_on: dt.date,
    receipt_no: str,
    method: str,
) -> CasePayment:
    """Record a payment; once the fine and any late-payment surcharge (加处罚款) are paid the case is ``paid``."""
    if case.state != CaseState.SERVED:
        raise Conflict(
            f"案件处于“{CASE_MACHINE.state_label(case.state)}”状态，不能登记缴款（决定书送达后才能缴款）"
            " / not awaiting payment"
        )
    if not case.penalty_amount:
        raise Conflict("处理决定没有罚没款 / the decision has no fine")
    if case.served_on and paid_on < case.served_on:
        raise Invalid("缴款日期早于决定书送达日 / paid before the decision was served", code="paid_before_service")
    amount = to_yuan(amount)
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
    owed = penalty.owed(case, payment_rows(session, case.id or 0), paid_on)
    record(
        session,
        actor,
        "case.payment",
        "case",
        case.id or 0,
        {
            "amount": format_yuan(amount),
            "paid_on": paid_on.isoformat(),
            "receipt_no": receipt_no,
            "method": method,
            "total_paid": format_yuan(owed["paid"]),
            "penalty_amount": format_yuan(case.penalty_amount),
            "surcharge": format_yuan(owed["surcharge"]),
            "outstanding": format_yuan(owed["outstanding"]),
        },
    )
    if owed["outstanding"] == 0:
        duty = "enforcement_officer" if Duty.ENFORCEMENT_OFFICER in actor.duties else None
        if duty is None:
            from cloud.workflow.service import SYSTEM

            apply_transition(
                session, CASE_MACHINE, case, "record_payment", SYSTEM, payload={"total_paid": format_yuan(owed["paid"])}
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
    found = procedure.penalty_rules().publication.personal_data(content)
    if found:
        raise Invalid(
            f"公示内容含有个人信息（{len(found)} 处，如手机号、身份证号），须先去除 / personal data in the publication",
            code="personal_data",
        )
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
            "to": "published",
            "platform": platform,
            "url": url,
            "published_on": published_on.isoformat(),
            "due": due.isoformat(),
            "on_time": row.on_time,
        },
    )
    return row


MEASURES = {"seizure": "查封、扣押", "evidence_preservation": "先行登记保存证据"}


def _measure(case: EnforcementCase, measure_id: int) -> dict[str, Any]:
    row = next((m for m in case.measures or [] if m["id"] == measure_id), None)
    if row is None:
        raise NotFound(f"案件 {case.case_no} 没有强制措施 {measure_id} / measure not found")
    return dict(row)


def _store_measure(session: Session, case: EnforcementCase, row: dict[str, Any]) -> None:
    case.measures = [row if m["id"] == row["id"] else m for m in case.measures or []] + (
        [] if any(m["id"] == row["id"] for m in case.measures or []) else [row]
    )
    session.add(case)
    session.flush()


def start_measure(
    session: Session, case: EnforcementCase, actor: Actor, *, kind: str, started_on: dt.date, items: str
) -> dict[str, Any]:
    """查封、扣押 (``seizure``: 30 days, +30 once by the head) or 先行登记保存 (``evidence_preservation``: decide
    within 7 working days) during the investigation; its clock is one of the case's clocks."""
    if kind not in MEASURES:
        raise Invalid(f"未知措施 {kind} / unknown measure (seizure | evidence_preservation)")
    if case.state not in (CaseState.APPROVED, CaseState.INVESTIGATING):
        raise Conflict("只有立案后、调查取证期间才能采取查封扣押或先行登记保存 / only during investigation")
    if actor.user_id not in staffing.assignees(session, "case", case.id or 0, open_only=True):
        raise Forbidden(f"{actor.name} 不是案件 {case.case_no} 的承办人 / not a handler of this case")
    if started_on > paperwork.today():
        raise Invalid("措施开始日不能晚于今天 / a measure cannot start in the future", code="future_date")
    d = compute_deadline(kind, started_on)
    row = {
        "id": 1 + max((m["id"] for m in case.measures or []), default=0),
        "kind": kind,
        "label": MEASURES[kind],
        "items": items,
        "started_on": started_on.isoformat(),
        "due": d.due.isoformat(),
        "extensions": 0,
        "warnings": list(d.warnings),
        **{
            k: v
            for k, v in penalty.entered_by(actor, "enforcement_officer", items).items()
            if k in ("user", "name", "at")
        },
    }
    _store_measure(session, case, row)
    record(
        session,
        actor,
        "case_measure.started",
        "case_measure",
        f"{case.id}:{row['id']}",
        {"case_id": case.id, "clue_id": case.clue_id, "kind": kind, "due": row["due"], "warnings": row["warnings"]},
    )
    return row


def extend_measure(
    session: Session, case: EnforcementCase, actor: Actor, measure_id: int, *, reason: str
) -> dict[str, Any]:
    row = _measure(case, measure_id)
    spec = load_deadline_rules().spec(row["kind"])
    approver = Duty(spec.extension_approver or "bureau_head")
    if approver not in actor.duties:
        raise Forbidden(f"延长{row['label']}期限须经{approver.value}批准 / extension needs {approver.value}")
    if row.get("ended_on"):
        raise Conflict(f"{row['label']}已于 {row['ended_on']} 解除或处理 / the measure has ended")
    if not reason.strip():
        raise Invalid("延期必须填写理由 / an extension needs a reason", code="reason_required")
    try:
        d = compute_deadline(
            row["kind"],
            dt.date.fromisoformat(row["started_on"]),
            extensions=[Extension(ExtensionKind.APPROVAL)] * (int(row["extensions"]) + 1),
        )
    except DeadlineError as exc:
        raise Conflict(str(exc), code="extension_not_allowed") from None
    row.update(extensions=int(row["extensions"]) + 1, due=d.due.isoformat(), extended_by=actor.username)
    _store_measure(session, case, row)
    record(
        session,
        actor,
        "case_measure.extended",
        "case_measure",
        f"{case.id}:{row['id']}",
        {"kind": row["kind"], "due": row["due"], "reason": reason.strip()},
    )
    return row


def end_measure(
    session: Session, case: EnforcementCase, actor: Actor, measure_id: int, *, outcome: str, ended_on: dt.date
) -> dict[str, Any]:
    row = _measure(case, measure_id)
    if row.get("ended_on"):
        raise Conflict(f"{row['label']}已于 {row['ended_on']} 结束 / the measure has ended")
    row.update(ended_on=ended_on.isoformat(), outcome=outcome.strip(), ended_by=actor.username)
    _store_measure(session, case, row)
    record(
        session,
        actor,
        "case_measure.ended",
        "case_measure",
        f"{case.id}:{row['id']}",
        {"kind": row["kind"], "to": "ended", "on_time": ended_on.isoformat() <= row["due"]},
    )
    return row


def payments(session: Session, case_id: int) -> list[CasePayment]:
    return list(session.exec(select(CasePayment).where(CasePayment.case_id == case_id).order_by(col(CasePayment.id))))


def publications(session: Session, case_id: int) -> list[PenaltyPublication]:
    return list(session.exec(select(PenaltyPublication).where(PenaltyPublication.case_id == case_id)))


__all__ = [
    "add_opinion",
    "add_payment",
    "case_action",
    "compute_clocks",
    "end_measure",
    "end_pause",
    "extend",
    "extend_measure",
    "get_case",
    "pause",
    "publish",
    "register_case",
    "start_measure",
]
