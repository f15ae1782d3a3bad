"""Command and dispatch (指挥调度, standard §8.4): a clue becomes an inspection task or an enforcement case source.

Routing: the department is the subject's jurisdiction (registry ``department_id``), else the site's, else the
configured default; people are picked by :func:`cloud.workflow.staffing.pick` (duty, department, recusals, open
workload; ≥2 per task and per case). Due dates: the statutory clock of the analysis decision when it has one
(e.g. ``complaint_accept``), else ``dispatch.task_due_working_days`` by severity on the working-day calendar.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlmodel import Session

from cloud.core.config import Settings
from cloud.registry.models import Site
from cloud.rules.library import packaged_catalogue
from cloud.workflow import paperwork, staffing
from cloud.workflow.analysis import Disposal
from cloud.workflow.calendar import default_calendar
from cloud.workflow.clues import Clue
from cloud.workflow.config import workflow_rules
from cloud.workflow.deadlines import compute_deadline
from cloud.workflow.models import EnforcementCase, InspectionTask, WorkOrder
from cloud.workflow.service import Actor, Conflict, Invalid, apply_transition
from cloud.workflow.states import CLUE_MACHINE, ClueState
from cloud.workflow.states import Role as Duty

_DOMAIN_BY_PREFIX = {
    "drug": "drug",
    "food": "food",
    "kitchen": "food",
    "elevator": "special_equipment",
    "boiler": "special_equipment",
    "pressure": "special_equipment",
    "special": "special_equipment",
}


@dataclass(slots=True)
class DispatchRequest:
    disposal: str | None = None  # inspect | open_case; default: the current analysis decision
    department_id: int | None = None
    assignees: list[int] = field(default_factory=list)
    items: list[str] = field(default_factory=list)
    method: str | None = None
    due_date: dt.date | None = None
    instructions: str = ""
    legal_basis: list[str] = field(default_factory=list)
    role: str | None = None
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class DispatchResult:
    task: InspectionTask | None
    case: EnforcementCase | None


def items_for(session: Session, clue: Clue) -> list[str]:
    catalogue = packaged_catalogue()
    items = [i.code for i in catalogue.items_for_alert(clue.category)]
    if items:
        return items
    domain = _DOMAIN_BY_PREFIX.get(clue.category.split("_")[0])
    if domain is None and clue.site_id:
        site = session.get(Site, clue.site_id)
        domain = site.category if site else None
    if domain:
        return [i.code for i in catalogue.items(domain=domain, key_only=True)]
    return []


def task_due(clue: Clue, deadline_id: str | None) -> tuple[dt.date, list[str]]:
    if deadline_id and deadline_id != "report_verify":
        d = compute_deadline(deadline_id, clue.first_seen_at)
        return d.due, list(d.warnings)
    days = workflow_rules().dispatch.task_due_working_days.get(clue.severity, 5)
    result = default_calendar().add_working_days(paperwork.today(), max(days, 1))
    return result.value, list(result.warnings)


def dispatch_clue(
    session: Session, clue: Clue, request: DispatchRequest, actor: Actor, settings: Settings | None = None
) -> DispatchResult:
    from cloud.registry.service import Deactivated, ensure_active
    from cloud.workflow.decisions import current_decision

    try:  # a deactivated (注销/停用) subject or site gets no new dispatch
        ensure_active(session, subject_id=clue.subject_id, site_id=clue.site_id, what="派发")
    except Deactivated as exc:
        raise Conflict(exc.message, code="deactivated") from None
    decision = current_decision(session, clue.id or 0)
    disposal = request.disposal or (decision.disposal if decision else None)
    if disposal not in (Disposal.INSPECT, Disposal.OPEN_CASE):
        raise Conflict(
            f"研判结论为“{disposal or '无'}”，只有“现场检查”或“登记案源”可以派发；请先改变研判结论 / only inspect or "
            "open_case can be dispatched",
            code="not_dispatchable",
        )
    if clue.state not in (ClueState.TRIAGED, ClueState.ANALYSING):
        raise Conflict(
            f"线索处于“{CLUE_MACHINE.state_label(clue.state)}”状态，不能派发 / clue in state {clue.state} cannot be "
            "dispatched",
            code="invalid_transition",
        )
    department_id = request.department_id or clue.department_id
    if department_id is None and not request.assignees:
        # no jurisdiction known: staff without a department may still take it (small bureaus)
        department_id = None
    apply_transition(
        session,
        CLUE_MACHINE,
        clue,
        "dispatch",
        actor,
        role=request.role,
        expected_version=request.expected_version,
        values={"department_id": department_id, "disposal": disposal},
        payload={"disposal": disposal, "department_id": department_id},
    )
    if disposal == Disposal.INSPECT:
        items = request.items or items_for(session, clue)
        if not items:
            raise Invalid(
                "无法根据线索类别确定检查项目，请在派发时指定 items / specify checklist items", code="items_required"
            )
        due, warnings = (
            (request.due_date, []) if request.due_date else task_due(clue, decision.deadline_id if decision else None)
        )
        members = staffing.pick(
            session,
            duty=Duty.INSPECTOR,
            count=workflow_rules().dispatch.inspectors_per_task,
            department_id=department_id,
            subject_id=clue.subject_id,
            explicit=request.assignees or None,
        )
        from cloud.workflow.inspection import create_task

        task = create_task(
            session,
            actor=actor,
            members=members,
            items=items,
            due_date=due,
            due_warnings=warnings,
            clue_id=clue.id,
            subject_id=clue.subject_id,
            site_id=clue.site_id,
            department_id=department_id,
            method=request.method,
            instructions=request.instructions or clue.title,
        )
        return DispatchResult(task, None)
    from cloud.workflow.enforcement import register_case

    order = session.get(WorkOrder, _first_order_id(session, clue))
    received = order.received_at if order else clue.first_seen_at
    case = register_case(
        session,
        settings,
        actor,
        source="clue",
        clue_id=clue.id,
        task_id=None,
        subject_id=clue.subject_id,
        party_name=clue.subject_name,
        department_id=department_id,
        summary=(order.facts if order else clue.description) or clue.title,
        legal_basis=request.legal_basis,
        received_at=received,
        officers=request.assignees or None,
    )
    return DispatchResult(None, case)


def _first_order_id(session: Session, clue: Clue) -> int:
    from sqlmodel import col, select

    from cloud.workflow.clues import ClueSource

    oid = session.exec(
        select(ClueSource.work_order_id)
        .where(ClueSource.clue_id == clue.id, col(ClueSource.work_order_id).is_not(None))
        .order_by(col(ClueSource.id))
    ).first()
    return oid or -1
