"""The follow-up loop (复查): a rectification order is owed a follow-up inspection once its deadline arrives.

* Closing a task that issued a 责令改正通知书 records a :class:`FollowUp` (one per order, ``pending``) and journals
  ``task.follow_up_owed``; the clue stays in execution.
* The deadline scheduler (:func:`run_periodically`, under the lease ``follow_up``) creates the 复查 task on the
  order's deadline (责令改正期限, Asia/Shanghai): officers per ``workflow.toml [dispatch] follow_up_officers``
  (``same`` = the officers who ordered it, when still eligible, else balanced as any dispatch), due per
  ``deadlines.toml [deadlines.follow_up_inspection]``. Exactly once per order: the task is created in the
  transaction that records the job run ``(follow_up, order:<document id>)`` and moves the row to ``scheduled``;
  the lease fences a paused scheduler.
* :func:`closing_obligations` lists what still holds a clue open (a deadline not yet reached, a 复查 not closed);
  closing refuses while any is open (rule ``clue_closing`` in ``duties.toml``) unless a duty named there overrides
  with a reason (:func:`check_closing`), which waives the obligations and journals ``clue.close_overridden``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, update
from sqlmodel import Field, Session, SQLModel, col, select

from cloud.core.db import UTCDateTime, utcnow
from cloud.documents.render import cn_date
from cloud.workflow import staffing
from cloud.workflow.config import workflow_rules
from cloud.workflow.deadlines import compute_deadline
from cloud.workflow.models import DocumentRecord, InspectionTask
from cloud.workflow.service import SYSTEM, Actor, Conflict, Forbidden, Invalid, NotFound, apply_transition, record
from cloud.workflow.states import TASK_MACHINE, TaskState
from cloud.workflow.states import Role as Duty

log = logging.getLogger(__name__)

FOLLOW_UP_METHOD = "复查"
JOB = "follow_up"
DEADLINE_ID = "follow_up_inspection"
TZ = ZoneInfo("Asia/Shanghai")
STATE_LABELS = {"pending": "待改正期限届满", "scheduled": "已生成复查任务", "done": "复查完成", "waived": "经批准免除"}


class FollowUp(SQLModel, table=True):
    """What a rectification order obliges: a 复查 once its deadline arrives."""

    __tablename__ = "follow_up"

    id: int | None = Field(default=None, primary_key=True)
    document_id: int = Field(unique=True, description="the 责令改正通知书")
    doc_no: str = Field(max_length=60)
    clue_id: int | None = Field(default=None, index=True)
    task_id: int = Field(index=True, description="the task that ordered rectification")
    deadline: date = Field(index=True, description="责令改正期限")
    state: str = Field(default="pending", max_length=12, index=True, description="pending scheduled done waived")
    follow_up_task_id: int | None = Field(default=None, index=True)
    scheduled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    waived_by: str | None = Field(default=None, max_length=64)
    waived_reason: str | None = Field(default=None, max_length=1000)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


def owe_follow_up(session: Session, task: InspectionTask, actor: Actor) -> FollowUp | None:
    """Record the 复查 a closed task's rectification order is owed; None when none is (no order, or a 复查 itself)."""
    if task.method == FOLLOW_UP_METHOD:
        return None
    order = session.exec(
        select(DocumentRecord).where(DocumentRecord.task_id == task.id, DocumentRecord.kind == "rectification_order")
    ).first()
    if order is None or order.id is None:
        return None
    existing = session.exec(select(FollowUp).where(FollowUp.document_id == order.id)).first()
    if existing is not None:
        return existing
    row = FollowUp(
        document_id=order.id,
        doc_no=order.doc_no,
        clue_id=task.clue_id,
        task_id=task.id or 0,
        deadline=date.fromisoformat(str(order.data["deadline"])),
    )
    session.add(row)
    session.flush()
    record(
        session,
        actor,
        "task.follow_up_owed",
        "task",
        task.id or 0,
        {
            "task_no": task.task_no,
            "clue_id": task.clue_id,
            "doc_no": order.doc_no,
            "deadline": row.deadline.isoformat(),
        },
    )
    return row


def _officers(session: Session, task: InspectionTask) -> list[staffing.StaffMember]:
    rules = workflow_rules().dispatch

    def pick(explicit: list[int] | None) -> list[staffing.StaffMember]:
        return staffing.pick(
            session,
            duty=Duty.INSPECTOR,
            count=rules.inspectors_per_task,
            department_id=task.department_id,
            subject_id=task.subject_id,
            explicit=explicit,
        )

    if rules.follow_up_officers == "same":
        try:
            return pick(staffing.assignees(session, "task", task.id or 0))
        except Invalid:  # one of them left, lost the duty or is now recused: dispatch as any task
            pass
    return pick(None)


def schedule(session: Session, row: FollowUp, actor: Actor = SYSTEM, *, why: str = "改正期限届满") -> InspectionTask:
    """Create the 复查 task of ``row`` (state ``pending``) and mark it ``scheduled``; ``why`` is journaled as the
    reason the timeline shows (the deadline arrived, or 提前复查). Flushes, never commits."""
    from cloud.workflow.inspection import create_task, results

    task = session.get(InspectionTask, row.task_id)
    if task is None:
        raise Invalid(f"检查任务 {row.task_id} 不存在 / task not found")
    due = compute_deadline(DEADLINE_ID, row.deadline)
    failed = [r.item_code for r in results(session, task.id or 0) if r.outcome == "fail"] or list(task.items)
    follow = create_task(
        session,
        actor=actor,
        members=_officers(session, task),
        items=failed,
        due_date=due.due,
        due_warnings=list(due.warnings),
        clue_id=task.clue_id,
        subject_id=task.subject_id,
        site_id=task.site_id,
        department_id=task.department_id,
        method=FOLLOW_UP_METHOD,
        instructions=f"复查 {row.doc_no}（限 {cn_date(row.deadline)}前改正）的整改情况",  # as a person writes dates
    )
    moved = session.execute(
        update(FollowUp)
        .where(col(FollowUp.id) == row.id, col(FollowUp.state) == "pending")
        .values(state="scheduled", follow_up_task_id=follow.id, scheduled_at=utcnow())
        .execution_options(synchronize_session="fetch")
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"{row.doc_no} 的复查已生成 / follow-up already scheduled", code="follow_up_scheduled")
    record(
        session,
        actor,
        "task.follow_up_scheduled",
        "task",
        task.id or 0,
        {
            "follow_up_task_id": follow.id,
            "task_no": follow.task_no,
            "clue_id": task.clue_id,
            "doc_no": row.doc_no,
            "deadline": row.deadline.isoformat(),
            "due_date": due.due.isoformat(),
            "reason": why,
        },
    )
    return follow


def local_today(now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(TZ).date()


def due_orders(session: Session, today: date) -> list[FollowUp]:
    return list(
        session.exec(
            select(FollowUp)
            .where(FollowUp.state == "pending", col(FollowUp.deadline) <= today)
            .order_by(col(FollowUp.deadline), col(FollowUp.id))
        )
    )


def schedule_early(session: Session, follow_up_id: int, actor: Actor, reason: str) -> InspectionTask:
    """提前复查: the party reports the rectification done before the deadline; a dispatcher or head schedules the
    复查 now (reason journaled). Exactly once with the scheduler: the same job run ``(follow_up, order:<id>)``."""
    from cloud.core.leases import JobRun

    if not actor.has(Duty.DISPATCHER, Duty.DEPARTMENT_HEAD):
        raise Forbidden("提前复查须由调度员或承办机构负责人安排 / needs a dispatcher or department head")
    row = session.get(FollowUp, follow_up_id)
    if row is None:
        raise NotFound(f"复查记录 {follow_up_id} 不存在 / follow-up not found")
    if row.state != "pending":
        raise Conflict(f"{row.doc_no} 的复查{STATE_LABELS.get(row.state, row.state)} / follow-up not pending")
    if not reason.strip():
        raise Invalid("提前复查须填写理由（例如 当事人报告已整改） / a reason is required")
    session.add(
        JobRun(
            job=JOB,
            period=f"order:{row.id}",
            status="done",
            holder=actor.username,
            started_at=utcnow(),
            finished_at=utcnow(),
            detail="提前复查",
        )
    )
    follow = schedule(session, row, actor, why="提前复查")
    record(
        session,
        actor,
        "task.follow_up_early",
        "task",
        row.task_id,
        {"doc_no": row.doc_no, "reason": reason, "follow_up_task_id": follow.id, "clue_id": row.clue_id},
    )
    return follow


def run_due(engine: Engine, now: datetime | None = None) -> list[int]:
    """Create the 复查 of every order whose deadline has arrived, each once (job run per order); the new task ids."""
    from cloud.core.leases import run_in_period

    today = local_today(now)
    with Session(engine) as session:
        ids = [r.id for r in due_orders(session, today) if r.id is not None]
    created: list[int] = []
    for row_id in ids:
        made: list[int] = []

        def work(session: Session, row_id: int = row_id, made: list[int] = made) -> str:
            row = session.get(FollowUp, row_id)
            if row is None or row.state != "pending":
                return "nothing owed"
            follow = schedule(session, row)
            made.append(follow.id or 0)
            return f"复查任务 {follow.task_no}"

        try:
            if run_in_period(engine, JOB, f"order:{row_id}", work):
                created += made
        except Exception:
            log.exception("follow-up of order row %s not scheduled (retried at the next pass)", row_id)
    return created


async def run_periodically(engine: Engine, *, interval_s: float = 60.0) -> None:
    """The deadline scheduler's loop (run under the ``follow_up`` lease by the app)."""
    failing = False
    while True:
        try:
            await asyncio.to_thread(run_due, engine)
            failing = False
        except Exception:
            if not failing:
                log.exception("follow-up scheduler failed (logged once until it recovers)")
            failing = True
        await asyncio.sleep(interval_s)


def mark_done(session: Session, task: InspectionTask) -> None:
    """A closed 复查 fulfils its order's obligation."""
    if task.method != FOLLOW_UP_METHOD:
        return
    for row in session.exec(select(FollowUp).where(FollowUp.follow_up_task_id == task.id)):
        row.state = "done"
        session.add(row)
    session.flush()


# ---------------------------------------------------------------------------------------------------------
# closing obligations
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Obligation:
    kind: str  # rectification_deadline | follow_up_inspection
    follow_up_id: int
    doc_no: str
    text: str


def closing_obligations(session: Session, clue_id: int) -> list[Obligation]:
    """What the clue still owes before it may close: rectification deadlines pending, 复查 not closed."""
    out: list[Obligation] = []
    rows = session.exec(
        select(FollowUp).where(FollowUp.clue_id == clue_id, col(FollowUp.state).in_(["pending", "scheduled"]))
    )
    for row in rows:
        if row.state == "pending":
            out.append(
                Obligation(
                    "rectification_deadline",
                    row.id or 0,
                    row.doc_no,
                    f"责令改正通知书 {row.doc_no} 的改正期限（{row.deadline.isoformat()}）尚未届满，届满后须复查",
                )
            )
            continue
        task = session.get(InspectionTask, row.follow_up_task_id) if row.follow_up_task_id else None
        if task is None or task.state not in (TaskState.CLOSED, TaskState.CANCELLED):
            label = task.task_no if task is not None else "复查任务"
            out.append(
                Obligation("follow_up_inspection", row.id or 0, row.doc_no, f"{row.doc_no} 的复查（{label}）尚未完成")
            )
    return out


def check_closing(session: Session, clue_id: int, actor: Actor, override_reason: str | None) -> list[Obligation]:
    """Refuse closing a clue with open obligations (rule ``clue_closing``), unless an allowed duty overrides it
    with a reason; returns the obligations that the override waived (journaled ``clue.close_overridden``)."""
    from cloud.workflow.duties import ClosingRuleError, duty_rules

    open_ = closing_obligations(session, clue_id)
    if not open_:
        return []
    rule = duty_rules().clue_closing
    texts = [o.text for o in open_]
    reason = (override_reason or "").strip()
    if not reason:
        raise ClosingRuleError(rule, texts, can_override=actor.has(*rule.override))
    if not actor.has(*rule.override):
        raise ClosingRuleError(rule, texts, can_override=False, tried_override=True)
    for o in open_:
        row = session.get(FollowUp, o.follow_up_id)
        if row is None:
            continue
        task = session.get(InspectionTask, row.follow_up_task_id) if row.follow_up_task_id else None
        if task is not None and task.state not in (TaskState.CLOSED, TaskState.CANCELLED, TaskState.SUBMITTED):
            # the waived 复查 is cancelled by the same person (who must be allowed to cancel tasks)
            apply_transition(
                session,
                TASK_MACHINE,
                task,
                "cancel",
                actor,
                reason=f"批准办结线索：{reason}"[:2000],
                payload={"task_no": task.task_no, "clue_id": task.clue_id},
            )
            staffing.release(session, "task", task.id or 0)
        row.state, row.waived_by, row.waived_reason = "waived", actor.username, reason[:1000]
        session.add(row)
    record(
        session,
        actor,
        "clue.close_overridden",
        "clue",
        clue_id,
        {
            "rule": rule.id,
            "rule_zh": rule.zh,
            "reason": reason,
            "obligations": texts,
            "doc_nos": sorted({o.doc_no for o in open_}),
            "title": "【监督】线索未履行完毕即办结（经批准）",
            "message": f"{actor.name} 以“{reason}”为由批准办结，免除：" + "；".join(texts),
        },
    )
    return open_


def follow_up_view(session: Session, clue_id: int) -> list[dict[str, object]]:
    rows = session.exec(select(FollowUp).where(FollowUp.clue_id == clue_id).order_by(col(FollowUp.id)))
    out: list[dict[str, object]] = []
    for row in rows:
        out.append(
            {
                "id": row.id,
                "doc_no": row.doc_no,
                "deadline": row.deadline.isoformat(),
                "state": row.state,
                "state_label": STATE_LABELS.get(row.state, row.state),
                "follow_up_task_id": row.follow_up_task_id,
                "waived_reason": row.waived_reason,
            }
        )
    return out


__all__ = [
    "FOLLOW_UP_METHOD",
    "FollowUp",
    "Obligation",
    "check_closing",
    "closing_obligations",
    "follow_up_view",
    "mark_done",
    "owe_follow_up",
    "run_due",
    "run_periodically",
    "schedule",
    "schedule_early",
]
