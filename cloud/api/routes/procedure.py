"""Penalty-procedure records between the state changes of a case: opening opinions (立案意见), statements and
waivers (陈述、申辩、放弃), hearing notice and record (听证通知书、听证笔录), seizure and evidence preservation
(查封扣押、先行登记保存) with their clocks, and the simplified on-the-spot procedure (当场处罚).

Refusals use the workflow error answers (409 with the reason when the procedure forbids the step now).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from cloud.api.deps import SessionDep, SettingsDep
from cloud.api.routes.workflow import ActorDep, WorkflowRoute, case_view, require
from cloud.core.config import Settings
from cloud.core.refs import refers_to
from cloud.security.scoping import scope_guard
from cloud.workflow import complaints, enforcement, paperwork, penalty
from cloud.workflow.models import EnforcementCase
from cloud.workflow.money import Yuan
from cloud.workflow.penalty import StepInput
from cloud.workflow.service import Actor, record
from cloud.workflow.states import Role as Duty

router = APIRouter(tags=["workflow"], route_class=WorkflowRoute, dependencies=[Depends(scope_guard)])


def _finish_step(
    session: Session,
    actor: Actor,
    case: EnforcementCase,
    key: str,
    row: dict[str, Any],
    *,
    event: tuple[str, dict[str, Any]] | None = None,
    document: tuple[Settings, str] | None = None,
) -> dict[str, Any]:
    """The tail every step route shares: store the case, make the step's document, journal, commit, answer."""
    session.add(case)
    session.flush()
    if document is not None:
        penalty.hearing_documents(session, document[0], case, actor, document[1])
    if event is not None:
        record(session, actor, event[0], "case", case.id or 0, event[1])
    session.commit()
    return {**case_view(session, case, actor), key: row}


class OpinionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    opinion: str = Field(min_length=2, max_length=1000)
    role: Literal["enforcement_officer", "department_head"] | None = None


@router.post("/cases/{case_id}/opinions", status_code=201, summary="填写立案意见（承办人、承办机构负责人）")
def post_opinion(session: SessionDep, actor: ActorDep, case_id: int, body: OpinionIn) -> dict[str, Any]:
    case = enforcement.get_case(session, case_id)
    row = enforcement.add_opinion(session, case, actor, opinion=body.opinion, role=body.role)
    return _finish_step(session, actor, case, "opinion", row)


class StatementIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["statement", "defence", "waiver"] = Field(description="陈述 | 申辩 | 书面放弃陈述申辩和听证")
    content: str = Field(min_length=2, max_length=8000)
    received_on: dt.date | None = None


@router.post("/cases/{case_id}/statements", status_code=201, summary="登记当事人陈述、申辩或放弃")
def post_statement(session: SessionDep, actor: ActorDep, case_id: int, body: StatementIn) -> dict[str, Any]:
    require(actor, Duty.ENFORCEMENT_OFFICER, what="登记陈述申辩")
    case = enforcement.get_case(session, case_id)
    row = penalty.add_statement(
        case, actor, kind=body.kind, content=body.content, received_on=body.received_on or paperwork.today()
    )
    return _finish_step(session, actor, case, "statement", row, event=("case.statement", {"kind": body.kind}))


class HearingNoticeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hearing_on: dt.date
    place: str = Field(min_length=2, max_length=200)
    host: str = Field(min_length=1, max_length=50, description="听证主持人（非本案调查人员）")
    notified_on: dt.date | None = Field(default=None, description="通知书送达当事人之日（默认今天）")


@router.post("/cases/{case_id}/hearing/notice", status_code=201, summary="送达听证通知书")
def post_hearing_notice(
    session: SessionDep, settings: SettingsDep, actor: ActorDep, case_id: int, body: HearingNoticeIn
) -> dict[str, Any]:
    require(actor, Duty.LEGAL_REVIEWER, what="组织听证")
    case = enforcement.get_case(session, case_id)
    row = penalty.add_hearing_notice(
        case,
        actor,
        hearing_on=body.hearing_on,
        place=body.place,
        host=body.host,
        notified_on=body.notified_on or paperwork.today(),
    )
    event = ("case.hearing_notice", {"hearing_on": row["hearing_on"]})
    return _finish_step(session, actor, case, "hearing_notice", row, event=event, document=(settings, "notice"))


class HearingRecordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    held_on: dt.date | None = None
    participants: list[str] = Field(min_length=1)
    summary: str = Field(min_length=2, max_length=8000, description="听证笔录内容")


@router.post("/cases/{case_id}/hearing/record", status_code=201, summary="制作听证笔录")
def post_hearing_record(
    session: SessionDep, settings: SettingsDep, actor: ActorDep, case_id: int, body: HearingRecordIn
) -> dict[str, Any]:
    require(actor, Duty.LEGAL_REVIEWER, what="听证笔录")
    case = enforcement.get_case(session, case_id)
    row = penalty.add_hearing_record(
        case, actor, held_on=body.held_on or paperwork.today(), participants=body.participants, summary=body.summary
    )
    event = ("case.hearing_record", {"held_on": row["held_on"]})
    return _finish_step(session, actor, case, "hearing_record", row, event=event, document=(settings, "record"))


class MeasureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["seizure", "evidence_preservation"]
    started_on: dt.date | None = None
    items: str = Field(min_length=2, max_length=4000, description="物品清单")


class MeasureExtendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=2, max_length=1000)


class MeasureEndIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: str = Field(min_length=2, max_length=1000, description="解除、没收、移送…")
    ended_on: dt.date | None = None


@router.post("/cases/{case_id}/measures", status_code=201, summary="查封扣押 / 先行登记保存证据")
def post_measure(session: SessionDep, actor: ActorDep, case_id: int, body: MeasureIn) -> dict[str, Any]:
    case = enforcement.get_case(session, case_id)
    row = enforcement.start_measure(
        session, case, actor, kind=body.kind, started_on=body.started_on or paperwork.today(), items=body.items
    )
    return _finish_step(session, actor, case, "measure", row)


@router.post("/cases/{case_id}/measures/{measure_id}/extensions", summary="延长查封扣押期限（负责人批准）")
def post_measure_extension(
    session: SessionDep, actor: ActorDep, case_id: int, measure_id: int, body: MeasureExtendIn
) -> dict[str, Any]:
    case = enforcement.get_case(session, case_id)
    row = enforcement.extend_measure(session, case, actor, measure_id, reason=body.reason)
    return _finish_step(session, actor, case, "measure", row)


@router.post("/cases/{case_id}/measures/{measure_id}/end", summary="解除或处理查封扣押、登记保存物品")
def post_measure_end(
    session: SessionDep, actor: ActorDep, case_id: int, measure_id: int, body: MeasureEndIn
) -> dict[str, Any]:
    require(actor, Duty.ENFORCEMENT_OFFICER, Duty.BUREAU_HEAD, what="解除或处理措施")
    case = enforcement.get_case(session, case_id)
    row = enforcement.end_measure(
        session, case, actor, measure_id, outcome=body.outcome, ended_on=body.ended_on or paperwork.today()
    )
    return _finish_step(session, actor, case, "measure", row)


class OnTheSpotIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject_id: Annotated[int | None, refers_to("subject_id")] = None
    party_name: str | None = Field(default=None, max_length=200)
    party_type: Literal["individual", "organisation"]
    department_id: Annotated[int | None, refers_to("department_id")] = None
    facts: str = Field(min_length=2, max_length=4000, description="违法事实")
    legal_basis: list[str] = Field(min_length=1)
    decision: str = Field(min_length=2, max_length=4000, description="警告 / 罚款 …")
    amount: Yuan | None = Field(default=None, description="罚款（元）；警告不填")
    officers: list[Annotated[int, refers_to("user_id")]] = Field(default_factory=list)


@router.post("/cases/on-the-spot", status_code=201, summary="当场处罚（简易程序）")
def post_on_the_spot(session: SessionDep, settings: SettingsDep, actor: ActorDep, body: OnTheSpotIn) -> dict[str, Any]:
    require(actor, Duty.ENFORCEMENT_OFFICER, what="当场处罚")
    from cloud.workflow.procedure import check_on_the_spot

    check_on_the_spot(body.party_type, body.amount)  # refuse before anything is stored
    officers = list(dict.fromkeys([*([actor.user_id] if actor.user_id else []), *body.officers]))
    case = enforcement.register_case(
        session,
        settings,
        actor,
        source="inspection",
        clue_id=None,
        task_id=None,
        subject_id=body.subject_id,
        party_name=body.party_name,
        department_id=body.department_id or actor.department_id,
        summary=body.facts,
        legal_basis=body.legal_basis,
        received_at=dt.datetime.now(dt.UTC),
        officers=officers,
    )
    enforcement.case_action(
        session,
        settings,
        case,
        "on_the_spot",
        actor,
        role="enforcement_officer",
        step=StepInput(party_type=body.party_type, amount=body.amount, decision=body.decision, method="direct"),
    )
    session.commit()
    return case_view(session, case, actor)


# ---------------------------------------------------------------- complaints (投诉) and reporter feedback (举报)
class AcceptanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["accepted", "refused"]
    ground: str | None = Field(default=None, max_length=40, description="不予受理理由（complaints.toml 中的代码）")
    note: str = Field(default="", max_length=2000)
    on: dt.date | None = None


class MediationEndIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: str = Field(min_length=2, max_length=16, description="agreed | failed | withdrawn | expired")
    note: str = Field(default="", max_length=2000)
    on: dt.date | None = None


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = Field(min_length=2, max_length=500, description="告知举报人的内容（不含被举报人不应知悉的信息）")


def _order_view(order: Any) -> dict[str, Any]:
    from cloud.api.routes.workflow import dump

    data = dump(order)
    for key in ("complainant_name", "complainant_phone", "complainant_id_no", "complainant_address"):
        data.pop(key, None)  # personal data only through GET /clues/work-orders/{id} (masked, duty-checked)
    return data


def _order_answer(session: Session, order: Any, result: dict[str, Any]) -> dict[str, Any]:
    session.commit()
    return {**_order_view(order), "result": result}


@router.post("/work-orders/{order_id}/acceptance", summary="投诉受理或不予受理决定（7 个工作日内）")
def post_acceptance(
    session: SessionDep, settings: SettingsDep, actor: ActorDep, order_id: int, body: AcceptanceIn
) -> dict[str, Any]:
    require(actor, Duty.INTAKE_CLERK, what="投诉受理决定")
    order = complaints.get_order(session, order_id)
    result = complaints.decide_acceptance(
        session, settings, order, actor, decision=body.decision, ground=body.ground, note=body.note, on=body.on
    )
    return _order_answer(session, order, result)


@router.post("/work-orders/{order_id}/mediation", summary="结束调解（达成协议、调解不成、撤回、期满终止）")
def post_mediation(session: SessionDep, actor: ActorDep, order_id: int, body: MediationEndIn) -> dict[str, Any]:
    require(actor, Duty.INTAKE_CLERK, what="调解")
    order = complaints.get_order(session, order_id)
    result = complaints.end_mediation(session, order, actor, outcome=body.outcome, note=body.note, on=body.on)
    return _order_answer(session, order, result)


@router.post("/work-orders/{order_id}/feedback", summary="告知实名举报人是否立案（5 个工作日内）")
def post_feedback(session: SessionDep, actor: ActorDep, order_id: int, body: FeedbackIn) -> dict[str, Any]:
    require(actor, Duty.INTAKE_CLERK, Duty.ENFORCEMENT_OFFICER, what="举报人反馈")
    order = complaints.get_order(session, order_id)
    result = complaints.send_feedback(session, order, actor, text=body.text)
    return _order_answer(session, order, result)
