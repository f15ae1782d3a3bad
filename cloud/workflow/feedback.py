"""Feedback (结果反馈): outcomes of tasks and cases flow back to their clue, which closes with the result.

A clue closes when none of its inspection tasks or enforcement cases is still open and no obligation holds it
(a rectification deadline pending, a 复查 not done: :mod:`cloud.workflow.follow_up`); the result text lists every
outcome. A clue still ``dispatched`` (nobody started) is first moved to ``in_execution`` by the system, so that the
journal shows a complete path.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from cloud.core.db import utcnow
from cloud.journal import JournalEvent
from cloud.workflow.clues import Clue, ClueStatus
from cloud.workflow.models import EnforcementCase, InspectionTask
from cloud.workflow.service import SYSTEM, Actor, apply_transition, record
from cloud.workflow.states import CLUE_MACHINE, CaseState, ClueState, TaskState

OPEN_TASK = [s.value for s in TaskState if s not in (TaskState.CLOSED, TaskState.CANCELLED)]
OPEN_CASE = [s.value for s in CaseState if s not in (CaseState.CLOSED, CaseState.NOT_OPENED, CaseState.TERMINATED)]


def start_clue(session: Session, clue_id: int | None, actor: Actor = SYSTEM, *, because: str) -> None:
    """Move a dispatched clue to 执行中 when its work starts."""
    clue = session.get(Clue, clue_id) if clue_id is not None else None
    if clue is not None and clue.state == ClueState.DISPATCHED:
        apply_transition(
            session, CLUE_MACHINE, clue, "start", SYSTEM, payload={"because": because, "by": actor.username}
        )


def close_clue(session: Session, clue: Clue, result: str, actor: Actor = SYSTEM, *, role: str | None = None) -> None:
    values = {"status": ClueStatus.CLOSED.value, "result": result[:2000], "closed_at": utcnow()}
    if clue.state == ClueState.DISPATCHED:
        apply_transition(session, CLUE_MACHINE, clue, "start", SYSTEM, payload={"because": "outcome"})
    apply_transition(session, CLUE_MACHINE, clue, "close", actor, reason=result, role=role, values=values)


def _open_work(session: Session, clue_id: int) -> bool:
    task_ids = list(session.exec(select(InspectionTask.id).where(InspectionTask.clue_id == clue_id)))
    open_tasks = session.exec(
        select(InspectionTask.id).where(InspectionTask.clue_id == clue_id, col(InspectionTask.state).in_(OPEN_TASK))
    ).first()
    open_case = session.exec(
        select(EnforcementCase.id).where(
            (col(EnforcementCase.clue_id) == clue_id) | col(EnforcementCase.task_id).in_(task_ids or [-1]),
            col(EnforcementCase.state).in_(OPEN_CASE),
        )
    ).first()
    from cloud.workflow.follow_up import closing_obligations

    return open_tasks is not None or open_case is not None or bool(closing_obligations(session, clue_id))


def outcome_reached(session: Session, clue_id: int | None, outcome: str, *, source: str) -> None:
    """Record an outcome on the clue; close it when no task or case of it is still open."""
    if clue_id is None:
        return
    clue = session.get(Clue, clue_id)
    if clue is None:
        return
    record(session, SYSTEM, "clue.outcome", "clue", clue_id, {"source": source, "outcome": outcome})
    if clue.state not in (ClueState.DISPATCHED, ClueState.IN_EXECUTION) or _open_work(session, clue_id):
        return
    close_clue(session, clue, "；".join(_outcomes(session, clue)))


def _outcomes(session: Session, clue: Clue) -> list[str]:
    """Every outcome recorded on the clue, in order and once each (a 复查's result after its inspection's)."""
    rows = session.exec(
        select(JournalEvent.payload)
        .where(
            JournalEvent.target_type == "clue",
            JournalEvent.target_id == str(clue.id),
            JournalEvent.action == "clue.outcome",
        )
        .order_by(col(JournalEvent.id))
    ).all()
    found = [str(p.get("outcome")) for p in rows if isinstance(p, dict) and p.get("outcome")]
    return list(dict.fromkeys([*([clue.result] if clue.result else []), *found]))
