"""Comprehensive analysis (综合研判, §8.3) wired to the database, and subject risk grading.

* :func:`clue_facts` assembles :class:`~cloud.workflow.analysis.ClueFacts` from the clue and the DB (the subject's
  risk grade, repeats of subject + category within the configured window, folded sources, open cases).
* :func:`analyse` runs the rule pack and stores an :class:`AnalysisDecision` with its explanation (journal:
  ``clue.analysed``); :func:`override` lets a supervisor replace it with a reason (``clue.decision_overridden``).
* :func:`recompute_risk` grades a subject from its history (alerts, complaints, inspection findings, penalties)
  and stores the reasons (``subject.risk_graded``); :func:`run_periodic` is the lifespan-friendly scheduler.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from cloud.core.db import session_scope, utcnow
from cloud.core.retry import retry_locked
from cloud.registry.models import MarketSubject, RiskGrade, Site
from cloud.workflow.analysis import (
    Channel,
    ClueFacts,
    ClueKind,
    Decision,
    Disposal,
    SubjectHistory,
    decide,
    grade_subject,
)
from cloud.workflow.analysis import RiskGrade as AnalysisGrade
from cloud.workflow.clues import Clue
from cloud.workflow.config import workflow_rules
from cloud.workflow.models import (
    AnalysisDecision,
    CasePayment,
    EnforcementCase,
    InspectionResult,
    InspectionTask,
    RiskAssessmentRecord,
    WorkOrder,
)
from cloud.workflow.service import SYSTEM, Actor, Conflict, Forbidden, Invalid, apply_transition, record
from cloud.workflow.states import CLUE_MACHINE, CaseState, ClueState
from cloud.workflow.states import Role as Duty
from protocols.messages import Severity

log = logging.getLogger(__name__)

OPEN_CASE_STATES = [
    s.value for s in CaseState if s not in (CaseState.CLOSED, CaseState.NOT_OPENED, CaseState.TERMINATED)
]
OVERRIDE_DUTIES = (Duty.SUPERVISOR, Duty.BUREAU_HEAD, Duty.DEPARTMENT_HEAD, Duty.ANALYST)


def _severity(value: str) -> Severity:
    try:
        return Severity(value)
    except ValueError:
        return Severity.MINOR


def _channel(value: str) -> Channel:
    try:
        return Channel(value)
    except ValueError:
        return Channel.SENSOR


def repeats(session: Session, clue: Clue, days: int | None = None) -> int:
    """Earlier clues about the same subject (or site) and category within ``days`` before this clue."""
    days = days or workflow_rules().analysis.repeat_window_days
    since = clue.first_seen_at - timedelta(days=days)
    query = (
        select(func.count())
        .select_from(Clue)
        .where(
            Clue.category == clue.category,
            col(Clue.id) != clue.id,
            col(Clue.first_seen_at) >= since,
            col(Clue.first_seen_at) <= clue.first_seen_at,
        )
    )
    if clue.subject_id is not None:
        query = query.where(Clue.subject_id == clue.subject_id)
    elif clue.site_id:
        query = query.where(Clue.site_id == clue.site_id)
    else:
        return 0
    return int(session.exec(query).one())


def open_cases(session: Session, subject_id: int | None) -> int:
    if subject_id is None:
        return 0
    return int(
        session.exec(
            select(func.count())
            .select_from(EnforcementCase)
            .where(EnforcementCase.subject_id == subject_id, col(EnforcementCase.state).in_(OPEN_CASE_STATES))
        ).one()
    )


def clue_facts(session: Session, clue: Clue) -> ClueFacts:
    subject = session.get(MarketSubject, clue.subject_id) if clue.subject_id is not None else None
    try:
        kind = ClueKind(clue.kind)
    except ValueError:
        kind = ClueKind.WALK_IN
    return ClueFacts(
        kind=kind,
        channel=_channel(clue.channel),
        category=clue.category,
        rule_id=clue.rule_id,
        severity=_severity(clue.severity),
        risk_grade=AnalysisGrade(subject.risk_grade.value) if subject else None,
        repeats_90d=repeats(session, clue),
        sources=max(clue.source_count, 1),
        open_cases=open_cases(session, clue.subject_id),
    )


def current_decision(session: Session, clue_id: int) -> AnalysisDecision | None:
    return session.exec(
        select(AnalysisDecision)
        .where(AnalysisDecision.clue_id == clue_id, AnalysisDecision.current == True)  # noqa: E712
        .order_by(col(AnalysisDecision.id).desc())
    ).first()


def _store(
    session: Session,
    clue: Clue,
    decision: Decision,
    facts: ClueFacts,
    actor: Actor,
    *,
    override_reason: str | None = None,
) -> AnalysisDecision:
    previous = current_decision(session, clue.id) if clue.id is not None else None
    if previous is not None:
        previous.current = False
        session.add(previous)
    row = AnalysisDecision(
        clue_id=clue.id or 0,
        disposal=decision.disposal.value,
        rule_id=decision.rule_id,
        rule_name=decision.rule_name,
        reason=decision.reason if override_reason is None else override_reason,
        explanation=decision.explanation,
        matched=[{"condition": m.condition, "expected": m.expected, "actual": m.actual} for m in decision.matched],
        facts=facts.model_dump(mode="json"),
        pack_version=decision.pack_version,
        deadline_id=decision.deadline,
        override=override_reason is not None,
        supersedes_id=previous.id if previous else None,
        decided_by=actor.username,
    )
    session.add(row)
    clue.disposal = decision.disposal.value
    session.add(clue)
    session.flush()
    return row


def analyse(session: Session, clue: Clue, actor: Actor = SYSTEM, *, trigger: str = "on_demand") -> AnalysisDecision:
    """Run the rule pack on ``clue`` now and store the decision (the clue must be triaged or under analysis)."""
    if clue.state == ClueState.NEW:
        apply_transition(session, CLUE_MACHINE, clue, "triage", actor if actor.duties else SYSTEM)
    if clue.state not in (ClueState.TRIAGED, ClueState.ANALYSING):
        raise Conflict(
            f"线索处于“{CLUE_MACHINE.state_label(clue.state)}”状态，不能重新研判 / clue in state {clue.state} "
            "cannot be analysed"
        )
    facts = clue_facts(session, clue)
    decision = decide(facts)
    row = _store(session, clue, decision, facts, actor)
    record(
        session,
        actor,
        "clue.analysed",
        "clue",
        clue.id or 0,
        {
            "decision_id": row.id,
            "disposal": row.disposal,
            "rule_id": row.rule_id,
            "explanation": row.explanation,
            "facts": row.facts,
            "pack_version": row.pack_version,
            "deadline": row.deadline_id,
            "trigger": trigger,
        },
    )
    if decision.disposal is Disposal.MANUAL_ANALYSIS and clue.state == ClueState.TRIAGED:
        apply_transition(session, CLUE_MACHINE, clue, "analyse", SYSTEM, payload={"by_rule": row.rule_id})
    return row


def analyse_new_clue(session: Session, clue: Clue, *, trigger: str = "created") -> None:
    """Analysis at creation (or when a more severe source or a new kind of source joins), inside the collecting
    transaction; a failure is logged, never breaks intake."""
    try:
        with session.begin_nested():
            analyse(session, clue, SYSTEM, trigger=trigger)
            if workflow_rules().analysis.auto_dispatch and clue.disposal in (Disposal.INSPECT, Disposal.OPEN_CASE):
                from cloud.workflow.dispatch import DispatchRequest, dispatch_clue

                dispatch_clue(session, clue, DispatchRequest(), SYSTEM)
    except Exception as exc:
        log.warning("analysis of new clue %s failed: %s", clue.id, exc)
        session.refresh(clue)
        record(session, SYSTEM, "clue.analysis_failed", "clue", clue.id or 0, {"error": str(exc)}, outcome="failed")


def override(session: Session, clue: Clue, disposal: Disposal, reason: str, actor: Actor) -> AnalysisDecision:
    """A supervisor replaces the current decision; the reason is mandatory and journaled."""
    if not actor.has(*OVERRIDE_DUTIES):
        raise Forbidden("改变研判结论须由督查人员、负责人或研判员办理 / override needs supervisor or head")
    if not reason or not reason.strip():
        raise Invalid("改变研判结论必须填写理由 / an override needs a reason", code="reason_required")
    if clue.state not in (ClueState.TRIAGED, ClueState.ANALYSING):
        raise Conflict(
            f"线索处于“{CLUE_MACHINE.state_label(clue.state)}”状态，不能改变研判结论 / cannot override in state "
            f"{clue.state}"
        )
    facts = clue_facts(session, clue)
    previous = current_decision(session, clue.id or 0)
    decision = Decision(disposal, "override", "人工改判", reason.strip(), (), decide(facts).pack_version, None)
    row = _store(session, clue, decision, facts, actor, override_reason=reason.strip())
    row.explanation = f"人工改判为“{decision.explanation.split('。')[0].removeprefix('研判结论：')}”：{reason.strip()}"
    session.add(row)
    record(
        session,
        actor,
        "clue.decision_overridden",
        "clue",
        clue.id or 0,
        {
            "decision_id": row.id,
            "previous_disposal": previous.disposal if previous else None,
            "previous_rule": previous.rule_id if previous else None,
            "disposal": disposal.value,
            "reason": reason.strip(),
        },
    )
    return row


# ---------------------------------------------------------------------------------------------------------
# risk grading
# ---------------------------------------------------------------------------------------------------------
def subject_history(session: Session, subject: MarketSubject, now: datetime | None = None) -> SubjectHistory:
    now = now or utcnow()
    d90, d365, d730 = now - timedelta(days=90), now - timedelta(days=365), now - timedelta(days=730)
    sid = subject.id

    def count_clues(severity: str) -> int:
        return int(
            session.exec(
                select(func.coalesce(func.sum(Clue.source_count), 0)).where(
                    Clue.subject_id == sid,
                    Clue.kind == "alert",
                    Clue.severity == severity,
                    col(Clue.last_seen_at) >= d90,
                )
            ).one()
        )

    substantiated = int(
        session.exec(
            select(func.count())
            .select_from(Clue)
            .where(
                Clue.subject_id == sid,
                col(Clue.kind).in_(["complaint", "report"]),
                col(Clue.first_seen_at) >= d365,
                col(Clue.state) == ClueState.CLOSED.value,
                col(Clue.result).contains("查实"),
            )
        ).one()
    )
    results = session.exec(
        select(InspectionResult.grade, InspectionResult.outcome)
        .join(InspectionTask, col(InspectionTask.id) == col(InspectionResult.task_id))
        .where(InspectionTask.subject_id == sid, col(InspectionResult.recorded_at) >= d365)
    ).all()
    grades = [g for g, outcome in results if outcome == "fail"]
    tasks_clean = int(
        session.exec(
            select(func.count())
            .select_from(InspectionTask)
            .where(
                InspectionTask.subject_id == sid,
                InspectionTask.conclusion == "compliant",
                col(InspectionTask.closed_at) >= d365,
            )
        ).one()
    )
    penalties = int(
        session.exec(
            select(func.count())
            .select_from(EnforcementCase)
            .where(
                EnforcementCase.subject_id == sid,
                col(EnforcementCase.decided_on).is_not(None),
                col(EnforcementCase.created_at) >= d730,
            )
        ).one()
    )
    site = session.exec(select(Site).where(Site.subject_id == sid)).first()
    business_type = None
    if site is not None and site.category:
        business_type = workflow_rules().risk.business_type_by_site_category.get(site.category)
    licence_expired = False
    try:
        from cloud.registry.models import Licence

        valid_to = session.exec(select(func.max(Licence.valid_to)).where(Licence.subject_id == sid)).one()
        licence_expired = valid_to is not None and valid_to < now.date()
    except Exception:
        licence_expired = False
    _ = CasePayment  # penalties count decided cases; payments do not change the grade
    return SubjectHistory(
        business_type=business_type,
        critical_alerts_90d=count_clues("critical"),
        major_alerts_90d=count_clues("major"),
        substantiated_complaints_12m=substantiated,
        minor_violations_12m=grades.count("minor"),
        general_violations_12m=grades.count("general"),
        serious_violations_12m=grades.count("serious"),
        penalties_24m=penalties,
        clean_inspections_12m=tasks_clean,
        licence_expired=licence_expired,
    )


def recompute_risk(
    session: Session, subject: MarketSubject, actor: Actor = SYSTEM, *, trigger: str = "on_demand"
) -> RiskAssessmentRecord:
    history = subject_history(session, subject)
    previous = AnalysisGrade(subject.risk_grade.value) if subject.risk_grade else None
    result = grade_subject(history, previous=previous)
    row = RiskAssessmentRecord(
        subject_id=subject.id or 0,
        grade=result.grade.value,
        previous=previous.value if previous else None,
        score=result.score,
        reasons=[{"factor": r.factor, "label": r.label, "value": r.value, "points": r.points} for r in result.reasons],
        history=history.model_dump(mode="json"),
        explanation=result.explanation,
        rules_version=result.version,
        trigger=trigger,
        computed_by=actor.username,
    )
    session.add(row)
    if result.changed or subject.risk_grade is None:
        subject.risk_grade = RiskGrade(result.grade.value)
        subject.updated_at = utcnow()
        session.add(subject)
    session.flush()
    record(
        session,
        actor,
        "subject.risk_graded",
        "subject",
        subject.id or 0,
        {
            "grade": row.grade,
            "previous": row.previous,
            "changed": result.changed,
            "score": row.score,
            "explanation": row.explanation,
            "trigger": trigger,
        },
    )
    return row


def recompute_all(engine: Engine, *, trigger: str = "schedule", batch: int = 50) -> dict[str, Any]:
    """Regrade every subject, one short write transaction per ``batch`` subjects (the SQLite write lock is never
    held for long; other requests and jobs interleave); a batch refused by a busy database is retried."""
    done = changed = 0
    last_id = 0
    while True:

        def one_batch(after: int = last_id) -> tuple[int, int, int]:
            graded = moved = 0
            last = after
            with session_scope(engine, write=True) as session:
                subjects = list(
                    session.exec(
                        select(MarketSubject)
                        .where(col(MarketSubject.id) > after)
                        .order_by(col(MarketSubject.id))
                        .limit(batch)
                    )
                )
                for subject in subjects:
                    row = recompute_risk(session, subject, SYSTEM, trigger=trigger)
                    graded += 1
                    moved += row.previous is not None and row.previous != row.grade
                    last = subject.id or last
            return graded, moved, last

        graded, moved, last_id = retry_locked(one_batch, what="risk recompute")
        if not graded:
            break
        done, changed = done + graded, changed + moved
    return {"graded": done, "changed": changed}


async def run_periodic(engine: Engine, *, every_s: float | None = None, first_delay_s: float = 60.0) -> None:
    """Lifespan task: regrade all subjects once per ``risk.recompute_every_hours`` period (cancel to stop).

    Runs are recorded by period (``cloud_job_run``, job ``risk_regrade``): run under a lease
    (:func:`cloud.core.leases.hold`) on several instances, a period is regraded once.
    """
    from cloud.core.leases import period_key, run_period_job

    interval = every_s if every_s is not None else workflow_rules().risk.recompute_every_hours * 3600
    await asyncio.sleep(first_delay_s)
    while True:
        try:
            period = period_key(utcnow(), interval)

            def regrade() -> str:
                return str(recompute_all(engine, trigger="schedule"))

            if await asyncio.to_thread(run_period_job, engine, "risk_regrade", period, regrade):
                log.info("risk grades recomputed for period %s", period)
        except Exception:
            log.exception("periodic risk recomputation failed")
        await asyncio.sleep(min(interval, 60.0))


def work_order_of(session: Session, clue_id: int) -> WorkOrder | None:
    return session.exec(select(WorkOrder).where(WorkOrder.clue_id == clue_id).order_by(col(WorkOrder.id))).first()
