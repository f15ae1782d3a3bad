"""Notifications (通知): my notifications, live SSE stream, acknowledgement (API and signed one-time links),
incidents with their deliveries, contacts, site designations, the duty roster and a configuration check."""

from __future__ import annotations

import datetime as dt
import html
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request, status
from fastapi.responses import HTMLResponse, StreamingResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import or_
from sqlmodel import col, select

from cloud.api.deps import CurrentUser, SessionDep, StaffUser, StreamUser, require_roles
from cloud.core.db import utcnow
from cloud.core.users import Role, User
from cloud.notify.ack_proof import ProofRefused, issue_ack_code, prove, recipient_name
from cloud.notify.ack_rules import AckRefused, may_acknowledge
from cloud.notify.config import AckRules, NotifySettings, load_rules
from cloud.notify.incidents import AckError, acknowledge
from cloud.notify.links import LinkError, open_link
from cloud.notify.models import (
    Contact,
    ContactCreate,
    ContactPublic,
    Delivery,
    DeliveryPublic,
    DutyShift,
    DutyShiftBase,
    DutyShiftPublic,
    Incident,
    IncidentPublic,
    IncidentStatus,
    Notification,
    NotificationPublic,
    SiteContact,
)
from cloud.notify.roster import on_duty
from cloud.security.config import SecuritySettings, get_security_settings
from cloud.security.scoping import ScopeDep, county_wide, public, visible_sites
from cloud.workflow.elevator import ReportedVia, record_arrival
from cloud.workflow.service import WorkflowError

router = APIRouter(prefix="/notifications", tags=["notifications"])
Manager = Annotated[User, Depends(require_roles(Role.SUPERVISOR))]
OWN = county_wide("the caller's own notifications")
SUPERVISORS_ONLY = county_wide("notification set-up: supervisors only")
ROSTER = county_wide("the bureau's duty roster")


def _public(notification: Notification, incident: Incident) -> NotificationPublic:
    return NotificationPublic(
        id=notification.id or 0,
        recipient=notification.recipient,
        level=notification.level,
        created_at=notification.created_at,
        read_at=notification.read_at,
        summarised_into=notification.summarised_into,
        incident=IncidentPublic.model_validate(incident),
    )


@router.get("", summary="我的通知（最新在前）", dependencies=[OWN])
def my_notifications(
    session: SessionDep,
    user: CurrentUser,
    unacked: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[NotificationPublic]:
    query = (
        select(Notification, Incident)
        .join(Incident, col(Incident.id) == Notification.incident_id)
        .where(Notification.recipient == user.username)
    )
    if unacked:
        query = query.where(Incident.status == IncidentStatus.OPEN)
    rows = session.exec(query.order_by(col(Notification.id).desc()).limit(limit)).all()
    return [_public(n, i) for n, i in rows]


@router.get("/stream", summary="实时通知流 (Server-Sent Events)", response_class=StreamingResponse, dependencies=[OWN])
async def stream(
    request: Request,
    user: StreamUser,
    after: Annotated[int | None, Query(ge=0, description="从该送达编号之后开始（默认：现在）")] = None,
) -> StreamingResponse:
    """Any instance serves it (it reads the shared database); ``Last-Event-ID`` / ``?after=`` resume without a gap."""
    hub = getattr(request.app.state, "notify_hub", None)
    if hub is None and getattr(request.app.state, "notify", None) is not None:
        hub = request.app.state.notify.hub
    if hub is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "通知服务未启用 (notifications disabled)")
    last = request.headers.get("last-event-id", "")
    if last.isdigit():  # a reconnecting EventSource resumes where it stopped, on whichever instance
        after = int(last)
    return StreamingResponse(
        hub.sse(user.username, after=after),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/incidents", summary="通知事件列表（督办视图）")
def incidents(
    session: SessionDep,
    _: StaffUser,
    scope: ScopeDep,
    status_: Annotated[IncidentStatus | None, Query(alias="status")] = None,
    clue_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[IncidentPublic]:
    query = select(Incident)
    if not scope.county:
        from cloud.workflow.clues import Clue

        sites = sorted(visible_sites(session, scope) or ())
        clues = select(Clue.id).where(scope.where(Clue.department_id))  # type: ignore[arg-type]
        query = query.where(or_(col(Incident.site_id).in_(sites), col(Incident.clue_id).in_(clues)))
    if status_ is not None:
        query = query.where(Incident.status == status_)
    if clue_id is not None:
        query = query.where(Incident.clue_id == clue_id)
    return [
        IncidentPublic.model_validate(i) for i in session.exec(query.order_by(col(Incident.id).desc()).limit(limit))
    ]


@router.get("/incidents/{incident_id}/deliveries", summary="送达记录（回执或错误）")
def deliveries(session: SessionDep, _: StaffUser, incident_id: int) -> list[DeliveryPublic]:
    rows = session.exec(
        select(Delivery)
        .join(Notification, col(Notification.id) == Delivery.notification_id)
        .where(Notification.incident_id == incident_id)
        .order_by(col(Delivery.id))
    ).all()
    return [DeliveryPublic.model_validate(d) for d in rows]


def _ack_rule(request: Request) -> AckRules:
    service = getattr(request.app.state, "notify", None)
    if service is not None:
        rule: AckRules = service.rules.routing.ack
        return rule
    return load_rules(NotifySettings().rules_dir).routing.ack


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


@router.post(
    "/incidents/{incident_id}/ack",
    summary="确认收到（停止升级；仅限该通知的接收人或所属部门负责人，其他人 403 并记录）",
)
def ack(request: Request, session: SessionDep, user: CurrentUser, incident_id: int, via: str = "api") -> IncidentPublic:
    try:
        incident = acknowledge(
            session,
            incident_id,
            by=user.username,
            via=via[:16],
            now=utcnow(),
            rule=_ack_rule(request),
            client=_client(request),
        )
    except AckError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except AckRefused as refusal:
        session.commit()  # the refusal is journaled
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(refusal)) from None
    session.commit()
    return IncidentPublic.model_validate(incident)


@router.post(
    "/incidents/{incident_id}/on-site",
    summary="报告已到场（满足到场时限，如电梯困人 30 分钟；接收人报到场同时确认收到）",
)
def on_site(request: Request, session: SessionDep, user: CurrentUser, incident_id: int) -> IncidentPublic:
    from cloud import journal

    incident = session.get(Incident, incident_id)
    if incident is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "通知不存在")
    journal.append(
        session,
        actor=user.username,
        action="sla.on_site",
        target_type="incident",
        target_id=incident_id,
        payload={"clue_id": incident.clue_id, "site_id": incident.site_id},
    )
    rule = _ack_rule(request)
    if incident.status == IncidentStatus.OPEN and may_acknowledge(session, incident, user.username, rule, utcnow()):
        # an arrival is recorded whoever reports it; it stops the escalation only when a recipient reports it
        acknowledge(session, incident_id, by=user.username, via="on_site", now=utcnow(), rule=rule)
    session.commit()
    return IncidentPublic.model_validate(incident)


class ArrivalIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    unit: str = Field(min_length=2, max_length=100, description="维保单位 / 救援单位名称")
    rescuer: str = Field(min_length=1, max_length=50, description="到场救援人员")
    arrived_at: AwareDatetime | None = Field(default=None, description="到达现场的时间（默认现在）")
    via: ReportedVia = Field(default="maintenance_unit", description="maintenance_unit | rescue_96333 | duty_phone")


@router.post(
    "/incidents/{incident_id}/arrival",
    status_code=201,
    summary="登记维保单位 / 96333 救援人员到场（电梯困人到场时限）",
    description="须由受理登记、调度派发、检查人员或部门负责人登记（duties.toml [rescue_arrival]）。",
)
def arrival(session: SessionDep, user: CurrentUser, incident_id: int, body: ArrivalIn) -> dict[str, Any]:
    from cloud.workflow.duties import check_gate, duty_rules
    from cloud.workflow.service import actor_for

    now = utcnow()
    try:
        check_gate(duty_rules().rescue_arrival, actor_for(session, user), "登记救援到场", "record a rescue arrival")
        row = record_arrival(
            session,
            incident_id,
            by=user.username,
            unit=body.unit,
            rescuer=body.rescuer,
            arrived_at=body.arrived_at or now,
            via=body.via,
            now=now,
        )
    except WorkflowError as exc:
        raise HTTPException(exc.status, exc.message) from None
    session.commit()
    return row


def _secret(request: Request) -> bytes:
    service = getattr(request.app.state, "notify", None)
    if service is not None:
        secret: bytes = service.secret
        return secret
    return NotifySettings().secret(request.app.state.settings)


_PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width,initial-scale=1"></head>
<body style="font-family:sans-serif;max-width:36em;margin:2em auto"><h2>{title}</h2>{body}</body></html>"""


def _security(request: Request) -> SecuritySettings:
    sec: SecuritySettings | None = getattr(request.app.state, "security_settings", None)
    return sec or get_security_settings()


def _nsettings(request: Request) -> NotifySettings:
    service = getattr(request.app.state, "notify", None)
    return service.nsettings if service is not None else NotifySettings()


def _proof_form(token: str, who: str, claimed: str = "") -> str:
    return (
        f"<p>此通知发在群内，只有 <b>{html.escape(who)}</b> 本人可以确认。"
        "请输入本人的登录密码（有平台账号）或个人确认码（无账号的企业人员）。</p>"
        f"<form method='post'><input type='hidden' name='token' value='{html.escape(token)}'>"
        f"<p><label>账号（可不填）<input name='username' value='{html.escape(claimed)}'></label></p>"
        "<p><label>密码或个人确认码 <input type='password' name='secret' required></label></p>"
        "<p><label>动态口令（已绑定时填写）<input name='totp' inputmode='numeric'></label></p>"
        "<button type='submit' style='font-size:1.3em'>本人确认收到</button></form>"
    )


@router.get(
    "/ack",
    summary="确认链接页面（一次性签名链接；群消息中的链接需本人密码或个人确认码）",
    response_class=HTMLResponse,
    dependencies=[public("signed one-time link")],
)
def ack_page(request: Request, session: SessionDep, token: str) -> HTMLResponse:
    try:
        claims, link = open_link(session, _secret(request), token, utcnow())
    except LinkError as exc:
        return HTMLResponse(_PAGE.format(title="链接无效", body=f"<p>{html.escape(str(exc))}</p>"), status_code=400)
    incident = session.get(Incident, claims.incident_id)
    title = f"<p>{html.escape(incident.title if incident else '')}</p>"
    if link.proof_required:
        body = title + _proof_form(token, recipient_name(session, link.recipient))
    else:
        body = title + (
            f"<form method='post'><input type='hidden' name='token' value='{html.escape(token)}'>"
            "<button type='submit' style='font-size:1.3em'>确认收到</button></form>"
        )
    return HTMLResponse(_PAGE.format(title="确认收到通知", body=body))


@router.post(
    "/ack", summary="通过一次性签名链接确认", response_class=HTMLResponse, dependencies=[public("signed one-time link")]
)
def ack_by_link(
    request: Request,
    session: SessionDep,
    token: Annotated[str, Form(max_length=2000)],
    username: Annotated[str | None, Form(max_length=64, description="确认人账号（群内链接）")] = None,
    secret: Annotated[str | None, Form(max_length=256, description="本人登录密码或个人确认码（群内链接）")] = None,
    totp: Annotated[str | None, Form(max_length=16)] = None,
) -> HTMLResponse:
    now = utcnow()
    try:
        claims, link = open_link(session, _secret(request), token, now)
        proof = "personal_link"
        if link.proof_required:
            nsettings = _nsettings(request)
            proof = prove(
                session,
                link,
                claimed_by=username,
                secret=secret,
                totp=totp,
                sec=_security(request),
                client=request.client.host if request.client else None,
                attempts=nsettings.link_proof_attempts,
                now=now,
            )
        incident = acknowledge(
            session,
            claims.incident_id,
            by=claims.recipient,
            via="link",
            now=now,
            rule=_ack_rule(request),
            proof=proof,
            link_channel=link.channel,
            client=_client(request),
        )
        link.used_at = now
        session.add(link)
    except AckRefused as refusal:  # a link is issued to a recipient only; the same check applies all the same
        session.commit()
        return HTMLResponse(_PAGE.format(title="未能确认", body=f"<p>{html.escape(str(refusal))}</p>"), status_code=403)
    except ProofRefused as refusal:
        session.commit()  # the refusal is journaled and counted
        body = f"<p>{html.escape(str(refusal))}</p>"
        if refusal.reason == "proof_missing":
            body += _proof_form(token, recipient_name(session, claims.recipient), username or "")
        return HTMLResponse(_PAGE.format(title="未能确认", body=body), status_code=403)
    except (LinkError, AckError) as exc:
        session.rollback()
        return HTMLResponse(_PAGE.format(title="链接无效", body=f"<p>{html.escape(str(exc))}</p>"), status_code=400)
    session.commit()
    who = html.escape(recipient_name(session, incident.acked_by or ""))
    return HTMLResponse(_PAGE.format(title="已确认", body=f"<p>已确认（确认人：{who}），谢谢。</p>"))


class AckCode(BaseModel):
    contact: str
    code: str
    message: str = "个人确认码只显示这一次，请当面或通过本人私聊交给本人；群内链接需输入此码才能确认"


@router.post(
    "/contacts/{key}/ack-code",
    summary="签发个人确认码（无平台账号的通知对象在群内链接中确认时使用；只显示一次）",
    status_code=201,
    dependencies=[SUPERVISORS_ONLY],
)
def new_ack_code(session: SessionDep, user: Manager, key: Annotated[str, Path(max_length=64)]) -> AckCode:
    contact = session.exec(select(Contact).where(Contact.key == key)).first()
    if contact is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "通知对象不存在 (no such contact)")
    code = issue_ack_code(session, contact, actor=user.username)
    session.commit()
    return AckCode(contact=key, code=code)


# ------------------------------------------------------------------ people, designations, roster
@router.get("/contacts", summary="通知对象（人员与渠道）", dependencies=[SUPERVISORS_ONLY])
def contacts(session: SessionDep, _: Manager) -> list[ContactPublic]:
    return [ContactPublic.model_validate(c) for c in session.exec(select(Contact).order_by(col(Contact.id)))]


@router.post("/contacts", summary="新增或更新通知对象", status_code=201, dependencies=[SUPERVISORS_ONLY])
def upsert_contact(session: SessionDep, _: Manager, body: ContactCreate) -> ContactPublic:
    contact = session.exec(select(Contact).where(Contact.key == body.key)).first()
    if contact is None:
        contact = Contact.model_validate(body)
    else:
        contact.sqlmodel_update(body.model_dump())
    session.add(contact)
    session.commit()
    session.refresh(contact)
    return ContactPublic.model_validate(contact)


class SiteDesignation(BaseModel):
    site_id: str
    contact_key: str
    designation: str = "site_contact"


@router.post(
    "/site-contacts",
    summary="指定场所联系人（如 GSP 指定人员 gsp_designated）",
    status_code=201,
    dependencies=[SUPERVISORS_ONLY],
)
def add_site_contact(session: SessionDep, _: Manager, body: SiteDesignation) -> SiteDesignation:
    session.add(SiteContact(**body.model_dump()))
    session.commit()
    return body


@router.get("/roster", summary="值班表", dependencies=[ROSTER])
def roster(
    session: SessionDep, _: StaffUser, department: str | None = None, start: dt.datetime | None = None, days: int = 7
) -> list[DutyShiftPublic]:
    start = start or utcnow()
    end = start + dt.timedelta(days=days)
    query = select(DutyShift).where(col(DutyShift.ends_at) > start, col(DutyShift.starts_at) < end)
    if department:
        query = query.where(DutyShift.department == department)
    return [DutyShiftPublic.model_validate(s) for s in session.exec(query.order_by(col(DutyShift.starts_at)))]


@router.post("/roster", summary="排班（批量新增班次）", status_code=201, dependencies=[SUPERVISORS_ONLY])
def add_shifts(session: SessionDep, _: Manager, shifts: list[DutyShiftBase]) -> list[DutyShiftPublic]:
    rows = [DutyShift.model_validate(s) for s in shifts]
    for row in rows:
        if row.ends_at <= row.starts_at:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "班次结束时间须晚于开始时间")
        session.add(row)
    session.commit()
    return [DutyShiftPublic.model_validate(r) for r in rows]


@router.get("/roster/on-duty", summary="当前在岗人员", dependencies=[ROSTER])
def who_is_on_duty(session: SessionDep, _: StaffUser, department: str, at: dt.datetime | None = None) -> list[str]:
    return on_duty(session, department, at or utcnow())


@router.get("/config/check", summary="通知配置检查（GSP 指定人员不少于 3 人等）", dependencies=[SUPERVISORS_ONLY])
def config_check(session: SessionDep, _: Manager) -> dict[str, Any]:
    rules = load_rules(NotifySettings().rules_dir)
    problems: list[dict[str, Any]] = []
    try:
        from cloud.registry.models import Site
    except ModuleNotFoundError:  # pragma: no cover
        return {"ok": True, "problems": []}
    gsp = [r for r in rules.routing.routes if r.min_designated >= rules.routing.gsp_min_recipients]
    for site in session.exec(select(Site).where(Site.category == "drug")).all():
        for route in gsp:
            n = len(
                session.exec(
                    select(SiteContact).where(
                        SiteContact.site_id == site.site_id, SiteContact.designation == route.designation
                    )
                ).all()
            )
            if n < route.min_designated:
                problems.append(
                    {
                        "site_id": site.site_id,
                        "route": route.id,
                        "designated": n,
                        "required": route.min_designated,
                        "message": f"{site.name}：{route.designation} 指定人员 {n} 人，"
                        f"少于 {route.min_designated} 人（GSP）",
                    }
                )
    return {"ok": not problems, "problems": problems}
