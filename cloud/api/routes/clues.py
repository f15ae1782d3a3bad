"""Clues (线索): collection from every channel, analysis, transitions, dispatch and the timeline.

* ``POST /clues/intake`` one 12315/12345/walk-in/letter/superior work order (422 names missing mandatory fields);
  ``POST /clues/intake/import`` a CSV or JSON file of work orders (format in docs/workflow.md);
  ``POST /clues`` a clue entered by staff or produced by analysis/inspection/enforcement/assessment.
* ``POST /clues/{id}/transitions`` any clue action (409 invalid or concurrent, 403 role, 422 reason);
  ``POST /clues/{id}/analyse`` re-run analysis; ``POST /clues/{id}/decision`` override with a reason;
  ``POST /clues/{id}/dispatch`` create the inspection task or case source.
* ``GET /clues/{id}/timeline`` the whole story from the journal.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, HTTPException, Query, UploadFile, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func
from sqlmodel import Session, col, select

from cloud.api.deps import SessionDep, SettingsDep, StaffUser
from cloud.api.routes.workflow import ActorDep, WorkflowRoute, case_view, dump, require, task_view
from cloud.core.db import utcnow
from cloud.core.models import DueDate
from cloud.core.refs import refers_to
from cloud.security.scoping import ScopeDep, scope_guard
from cloud.workflow import decisions, follow_up
from cloud.workflow.analysis import Disposal
from cloud.workflow.clues import (
    KIND_LABELS,
    TERMINAL_STATES,
    Clue,
    CluePublic,
    ClueSource,
    ClueSourcePublic,
    CluesPublic,
    ClueStatus,
    place_label,
)
from cloud.workflow.complaint_view import similar_open_clues, work_orders_of
from cloud.workflow.dispatch import DispatchRequest, dispatch_clue
from cloud.workflow.intake import ClueIn, WorkOrderIn, accept_due_view, create_manual_clue, import_orders, intake
from cloud.workflow.models import AnalysisDecision, ClueReferral, EnforcementCase, InspectionTask, WorkOrder
from cloud.workflow.referral import department_name
from cloud.workflow.service import Conflict, NotFound, apply_transition, clue_timeline, record
from cloud.workflow.states import CLUE_MACHINE, ClueState
from cloud.workflow.states import Role as Duty

router = APIRouter(
    prefix="/clues",
    tags=["clues"],
    route_class=WorkflowRoute,
    dependencies=[Depends(scope_guard)],  # jurisdiction
)


def _clue(session: Any, clue_id: int) -> Clue:
    clue: Clue | None = session.get(Clue, clue_id)
    if clue is None:
        raise NotFound(f"线索 {clue_id} 不存在 / clue not found")
    return clue


@router.get("", summary="线索列表 (filters: status, state, kind, site, subject, category, severity, since)")
def get_clues(
    session: SessionDep,
    _: StaffUser,
    scope: ScopeDep,
    status_: Annotated[ClueStatus | None, Query(alias="status")] = None,
    state: ClueState | None = None,
    kind: str | None = None,
    site_id: str | None = None,
    subject_id: int | None = None,
    category: str | None = None,
    severity: str | None = None,
    sensor_id: str | None = None,
    since: datetime | None = None,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> CluesPublic:
    conditions: list[Any] = []
    if status_ is not None:
        conditions.append(Clue.status == status_)
    if state is not None:
        conditions.append(Clue.state == state)
    if kind:
        conditions.append(Clue.kind == kind)
    if site_id:
        conditions.append(Clue.site_id == site_id)
    if subject_id is not None:
        conditions.append(Clue.subject_id == subject_id)
    if category:
        conditions.append(Clue.category == category)
    if severity:
        conditions.append(Clue.severity == severity)
    if sensor_id:
        conditions.append(Clue.sensor_id == sensor_id)
    if since is not None:
        conditions.append(col(Clue.last_seen_at) >= since)
    if (in_scope := scope.where(Clue.department_id)) is not None:
        conditions.append(in_scope)
    total = session.exec(select(func.count()).select_from(Clue).where(*conditions)).one()
    rows = session.exec(select(Clue).where(*conditions).order_by(col(Clue.id).desc()).offset(offset).limit(limit))
    return CluesPublic(data=[CluePublic.model_validate(c) for c in rows], count=int(total))


# ---------------------------------------------------------------- intake
@router.post("/intake", status_code=status.HTTP_201_CREATED, summary="受理工单（12315/12345/来访/来信/交办）")
def post_intake(session: SessionDep, actor: ActorDep, body: WorkOrderIn) -> dict[str, Any]:
    require(actor, Duty.INTAKE_CLERK, Duty.DISPATCHER, Duty.ANALYST, what="受理工单")
    result = intake(session, body, actor)
    session.commit()
    if result.referral is not None:  # 移送: the receipt only; the clue is the competent department's
        return {
            "work_order_id": result.order.id,
            **accept_due_view(result.order),
            "created": True,
            "folded": False,
            "clue": None,
            "referral": referral_view(session, result.referral),
        }
    return {
        "work_order_id": result.order.id,
        **accept_due_view(result.order),
        "created": result.created,
        "folded": not result.created,
        "clue": CluePublic.model_validate(result.clue).model_dump(mode="json"),
    }


class ReferralPublic(BaseModel):
    """A referral (移送) as both sides see it: the receipt of the department that received the work order, the
    notice of the department that got the clue (``clue_id`` only for the latter)."""

    id: int
    direction: Literal["out", "in"]
    direction_label: str
    work_order_id: int
    kind_label: str
    respondent: str | None
    from_department: str | None
    to_department: str | None
    referred_by: str
    referred_at: datetime
    clue_id: int | None = Field(default=None, description="仅接收移送的部门可见")
    message: str


def referral_view(session: Session, row: ClueReferral, scope: Any = None) -> ReferralPublic:
    outgoing = scope is None or not scope.allows(row.to_department_id)
    source = department_name(session, row.from_department_id)
    target = department_name(session, row.to_department_id)
    return ReferralPublic(
        id=row.id or 0,
        direction="out" if outgoing else "in",
        direction_label="移出（回执）" if outgoing else "移入",
        work_order_id=row.work_order_id,
        kind_label=KIND_LABELS.get(row.kind, row.kind),
        respondent=row.respondent,
        from_department=source,
        to_department=target,
        referred_by=row.referred_by,
        referred_at=row.referred_at,
        clue_id=None if outgoing else row.clue_id,
        message=f"被投诉（举报）主体属{target}管辖（属地管辖），已移送{target}作为新线索办理"
        if outgoing
        else f"由{source}移送（属地管辖）",
    )


@router.get("/referrals", summary="移送记录：本部门移出的回执与移入的线索（属地管辖）")
def get_referrals(session: SessionDep, _: StaffUser, scope: ScopeDep) -> list[ReferralPublic]:
    rows = session.exec(select(ClueReferral).order_by(col(ClueReferral.id).desc())).all()
    return [
        referral_view(session, r, scope)
        for r in rows
        if scope.county or scope.allows(r.from_department_id) or scope.allows(r.to_department_id)
    ]


@router.post("/intake/import", summary="批量导入工单（CSV / JSON）")
async def post_intake_import(
    session: SessionDep,
    actor: ActorDep,
    file: Annotated[UploadFile, File(description="CSV（UTF-8，首行为列名）或 JSON")],
    channel: Annotated[str | None, Query(description="文件未给出渠道时使用，例如 hotline_12345")] = None,
) -> dict[str, Any]:
    require(actor, Duty.INTAKE_CLERK, Duty.DISPATCHER, what="导入工单")
    content = await file.read()
    report = import_orders(session, content, file.filename or "upload.csv", actor, default_channel=channel)
    record(
        session,
        actor,
        "work_order.imported",
        "import",
        file.filename or "upload",
        {
            "received": report.received,
            "accepted": report.accepted,
            "duplicates": report.duplicates,
            "errors": len(report.errors),
        },
    )
    session.commit()
    return report.__dict__


@router.get("/work-orders/{order_id}", summary="工单详情（含投诉人个人信息，仅限受理、督查人员）")
def get_work_order(session: SessionDep, actor: ActorDep, order_id: int) -> dict[str, Any]:
    require(actor, Duty.INTAKE_CLERK, Duty.SUPERVISOR, Duty.DISPATCHER, what="查看工单")
    order = session.get(WorkOrder, order_id)
    if order is None:
        raise NotFound(f"工单 {order_id} 不存在")
    return dump(order)


@router.post("", status_code=status.HTTP_201_CREATED, summary="登记线索（来访、交办、研判/检查/执法/考核发现）")
def post_clue(session: SessionDep, actor: ActorDep, body: ClueIn) -> dict[str, Any]:
    require(
        actor,
        Duty.INTAKE_CLERK,
        Duty.ANALYST,
        Duty.DISPATCHER,
        Duty.INSPECTOR,
        Duty.ENFORCEMENT_OFFICER,
        Duty.SUPERVISOR,
        what="登记线索",
    )
    clue, created = create_manual_clue(session, body, actor)
    session.commit()
    return {"created": created, "clue": CluePublic.model_validate(clue).model_dump(mode="json")}


# ---------------------------------------------------------------- one clue
@router.get("/{clue_id}", summary="线索详情（来源、研判结论、任务、案件、可执行操作）")
def get_clue(session: SessionDep, actor: ActorDep, _: StaffUser, clue_id: int) -> dict[str, Any]:
    clue = _clue(session, clue_id)
    sources = session.exec(select(ClueSource).where(ClueSource.clue_id == clue_id).order_by(col(ClueSource.id)))
    decision = decisions.current_decision(session, clue_id)
    tasks = session.exec(select(InspectionTask).where(InspectionTask.clue_id == clue_id))
    cases = session.exec(select(EnforcementCase).where(EnforcementCase.clue_id == clue_id))
    return {
        **CluePublic.model_validate(clue).model_dump(mode="json"),
        "state_label": CLUE_MACHINE.state_label(clue.state),
        "place": place_label(session, clue.site_id, clue.device_id, clue.sensor_id) if clue.site_id else None,
        "sources": [ClueSourcePublic.model_validate(s).model_dump(mode="json") for s in sources],
        "decision": dump(decision) if decision else None,
        "tasks": [task_view(session, t) for t in tasks],
        "cases": [case_view(session, c) for c in cases],
        "follow_ups": follow_up.follow_up_view(session, clue_id),
        "work_orders": work_orders_of(session, clue_id),  # complainant contact masked by the PII middleware
        "similar": similar_open_clues(session, clue) if clue.state not in TERMINAL_STATES else [],
        "closing_obligations": [o.text for o in follow_up.closing_obligations(session, clue_id)],
        "allowed_actions": sorted({a.value for d in actor.duties for a in CLUE_MACHINE.allowed_actions(clue.state, d)}),
    }


class ClueActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal[
        "triage", "analyse", "dispatch", "handle_directly", "dismiss", "merge", "start", "recall", "close", "reopen"
    ]
    reason: str | None = Field(default=None, max_length=2000, description="理由；办结时为办理结果")
    role: Duty | None = None
    expected_version: int | None = None
    merge_into: int | None = Field(default=None, description="merge: 并入的线索")
    override_reason: str | None = Field(
        default=None,
        max_length=1000,
        description="close: 有未履行义务（改正期限未届满、复查未完成）时批准办结的理由（duties.toml clue_closing）",
    )


@router.post("/{clue_id}/transitions", summary="线索状态操作（409 非法或并发，403 角色不符，422 缺理由）")
def post_clue_transition(session: SessionDep, actor: ActorDep, clue_id: int, body: ClueActionIn) -> CluePublic:
    clue = _clue(session, clue_id)
    values: dict[str, Any] = {}
    payload: dict[str, Any] = {}
    if body.action == "dispatch":
        raise Conflict(
            "派发请使用 POST /clues/{id}/dispatch（将创建检查任务或案源） / use the dispatch endpoint",
            code="use_dispatch",
        )
    if body.action == "merge":
        target = _clue(session, body.merge_into) if body.merge_into else None
        if (
            target is None
            or target.id == clue.id
            or target.state in (ClueState.CLOSED, ClueState.NO_ACTION, ClueState.MERGED)
        ):
            raise Conflict("合并目标须为另一条未办结线索 / merge_into must be another open clue", code="bad_merge")
        values.update(merged_into_id=target.id, status=ClueStatus.CLOSED.value, closed_at=utcnow())
        payload["merge_into"] = target.id
    elif body.action in ("close", "dismiss"):
        if body.action == "close":
            waived = follow_up.check_closing(session, clue_id, actor, body.override_reason)
            if waived:
                payload["override_reason"] = body.override_reason
        values.update(status=ClueStatus.CLOSED.value, closed_at=utcnow(), result=body.reason)
    elif body.action == "reopen":
        values.update(status=ClueStatus.OPEN.value, closed_at=None)
    apply_transition(
        session,
        CLUE_MACHINE,
        clue,
        body.action,
        actor,
        reason=body.reason,
        role=body.role.value if body.role else None,
        expected_version=body.expected_version,
        values=values,
        payload=payload,
    )
    if body.action == "merge" and body.merge_into:
        target = _clue(session, body.merge_into)
        target.source_count = target.source_count + clue.source_count
        session.add(target)
        record(session, actor, "clue.absorbed", "clue", target.id or 0, {"merged_clue": clue.id})
    session.commit()
    return CluePublic.model_validate(clue)


class SubjectLinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject_id: Annotated[int, refers_to("subject_id"), Field(ge=1)]
    reason: str = Field(min_length=2, max_length=500, description="例如 被投诉人即该药店（名称简称）")


@router.post("/{clue_id}/subject", summary="关联已登记的市场主体（被投诉人未自动匹配时；须填写理由）")
def post_subject_link(session: SessionDep, actor: ActorDep, clue_id: int, body: SubjectLinkIn) -> CluePublic:
    from cloud.workflow.complaint_view import link_subject
    from cloud.workflow.service import require_duty

    require_duty(actor, Duty.INTAKE_CLERK, Duty.ANALYST, Duty.DISPATCHER, what="关联市场主体")
    clue = link_subject(session, _clue(session, clue_id), body.subject_id, actor, body.reason)
    session.commit()
    return CluePublic.model_validate(clue)


class EarlyFollowUpIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=2, max_length=1000, description="例如 当事人报告已整改，申请复查")


@router.post("/{clue_id}/follow-ups/{follow_up_id}/schedule", summary="提前复查（当事人报告已整改；须填写理由）")
def post_early_follow_up(
    session: SessionDep, actor: ActorDep, clue_id: int, follow_up_id: int, body: EarlyFollowUpIn
) -> dict[str, Any]:
    _clue(session, clue_id)
    row = session.get(follow_up.FollowUp, follow_up_id)
    if row is None or row.clue_id != clue_id:
        raise NotFound(f"复查记录 {follow_up_id} 不属于线索 {clue_id} / follow-up not found")
    task = follow_up.schedule_early(session, follow_up_id, actor, body.reason)
    session.commit()
    return task_view(session, task)


@router.post("/{clue_id}/analyse", summary="（重新）研判")
def post_analyse(session: SessionDep, actor: ActorDep, clue_id: int) -> dict[str, Any]:
    from cloud.workflow.service import require_duty

    require_duty(actor, Duty.ANALYST, Duty.DISPATCHER, Duty.SUPERVISOR, what="研判")
    clue = _clue(session, clue_id)
    row = decisions.analyse(session, clue, actor)
    session.commit()
    return dump(row)


class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    disposal: Disposal
    reason: str = Field(min_length=2, max_length=1000)


@router.post("/{clue_id}/decision", summary="改变研判结论（须填写理由）")
def post_override(session: SessionDep, actor: ActorDep, clue_id: int, body: OverrideIn) -> dict[str, Any]:
    row = decisions.override(session, _clue(session, clue_id), body.disposal, body.reason, actor)
    session.commit()
    return dump(row)


@router.get("/{clue_id}/decisions", summary="研判记录（含被改判的）")
def get_decisions(session: SessionDep, _: StaffUser, clue_id: int) -> list[dict[str, Any]]:
    rows = session.exec(
        select(AnalysisDecision).where(AnalysisDecision.clue_id == clue_id).order_by(col(AnalysisDecision.id))
    )
    return [dump(r) for r in rows]


class DispatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    disposal: Literal["inspect", "open_case"] | None = Field(default=None, description="默认：当前研判结论")
    department_id: Annotated[int | None, refers_to("department_id")] = None
    assignees: list[Annotated[int, refers_to("user_id")]] = Field(
        default_factory=list, description="指定人员（默认按辖区、回避、工作量自动分派）"
    )
    items: list[str] = Field(default_factory=list, description="检查项目（默认按线索类别）")
    method: str | None = Field(default=None, max_length=40)
    due_date: DueDate | None = Field(default=None, description="办理期限（今天至三年内；默认按期限规则）")
    instructions: str = Field(default="", max_length=2000)
    legal_basis: list[str] = Field(default_factory=list)
    role: Duty | None = None
    expected_version: int | None = None


@router.post("/{clue_id}/dispatch", summary="派发：生成检查任务或登记案源")
def post_dispatch(
    session: SessionDep, settings: SettingsDep, actor: ActorDep, clue_id: int, body: DispatchIn
) -> dict[str, Any]:
    clue = _clue(session, clue_id)
    data = body.model_dump()
    data["role"] = body.role.value if body.role else None
    result = dispatch_clue(session, clue, DispatchRequest(**data), actor, settings)
    session.commit()
    return {
        "clue": CluePublic.model_validate(clue).model_dump(mode="json"),
        "task": task_view(session, result.task) if result.task else None,
        "case": case_view(session, result.case) if result.case else None,
    }


@router.get("/{clue_id}/timeline", summary="线索全过程时间线（来自日志）")
def get_timeline(session: SessionDep, _: StaffUser, clue_id: int) -> list[dict[str, Any]]:
    clue = session.get(Clue, clue_id)
    if clue is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "线索不存在")
    events = clue_timeline(session, clue_id)
    names = actor_names(session, {e.actor for e in events}, site_id=clue.site_id)
    return [
        {
            "id": e.id,
            "ts": e.ts.isoformat(),
            "actor": e.actor,
            "actor_name": names.get(e.actor, e.actor),
            "action": e.action,
            "target_type": e.target_type,
            "target_id": e.target_id,
            "outcome": e.outcome,
            "payload": e.payload,
        }
        for e in events
    ]


def actor_names(session: Session, actors: set[str], *, site_id: str | None = None) -> dict[str, str]:
    """Journal actors as a person reads them: people by their real names, the system and devices in Chinese; an
    edge agent by the name of its site (where it last reported, else ``site_id``: the site the events are about),
    never by its id."""
    from cloud.core.users import User
    from cloud.presence import AgentPresence
    from cloud.registry.models import Site

    users = [a for a in actors if ":" not in a and a not in ("system", "kiosk")]
    found = session.exec(select(User).where(col(User.username).in_(users or ["-"]))).all() if users else []
    names = {u.username: u.full_name or u.username for u in found}
    for actor in actors:
        if actor == "system":
            names[actor] = "系统"
        elif actor == "kiosk":
            names[actor] = "自助终端"
        elif actor.startswith("agent:"):
            seen = session.exec(
                select(AgentPresence.site_id).where(AgentPresence.agent_id == actor.removeprefix("agent:"))
            ).first()
            site = session.get(Site, seen or site_id) if (seen or site_id) else None
            names[actor] = f"边缘设备（{site.name}）" if site is not None else "边缘设备"
    return names
