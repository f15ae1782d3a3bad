"""Random inspection plans (双随机、一公开): seed recorded first, draw by :mod:`cloud.workflow.draw`, list frozen,
tasks created per drawn subject, verification by anyone from the stored inputs, results exported as CSV.

Order of events (journal): ``plan.created`` (with the seed, before anything is drawn) → ``plan.drawn`` (record
hashes; the plan is frozen, a second draw is refused) → tasks ``task.created`` → ``plan.verified`` /
``plan.exported``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import asdict
from typing import Any

from sqlmodel import Session, col, select

from cloud.core.db import utcnow
from cloud.registry.models import MarketSubject
from cloud.rules.library import packaged_catalogue
from cloud.workflow import paperwork, staffing
from cloud.workflow.analysis import RiskGrade
from cloud.workflow.calendar import default_calendar
from cloud.workflow.deadlines import compute_deadline
from cloud.workflow.draw import (
    Assignment,
    DrawError,
    DrawInspector,
    DrawRecord,
    DrawSubject,
    draw,
    new_seed,
    verify_draw,
)
from cloud.workflow.inspection import CONCLUSION_LABELS, create_task
from cloud.workflow.models import InspectionTask, RandomPlan, Recusal
from cloud.workflow.service import Actor, Conflict, Invalid, NotFound, record
from cloud.workflow.states import TASK_MACHINE
from cloud.workflow.states import Role as Duty


def get_plan(session: Session, plan_id: int) -> RandomPlan:
    plan = session.get(RandomPlan, plan_id)
    if plan is None:
        raise NotFound(f"抽查计划 {plan_id} 不存在 / plan not found")
    return plan


def create_plan(
    session: Session,
    actor: Actor,
    *,
    name: str,
    seed: str | None = None,
    subject_ids: list[int] | None = None,
    inspector_ids: list[int] | None = None,
    department_id: int | None = None,
    domain: str | None = None,
    items: list[str] | None = None,
    due_date: dt.date | None = None,
) -> RandomPlan:
    if seed is not None and len(seed) < 16:
        raise Invalid("随机种子至少 16 个字符 / seed must have ≥16 characters")
    catalogue = packaged_catalogue()
    for code in items or []:
        try:
            catalogue.item(code)
        except KeyError:
            raise Invalid(f"检查项目 {code} 不在检查事项清单中 / unknown checklist item") from None
    plan = RandomPlan(
        name=name,
        seed=seed or new_seed(),
        subject_ids=subject_ids or [],
        inspector_ids=inspector_ids or [],
        department_id=department_id,
        domain=domain,
        items=items or [],
        due_date=due_date,
        created_by=actor.username,
    )
    session.add(plan)
    session.flush()
    record(
        session,
        actor,
        "plan.created",
        "plan",
        plan.id or 0,
        {
            "name": name,
            "seed": plan.seed,
            "seed_recorded_at": plan.seed_recorded_at.isoformat(),
            "subject_ids": plan.subject_ids,
            "inspector_ids": plan.inspector_ids,
            "department_id": department_id,
        },
    )
    return plan


def _inputs(session: Session, plan: RandomPlan) -> dict[str, Any]:
    query = select(MarketSubject).order_by(col(MarketSubject.id))
    if plan.subject_ids:
        query = query.where(col(MarketSubject.id).in_(plan.subject_ids))
    else:  # a deactivated (注销) subject is not in the pool
        query = query.where(col(MarketSubject.deactivated_at).is_(None))
        if plan.department_id is not None:
            query = query.where(MarketSubject.department_id == plan.department_id)
    subjects = list(session.exec(query))
    if plan.subject_ids and len(subjects) != len(set(plan.subject_ids)):
        raise Invalid("部分主体不存在 / some subjects do not exist")
    gone = [s.name for s in subjects if s.deactivated_at is not None]
    if gone:
        raise Conflict(f"市场主体已注销，不能列入抽查：{'、'.join(gone)}", code="deactivated")
    inspectors = staffing.directory(session, Duty.INSPECTOR)
    if plan.inspector_ids:
        inspectors = [a for a in inspectors if a.user_id in set(plan.inspector_ids)]
    elif plan.department_id is not None:
        inspectors = [a for a in inspectors if a.department_id in (None, plan.department_id)]
    recusals: dict[str, list[str]] = {}
    for rec in session.exec(select(Recusal).where(col(Recusal.subject_id).in_([s.id for s in subjects] or [-1]))):
        recusals.setdefault(str(rec.subject_id), []).append(str(rec.user_id))
    return {
        "subjects": [[str(s.id), s.risk_grade.value, s.name] for s in subjects],
        "inspectors": [[str(a.user_id), a.name] for a in inspectors],
        "recusals": {k: sorted(v) for k, v in sorted(recusals.items())},
    }


def _draw_args(inputs: dict[str, Any]) -> tuple[list[DrawSubject], list[DrawInspector], dict[str, list[str]]]:
    subjects = [DrawSubject(sid, RiskGrade(grade), name) for sid, grade, name in inputs["subjects"]]
    inspectors = [DrawInspector(iid, name) for iid, name in inputs["inspectors"]]
    return subjects, inspectors, inputs["recusals"]


def _record_from(data: dict[str, Any]) -> DrawRecord:
    values = dict(data)
    values["assignments"] = tuple(
        Assignment(a["subject_id"], RiskGrade(a["risk_grade"]), tuple(a["inspector_ids"])) for a in data["assignments"]
    )
    return DrawRecord(**values)


def draw_plan(session: Session, plan: RandomPlan, actor: Actor) -> RandomPlan:
    if plan.state != "draft":
        raise Conflict("抽查名单已冻结，不能重新抽取 / the drawn list is frozen", code="frozen")
    inputs = _inputs(session, plan)
    subjects, inspectors, recusals = _draw_args(inputs)
    try:
        rec = draw(f"plan-{plan.id}", plan.seed, subjects, inspectors, recusals=recusals)
    except DrawError as exc:
        raise Invalid(str(exc), code="draw_failed") from None
    today = paperwork.today()
    due = plan.due_date or default_calendar().add_working_days(today, 20).value
    catalogue = packaged_catalogue()
    items = plan.items or [i.code for i in catalogue.items(domain=plan.domain, key_only=True)]
    plan.inputs = inputs
    plan.record = {
        **asdict(rec),
        "assignments": [
            {"subject_id": a.subject_id, "risk_grade": a.risk_grade.value, "inspector_ids": list(a.inspector_ids)}
            for a in rec.assignments
        ],
    }
    plan.state = "drawn"
    plan.drawn_at = utcnow()
    plan.due_date = due
    plan.publish_due = compute_deadline("random_inspection_publication", due).due
    session.add(plan)
    session.flush()
    record(
        session,
        actor,
        "plan.drawn",
        "plan",
        plan.id or 0,
        {
            "seed": rec.seed,
            "algorithm": rec.algorithm,
            "population": rec.population,
            "drawn": rec.drawn,
            "inputs_hash": rec.inputs_hash,
            "result_hash": rec.result_hash,
            "record_hash": rec.record_hash,
        },
    )
    members_by_id = {a.user_id: a for a in staffing.directory(session, Duty.INSPECTOR)}
    loads = staffing.workloads(session, [int(i) for i, _ in inputs["inspectors"]])
    for a in rec.assignments:
        members = [staffing.StaffMember(members_by_id[int(i)], loads.get(int(i), 0), True) for i in a.inspector_ids]
        create_task(
            session,
            actor=actor,
            members=members,
            items=items,
            due_date=due,
            plan_id=plan.id,
            subject_id=int(a.subject_id),
            department_id=plan.department_id,
            method="双随机抽查",
            instructions=f"{plan.name}（随机抽查）",
        )
    return plan


def verify_plan(session: Session, plan: RandomPlan, actor: Actor) -> dict[str, Any]:
    if plan.state == "draft":
        raise Conflict("计划尚未抽取 / not drawn yet")
    rec = _record_from(plan.record)
    subjects, inspectors, recusals = _draw_args(plan.inputs)
    ok = verify_draw(rec, subjects, inspectors, recusals=recusals)
    tasks = session.exec(select(InspectionTask).where(InspectionTask.plan_id == plan.id)).all()
    drawn = sorted(a.subject_id for a in rec.assignments)
    tasks_match = sorted(str(t.subject_id) for t in tasks) == drawn
    record(session, actor, "plan.verified", "plan", plan.id or 0, {"valid": ok, "tasks_match": tasks_match})
    return {
        "valid": ok and tasks_match,
        "draw_reproduced": ok,
        "tasks_match": tasks_match,
        "record_hash": rec.record_hash,
        "seed": rec.seed,
        "algorithm": rec.algorithm,
    }


def export_csv(session: Session, plan: RandomPlan, actor: Actor) -> str:
    if plan.state == "draft":
        raise Conflict("计划尚未抽取 / not drawn yet")
    names = {sid: name for sid, _, name in plan.inputs["subjects"]}
    people = {iid: name for iid, name in plan.inputs["inspectors"]}
    tasks = {
        str(t.subject_id): t for t in session.exec(select(InspectionTask).where(InspectionTask.plan_id == plan.id))
    }
    subjects = {
        str(s.id): s
        for s in session.exec(select(MarketSubject).where(col(MarketSubject.id).in_([int(k) for k in names] or [-1])))
    }
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "计划",
            "主体名称",
            "统一社会信用代码",
            "风险等级",
            "检查人员",
            "任务编号",
            "任务状态",
            "检查结果",
            "完成日期",
            "随机种子",
            "抽取记录哈希",
        ]
    )
    for a in plan.record["assignments"]:
        task = tasks.get(a["subject_id"])
        subject = subjects.get(a["subject_id"])
        writer.writerow(
            [
                plan.name,
                names.get(a["subject_id"], ""),
                subject.uscc if subject else "",
                a["risk_grade"],
                "、".join(people.get(i, i) for i in a["inspector_ids"]),
                task.task_no if task else "",
                TASK_MACHINE.state_label(task.state) if task else "",
                CONCLUSION_LABELS.get(task.conclusion or "", "") if task else "",
                task.closed_at.astimezone(paperwork.BEIJING).date().isoformat() if task and task.closed_at else "",
                plan.seed,
                plan.record["record_hash"],
            ]
        )
    record(session, actor, "plan.exported", "plan", plan.id or 0, {"rows": len(plan.record["assignments"])})
    return out.getvalue()
