"""Workflow API: inspection tasks, enforcement cases, staff duties and recusals, risk grades, random-inspection
plans, and the state machines for the UI. Clues are in :mod:`cloud.api.routes.clues`, documents in
:mod:`cloud.api.routes.documents`.

Every route here uses :class:`WorkflowRoute`, which turns a :class:`~cloud.workflow.service.WorkflowError` into
``{"detail": <Chinese message / English>, "code": ..., ...}`` with its status: 409 invalid or concurrent
transition, 403 wrong role, 422 missing reason or invalid input, 404 unknown id.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Query, Request, Response, UploadFile, status
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import inspect as sa_inspect
from sqlmodel import col, select

from cloud.api.deps import CurrentUser, SessionDep, SettingsDep, StaffUser, StoreDep
from cloud.core.models import BoundedDate, DueDate
from cloud.core.refs import refers_to
from cloud.core.users import User
from cloud.registry.models import MarketSubject
from cloud.security.scoping import ScopeDep, county_wide, scope_guard
from cloud.workflow import enforcement, inspection, paperwork, penalty, random_inspection, staffing
from cloud.workflow.deadlines import date_certainty
from cloud.workflow.decisions import recompute_all, recompute_risk
from cloud.workflow.duties import admin_areas, check_grant
from cloud.workflow.models import (
    DocumentRecord,
    EnforcementCase,
    InspectionTask,
    RandomPlan,
    Recusal,
    RiskAssessmentRecord,
    StaffProfile,
)
from cloud.workflow.money import Yuan, format_yuan
from cloud.workflow.penalty import StepInput
from cloud.workflow.service import Actor, Forbidden, NotFound, WorkflowError, actor_for, record
from cloud.workflow.states import CASE_MACHINE, MACHINES, ROLE_LABELS, TASK_MACHINE, TaskState
from cloud.workflow.states import Role as Duty
from cloud.workflow.task_site import check_in_view


class WorkflowRoute(APIRoute):
    """Converts workflow errors into JSON answers with their status (409/403/422/404)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def wrapped(request: Request) -> Response:
            try:
                return await handler(request)
            except WorkflowError as exc:
                return JSONResponse(
                    status_code=exc.status, content={"detail": exc.message, "code": exc.code, **exc.extra}
                )

        return wrapped


def get_actor(session: SessionDep, user: CurrentUser) -> Actor:
    return actor_for(session, user)


ActorDep = Annotated[Actor, Depends(get_actor)]
router = APIRouter(tags=["workflow"], route_class=WorkflowRoute, dependencies=[Depends(scope_guard)])  # jurisdiction


def require(actor: Actor, *duties: Duty, what: str) -> None:
    if not actor.has(*duties):
        names = "、".join(ROLE_LABELS[d] for d in duties)
        raise Forbidden(f"“{what}”须由{names}办理 / {what} needs one of {[d.value for d in duties]}")


def dump(row: Any) -> dict[str, Any]:
    """A table row as JSON-ready dict (reloading attributes expired by a commit)."""
    state = sa_inspect(row)
    if state.expired_attributes and state.session is not None:
        state.session.refresh(row)
    data: dict[str, Any] = row.model_dump(mode="json")
    return data


# ---------------------------------------------------------------- state machines (for the UI)
@router.get(
    "/workflow/machines", summary="状态机：状态、操作、角色", dependencies=[county_wide("state machine definitions")]
)
def get_machines(_: StaffUser) -> dict[str, Any]:
    return {
        name: {
            "label": m.label,
            "initial": m.initial.value,
            "states": {s.value: m.state_labels[s] for s in m.states},
            "actions": {a.value: m.action_labels[a] for a in m.actions},
            "transitions": [
                {
                    "from": sorted(s.value for s in t.sources),
                    "action": t.action.value,
                    "to": t.target.value,
                    "roles": sorted(r.value for r in t.roles),
                    "requires_reason": t.requires_reason,
                }
                for t in m.transitions
            ],
        }
        for name, m in MACHINES.items()
    }


@router.get("/workflow/me", summary="当前用户的业务职责", dependencies=[county_wide("the caller's own duties")])
def get_me(actor: ActorDep) -> dict[str, Any]:
    return {
        "username": actor.username,
        "user_id": actor.user_id,
        "duties": sorted(d.value for d in actor.duties),
        "department_id": actor.department_id,
    }


# ---------------------------------------------------------------- staff and recusals
class StaffIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    duties: list[Duty] = Field(description="业务职责（状态机角色）")
    department_id: Annotated[int | None, refers_to("department_id")] = None
    cert_no: str | None = Field(default=None, max_length=40)
    active: bool = True


@router.get(
    "/staff",
    summary="人员目录（职责、部门、在办工作量）",
    dependencies=[county_wide("the bureau's staff directory (draws and assignments pick from it)")],
)
def get_staff(session: SessionDep, _: StaffUser) -> list[dict[str, Any]]:
    users = session.exec(select(User).where(User.is_active == True).order_by(col(User.id))).all()  # noqa: E712
    actors = [actor_for(session, u) for u in users]
    loads = staffing.workloads(session, [a.user_id for a in actors if a.user_id is not None])
    return [
        {
            "user_id": a.user_id,
            "username": a.username,
            "name": a.name,
            "duties": sorted(d.value for d in a.duties),
            "department_id": a.department_id,
            "cert_no": a.cert_no,
            "open_workload": loads.get(a.user_id or 0, 0),
        }
        for a in actors
    ]


@router.put(
    "/staff/{user_id}",
    summary="设置人员职责、部门、执法证号（管理员）",
    dependencies=[county_wide("staff administration: system administrator only")],
)
def put_staff(session: SessionDep, actor: ActorDep, user: CurrentUser, user_id: int, body: StaffIn) -> dict[str, Any]:
    if "staff" not in admin_areas(user.role):  # [administration.staff] of duties.toml
        raise Forbidden("无权限：“人员与职责”管理须由系统管理员办理（职责规则 administration.staff） / admin only")
    target = session.get(User, user_id)
    if target is None:
        raise NotFound(f"用户 {user_id} 不存在")
    check_grant(target.role, [d for d in body.duties if d is not Duty.SYSTEM])  # 三员分立, grants (duties.toml)
    profile = session.exec(select(StaffProfile).where(StaffProfile.user_id == user_id)).first() or StaffProfile(
        user_id=user_id
    )
    profile.duties = [d.value for d in body.duties if d is not Duty.SYSTEM]
    profile.department_id, profile.cert_no, profile.active = body.department_id, body.cert_no, body.active
    session.add(profile)
    session.flush()
    record(session, actor, "staff.updated", "user", user_id, body.model_dump(mode="json"))
    session.commit()
    return dump(profile)


class RecusalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: Annotated[int, refers_to("user_id")]
    subject_id: Annotated[int, refers_to("subject_id")]
    reason: str = Field(min_length=2, max_length=300)


@router.post("/recusals", status_code=status.HTTP_201_CREATED, summary="登记回避（利害关系）")
def post_recusal(session: SessionDep, actor: ActorDep, body: RecusalIn) -> dict[str, Any]:
    require(actor, Duty.DEPARTMENT_HEAD, Duty.BUREAU_HEAD, Duty.SUPERVISOR, what="登记回避")
    if session.get(User, body.user_id) is None or session.get(MarketSubject, body.subject_id) is None:
        raise NotFound("用户或主体不存在")
    existing = session.exec(
        select(Recusal).where(Recusal.user_id == body.user_id, Recusal.subject_id == body.subject_id)
    ).first()
    row = existing or Recusal(**body.model_dump(), created_by=actor.username)
    session.add(row)
    session.flush()
    record(session, actor, "recusal.recorded", "subject", body.subject_id, body.model_dump())
    session.commit()
    return dump(row)


@router.get("/recusals", summary="回避名单")
def get_recusals(
    session: SessionDep, _: StaffUser, scope: ScopeDep, subject_id: int | None = None
) -> list[dict[str, Any]]:
    query = select(Recusal)
    if (in_scope := scope.where(MarketSubject.department_id)) is not None:
        query = query.join(MarketSubject, col(MarketSubject.id) == Recusal.subject_id).where(in_scope)
    if subject_id is not None:
        query = query.where(Recusal.subject_id == subject_id)
    return [dump(r) for r in session.exec(query.order_by(col(Recusal.id)))]


# ---------------------------------------------------------------- risk grades
@router.post("/risk/subjects/{subject_id}/recompute", summary="重新评定主体风险等级（按需）")
def post_risk_recompute(session: SessionDep, actor: ActorDep, subject_id: int) -> dict[str, Any]:
    require(actor, Duty.ANALYST, Duty.SUPERVISOR, Duty.BUREAU_HEAD, Duty.DEPARTMENT_HEAD, what="风险评级")
    subject = session.get(MarketSubject, subject_id)
    if subject is None:
        raise NotFound(f"市场主体 {subject_id} 不存在")
    row = recompute_risk(session, subject, actor, trigger="on_demand")
    session.commit()
    return dump(row)


@router.get("/risk/subjects/{subject_id}", summary="主体风险评级记录（含理由）")
def get_risk(session: SessionDep, _: StaffUser, subject_id: int) -> list[dict[str, Any]]:
    rows = session.exec(
        select(RiskAssessmentRecord)
        .where(RiskAssessmentRecord.subject_id == subject_id)
        .order_by(col(RiskAssessmentRecord.id).desc())
    )
    return [dump(r) for r in rows]


@router.post("/risk/recompute", summary="全部主体重新评级")
def post_risk_all(request: Request, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    require(actor, Duty.SUPERVISOR, Duty.BUREAU_HEAD, what="全部重新评级")
    # This request's own session took the write lock (BEGIN IMMEDIATE) to load the actor: end it first, or the
    # batches below wait on their own request until the busy timeout ("database is locked").
    session.commit()
    return recompute_all(request.app.state.engine, trigger="on_demand")


# ---------------------------------------------------------------- inspection tasks
class TaskActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["accept", "decline", "reassign", "check_in", "submit", "return", "close", "cancel"]
    reason: str | None = Field(default=None, max_length=2000)
    role: Duty | None = None
    expected_version: int | None = None
    check_in: dict[str, Any] | None = Field(default=None, description="位置：{lat, lon, note}")
    assignees: list[Annotated[int, refers_to("user_id")]] = Field(
        default_factory=list, description="reassign: 指定人员"
    )
    findings: str = Field(default="", max_length=4000, description="submit: 现场检查情况")
    party_opinion: str = Field(default="", max_length=2000, description="submit: 当事人意见")


class ResultIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Literal["pass", "fail", "na"]
    grade: str | None = Field(default=None, description="违法行为等级（默认：检查项目的默认等级）")
    note: str = Field(default="", max_length=2000)


def task_view(session: Any, task: InspectionTask, actor: Actor | None = None) -> dict[str, Any]:
    data = dump(task)
    data["state_label"] = TASK_MACHINE.state_label(task.state)
    data["assignees"] = staffing.assignees(session, "task", task.id or 0)
    data["assignee_names"] = [a.name for a, _ in inspection.officers_of(session, "task", task.id or 0)]
    data["conclusion_label"] = inspection.conclusion_label(task)
    data["check_in_view"] = check_in_view(task)
    data["due_certainty"] = date_certainty(task.due_date, task.created_at.date()) if task.due_date else None
    data["results"] = [dump(r) for r in inspection.results(session, task.id or 0)]
    data["documents"] = [
        {"id": d.id, "kind": d.kind, "title": d.title, "doc_no": d.doc_no, "sha256": d.sha256}
        for d in session.exec(select(DocumentRecord).where(DocumentRecord.task_id == task.id))
    ]
    if actor is not None:
        data["allowed_actions"] = sorted(
            {a.value for d in actor.duties for a in TASK_MACHINE.allowed_actions(task.state, d)}
        )
    return data


@router.get("/tasks", summary="检查任务列表")
def get_tasks(
    session: SessionDep,
    actor: ActorDep,
    _: StaffUser,
    scope: ScopeDep,
    state: str | None = None,
    clue_id: int | None = None,
    plan_id: int | None = None,
    mine: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    query = select(InspectionTask)
    if state:
        query = query.where(InspectionTask.state == state)
    if clue_id is not None:
        query = query.where(InspectionTask.clue_id == clue_id)
    if plan_id is not None:
        query = query.where(InspectionTask.plan_id == plan_id)
    if (in_scope := scope.where(InspectionTask.department_id)) is not None:
        query = query.where(in_scope)
    tasks = list(session.exec(query.order_by(col(InspectionTask.id).desc()).limit(limit)))
    if mine:
        tasks = [t for t in tasks if actor.user_id in staffing.assignees(session, "task", t.id or 0)]
    return [task_view(session, t) for t in tasks]


@router.get("/tasks/{task_id}", summary="检查任务详情（含场所、地址、导航链接、相关最新读数、签到位置）")
def get_task(session: SessionDep, store: StoreDep, actor: ActorDep, _: StaffUser, task_id: int) -> dict[str, Any]:
    from cloud.workflow.task_site import site_brief

    task = inspection.get_task(session, task_id)
    return {**task_view(session, task, actor), "site": site_brief(session, store, task), **_declined(session, task)}


def _declined(session: Any, task: InspectionTask) -> dict[str, Any]:
    """Why and by whom a declined task was sent back (the dispatcher re-dispatches it)."""
    if task.state != TaskState.DECLINED:
        return {}
    from cloud import journal
    from cloud.api.routes.clues import actor_names

    event = session.exec(
        select(journal.JournalEvent)
        .where(
            journal.JournalEvent.target_type == "task",
            journal.JournalEvent.target_id == str(task.id),
            journal.JournalEvent.action == "task.transition",
        )
        .order_by(col(journal.JournalEvent.id).desc())
    ).first()
    if event is None or (event.payload or {}).get("to") != TaskState.DECLINED:
        return {}
    return {
        "decline_reason": event.payload.get("reason"),
        "declined_by": actor_names(session, {event.actor}).get(event.actor, event.actor),
    }


@router.post("/tasks/{task_id}/transitions", summary="检查任务操作：接收、签到、提交、审核完结…")
def post_task_transition(
    session: SessionDep, settings: SettingsDep, actor: ActorDep, task_id: int, body: TaskActionIn
) -> dict[str, Any]:
    task = inspection.get_task(session, task_id)
    inspection.task_action(
        session,
        settings,
        task,
        body.action,
        actor,
        reason=body.reason,
        role=body.role.value if body.role else None,
        expected_version=body.expected_version,
        check_in=body.check_in,
        assignees=body.assignees,
        findings=body.findings,
        party_opinion=body.party_opinion,
    )
    session.commit()
    return task_view(session, task, actor)


@router.put("/tasks/{task_id}/results/{item_code}", summary="记录检查项目结果")
def put_task_result(
    session: SessionDep, actor: ActorDep, task_id: int, item_code: str, body: ResultIn
) -> dict[str, Any]:
    task = inspection.get_task(session, task_id)
    row = inspection.record_result(
        session, task, actor, item_code=item_code, outcome=body.outcome, grade=body.grade, note=body.note
    )
    session.commit()
    return dump(row)


@router.post("/tasks/{task_id}/results/{item_code}/photos", status_code=201, summary="上传检查照片")
async def post_task_photo(
    session: SessionDep,
    settings: SettingsDep,
    actor: ActorDep,
    task_id: int,
    item_code: str,
    file: Annotated[UploadFile, File(description="照片 JPEG/PNG")],
) -> dict[str, Any]:
    data = await file.read()
    task = inspection.get_task(session, task_id)
    sha = inspection.add_photo(session, settings, task, actor, item_code=item_code, data=data)
    session.commit()
    return {"sha256": sha, "url": f"/api/v1/evidence/{sha}"}


# ---------------------------------------------------------------- enforcement cases
class CaseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject_id: Annotated[int | None, refers_to("subject_id")] = None
    party_name: str | None = Field(default=None, max_length=200)
    department_id: Annotated[int | None, refers_to("department_id")] = None
    summary: str = Field(min_length=2, max_length=4000)
    legal_basis: list[str] = Field(default_factory=list)
    received_at: AwareDatetime | None = None
    officers: list[Annotated[int, refers_to("user_id")]] = Field(default_factory=list)
    clue_id: Annotated[int | None, refers_to("clue_id")] = None

    @field_validator("received_at")
    @classmethod
    def _plausible(cls, value: dt.datetime | None) -> dt.datetime | None:  # deadlines are computed from it
        now = dt.datetime.now(dt.UTC)
        if value is not None and not now - dt.timedelta(days=3 * 365) <= value <= now + dt.timedelta(days=1):
            raise ValueError("received_at 须在近三年内且不晚于当前时间 (within the last three years)")
        return value


class CaseActionIn(BaseModel):
    """One step of a case; each step reads the fields it needs (see cloud/workflow/penalty.py)."""

    model_config = ConfigDict(extra="forbid")
    action: Literal[
        "approve_opening",
        "refuse_opening",
        "start_investigation",
        "notify",
        "request_hearing",
        "submit_legal_review",
        "pass_review",
        "return_for_investigation",
        "collective_discussion",
        "decide",
        "serve",
        "record_payment",
        "close",
        "terminate",
    ]
    reason: str | None = Field(default=None, max_length=2000, description="理由；法制审核意见、集体讨论结论")
    role: Duty | None = None
    expected_version: int | None = None
    opinion: str = Field(default="", max_length=1000, description="审批意见")
    legal_basis: list[str] = Field(default_factory=list)
    on: dt.date | None = Field(default=None, description="告知书/决定书送达日、听证申请日、讨论日（默认今天）")
    party_type: Literal["individual", "organisation"] | None = Field(default=None, description="当事人类型")
    proposed_decision: str | None = Field(default=None, max_length=4000, description="告知：拟作出的行政处罚")
    proposed_amount: Yuan | None = Field(default=None, description="告知：拟罚款（元）")
    decision: str | None = Field(default=None, max_length=4000, description="处理决定")
    penalty_amount: Yuan | None = Field(default=None, description="罚没款（元，精确到分）")
    method: Literal["direct", "post", "electronic", "notice"] | None = Field(default=None, description="送达方式")
    receiver: str | None = Field(default=None, max_length=100, description="受送达人")
    participants: list[str] = Field(default_factory=list, description="集体讨论参加人员")

    def step(self) -> StepInput:
        return StepInput(
            on=self.on,
            party_type=self.party_type,
            proposed_decision=self.proposed_decision,
            amount=self.penalty_amount if self.action == "decide" else self.proposed_amount,
            decision=self.decision,
            method=self.method,
            receiver=self.receiver,
            participants=self.participants,
        )


class ExtensionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    clock: Literal["verify", "decision"]
    kind: Literal["approval", "collective_decision"] = "approval"
    days: int | None = Field(default=None, gt=0, le=365, description="延长天数（默认按期限规则）")
    reason: str = Field(min_length=2, max_length=1000)


class PauseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    clock: Literal["verify", "decision"]
    kind: str = Field(min_length=1, max_length=64, description="testing | inspection | quarantine | appraisal …")
    reason: str = Field(min_length=2, max_length=1000)
    start: BoundedDate | None = Field(default=None, description="第一个不计入的日期（默认今天）")


class PauseEndIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    end: BoundedDate | None = Field(default=None, description="最后一个不计入的日期（默认今天）")


class PaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: Yuan = Field(gt=0)
    paid_on: BoundedDate
    receipt_no: str = Field(min_length=1, max_length=64)
    method: Literal["online", "bank", "on_site"] = "online"


class PublicationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    platform: str = Field(default="国家企业信用信息公示系统", max_length=100)
    url: str | None = Field(default=None, max_length=500)
    published_on: BoundedDate
    content: str = Field(default="", max_length=4000)


def case_view(session: Any, case: EnforcementCase, actor: Actor | None = None) -> dict[str, Any]:
    data = dump(case)
    data["state_label"] = CASE_MACHINE.state_label(case.state)
    data["clocks"] = enforcement.compute_clocks(case)
    data["penalty_amount"] = format_yuan(case.penalty_amount) or None
    data["proposed_amount"] = format_yuan(case.proposed_amount) or None
    if case.penalty_amount:
        owed = penalty.owed(case, enforcement.payment_rows(session, case.id or 0), paperwork.today())
        data["amount_owed"] = {k: format_yuan(v) if not isinstance(v, str | None) else v for k, v in owed.items()}
    data["officers"] = staffing.assignees(session, "case", case.id or 0)
    data["payments"] = [dump(p) for p in enforcement.payments(session, case.id or 0)]
    data["publications"] = [dump(p) for p in enforcement.publications(session, case.id or 0)]
    data["documents"] = [
        {"id": d.id, "kind": d.kind, "title": d.title, "doc_no": d.doc_no, "sha256": d.sha256}
        for d in session.exec(select(DocumentRecord).where(DocumentRecord.case_id == case.id))
    ]
    if actor is not None:
        data["allowed_actions"] = sorted(
            {a.value for d in actor.duties for a in CASE_MACHINE.allowed_actions(case.state, d)}
        )
    return data


@router.get("/cases", summary="案件列表")
def get_cases(
    session: SessionDep,
    _: StaffUser,
    scope: ScopeDep,
    state: str | None = None,
    clue_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    query = select(EnforcementCase)
    if (in_scope := scope.where(EnforcementCase.department_id)) is not None:
        query = query.where(in_scope)
    if state:
        query = query.where(EnforcementCase.state == state)
    if clue_id is not None:
        query = query.where(EnforcementCase.clue_id == clue_id)
    return [case_view(session, c) for c in session.exec(query.order_by(col(EnforcementCase.id).desc()).limit(limit))]


@router.post("/cases", status_code=201, summary="登记案源（其他来源）")
def post_case(session: SessionDep, settings: SettingsDep, actor: ActorDep, body: CaseIn) -> dict[str, Any]:
    require(actor, Duty.ENFORCEMENT_OFFICER, Duty.DISPATCHER, Duty.DEPARTMENT_HEAD, what="登记案源")
    subject = session.get(MarketSubject, body.subject_id) if body.subject_id is not None else None
    case = enforcement.register_case(
        session,
        settings,
        actor,
        source="manual",
        clue_id=body.clue_id,
        task_id=None,
        subject_id=body.subject_id,
        party_name=body.party_name or (subject.name if subject else None),
        department_id=body.department_id or (subject.department_id if subject else None),
        summary=body.summary,
        legal_basis=body.legal_basis,
        received_at=body.received_at or dt.datetime.now(dt.UTC),
        officers=body.officers or None,
    )
    session.commit()
    return case_view(session, case, actor)


@router.get("/cases/{case_id}", summary="案件详情（含法定期限）")
def get_case(session: SessionDep, actor: ActorDep, _: StaffUser, case_id: int) -> dict[str, Any]:
    return case_view(session, enforcement.get_case(session, case_id), actor)


@router.post("/cases/{case_id}/transitions", summary="案件操作：批准立案、调查、法制审核、告知、决定、结案…")
def post_case_transition(
    session: SessionDep, settings: SettingsDep, actor: ActorDep, case_id: int, body: CaseActionIn
) -> dict[str, Any]:
    case = enforcement.get_case(session, case_id)
    enforcement.case_action(
        session,
        settings,
        case,
        body.action,
        actor,
        reason=body.reason,
        role=body.role.value if body.role else None,
        expected_version=body.expected_version,
        opinion=body.opinion,
        legal_basis=body.legal_basis,
        step=body.step(),
    )
    session.commit()
    return case_view(session, case, actor)


@router.post("/cases/{case_id}/extensions", summary="批准延长期限")
def post_case_extension(session: SessionDep, actor: ActorDep, case_id: int, body: ExtensionIn) -> dict[str, Any]:
    case = enforcement.get_case(session, case_id)
    enforcement.extend(session, case, actor, clock=body.clock, kind=body.kind, days=body.days, reason=body.reason)
    session.commit()
    return case_view(session, case, actor)


@router.post("/cases/{case_id}/pauses", status_code=201, summary="中止计算期限（检测、检验、检疫、鉴定等）")
def post_case_pause(session: SessionDep, actor: ActorDep, case_id: int, body: PauseIn) -> dict[str, Any]:
    case = enforcement.get_case(session, case_id)
    row = enforcement.pause(
        session, case, actor, clock=body.clock, kind=body.kind, reason=body.reason, start=body.start
    )
    session.commit()
    return {**case_view(session, case, actor), "pause": row}


@router.post("/cases/{case_id}/pauses/{pause_id}/end", summary="结束中止，恢复计算期限")
def post_case_pause_end(
    session: SessionDep, actor: ActorDep, case_id: int, pause_id: int, body: PauseEndIn | None = None
) -> dict[str, Any]:
    case = enforcement.get_case(session, case_id)
    row = enforcement.end_pause(session, case, actor, pause_id, end=body.end if body else None)
    session.commit()
    return {**case_view(session, case, actor), "pause": row}


@router.post("/cases/{case_id}/payments", status_code=201, summary="登记缴款")
def post_case_payment(session: SessionDep, actor: ActorDep, case_id: int, body: PaymentIn) -> dict[str, Any]:
    require(actor, Duty.ENFORCEMENT_OFFICER, Duty.DEPARTMENT_HEAD, Duty.BUREAU_HEAD, what="登记缴款")
    case = enforcement.get_case(session, case_id)
    enforcement.add_payment(session, case, actor, **body.model_dump())
    session.commit()
    return case_view(session, case, actor)


@router.post("/cases/{case_id}/publications", status_code=201, summary="登记行政处罚信息公示")
def post_case_publication(session: SessionDep, actor: ActorDep, case_id: int, body: PublicationIn) -> dict[str, Any]:
    require(actor, Duty.ENFORCEMENT_OFFICER, Duty.DEPARTMENT_HEAD, Duty.BUREAU_HEAD, what="处罚公示")
    case = enforcement.get_case(session, case_id)
    enforcement.publish(session, case, actor, **body.model_dump())
    session.commit()
    return case_view(session, case, actor)


# ---------------------------------------------------------------- random inspection plans
class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=2, max_length=200)
    seed: str | None = Field(default=None, min_length=16, max_length=128, description="默认：系统生成")
    subject_ids: list[Annotated[int, refers_to("subject_id")]] = Field(
        default_factory=list, description="默认：全部（或本部门）主体"
    )
    inspector_ids: list[Annotated[int, refers_to("user_id")]] = Field(
        default_factory=list, description="默认：全部检查人员"
    )
    department_id: Annotated[int | None, refers_to("department_id")] = None
    domain: Literal["food", "drug", "special_equipment"] | None = None
    items: list[str] = Field(default_factory=list)
    due_date: DueDate | None = Field(default=None, description="完成期限（今天至三年内；默认 20 个工作日）")


def plan_view(plan: RandomPlan) -> dict[str, Any]:
    return dump(plan)


@router.post("/random-plans", status_code=201, summary="创建双随机抽查计划（先记录随机种子）")
def post_plan(session: SessionDep, actor: ActorDep, body: PlanIn) -> dict[str, Any]:
    require(actor, Duty.DISPATCHER, Duty.DEPARTMENT_HEAD, Duty.BUREAU_HEAD, what="创建抽查计划")
    plan = random_inspection.create_plan(session, actor, **body.model_dump())
    session.commit()
    return plan_view(plan)


@router.get("/random-plans", summary="抽查计划列表")
def get_plans(session: SessionDep, _: StaffUser, scope: ScopeDep) -> list[dict[str, Any]]:
    query = select(RandomPlan)
    if (in_scope := scope.where(RandomPlan.department_id)) is not None:
        query = query.where(in_scope)
    return [plan_view(p) for p in session.exec(query.order_by(col(RandomPlan.id).desc()))]


@router.get("/random-plans/{plan_id}", summary="抽查计划详情（冻结名单）")
def get_plan(session: SessionDep, _: StaffUser, plan_id: int) -> dict[str, Any]:
    return plan_view(random_inspection.get_plan(session, plan_id))


@router.post("/random-plans/{plan_id}/draw", summary="抽取并冻结名单，生成检查任务")
def post_plan_draw(session: SessionDep, actor: ActorDep, plan_id: int) -> dict[str, Any]:
    require(actor, Duty.DISPATCHER, Duty.DEPARTMENT_HEAD, Duty.BUREAU_HEAD, what="抽取")
    plan = random_inspection.get_plan(session, plan_id)
    random_inspection.draw_plan(session, plan, actor)
    session.commit()
    return plan_view(plan)


@router.post("/random-plans/{plan_id}/verify", summary="复核抽取结果（按记录的种子和输入重算）")
def post_plan_verify(session: SessionDep, actor: ActorDep, _: StaffUser, plan_id: int) -> dict[str, Any]:
    result = random_inspection.verify_plan(session, random_inspection.get_plan(session, plan_id), actor)
    session.commit()
    return result


@router.get("/random-plans/{plan_id}/results.csv", summary="导出抽查结果（公示用 CSV）")
def get_plan_results(session: SessionDep, actor: ActorDep, _: StaffUser, plan_id: int) -> Response:
    text = random_inspection.export_csv(session, random_inspection.get_plan(session, plan_id), actor)
    session.commit()
    return Response(
        content="\ufeff" + text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="random-plan-{plan_id}.csv"'},
    )
