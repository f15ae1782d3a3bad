"""Supervision and assessment (监督考核): scorecards (JSON/CSV), manual distinctive-work points, clocks, spot
checks, attendance check-in and report, continuous-improvement report, indicator definitions."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from cloud import journal
from cloud.api.deps import CurrentUser, SessionDep, StaffUser, require_roles
from cloud.assessment.attendance import attendance
from cloud.assessment.config import load_supervision_rules, packaged_indicator_rules
from cloud.assessment.improvement import report
from cloud.assessment.indicators import evaluate, to_csv
from cloud.assessment.models import SpotCheck, SpotCheckPublic, SupervisionClock, SupervisionClockPublic
from cloud.assessment.spot_checks import ReviewError, draw, review
from cloud.core.refs import refers_to
from cloud.core.users import Role, User
from cloud.security.scoping import Scope, ScopeDep, county_wide, departments_of
from cloud.workflow.duties import DutyRuleError

router = APIRouter(prefix="/assessment", tags=["assessment"])
Manager = Annotated[User, Depends(require_roles(Role.SUPERVISOR))]
SUPERVISORS_ONLY = county_wide("county-wide assessment: supervisors only")
TZ = ZoneInfo("Asia/Shanghai")


def period(
    month: str | None = None, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> tuple[dt.datetime, dt.datetime]:
    """``month=YYYY-MM`` (Beijing time) or ``start``/``end`` (aware ISO datetimes)."""
    if month:
        try:
            first = dt.datetime.strptime(month, "%Y-%m").replace(tzinfo=TZ)
        except ValueError:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "month 格式应为 YYYY-MM") from None
        nxt = (first + dt.timedelta(days=32)).replace(day=1)
        return first, nxt
    if start is None or end is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "请给出 month，或 start 与 end")
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "start/end 须带时区且 end 晚于 start")
    return start, end


PeriodDep = Annotated[tuple[dt.datetime, dt.datetime], Depends(period)]


@router.get(
    "/indicators",
    summary="考核指标定义（数据文件 indicators.toml）",
    dependencies=[county_wide("indicator definitions (rules file)")],
)
def indicators(_: StaffUser) -> dict[str, Any]:
    return packaged_indicator_rules().model_dump()


@router.get("/scorecards", summary="个人/部门考核得分（任意期间；format=csv 导出）", dependencies=[SUPERVISORS_ONLY])
def scorecards(
    session: SessionDep,
    _: Manager,
    window: PeriodDep,
    scope: Literal["person", "department"] = "person",
    format: Literal["json", "csv"] = "json",
) -> Any:
    persons, depts = evaluate(session, *window)
    cards = persons if scope == "person" else depts
    if format == "csv":
        name = f"scorecards-{scope}-{window[0].date()}-{window[1].date()}.csv"
        return Response(
            to_csv(cards),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return [dataclasses.asdict(c) for c in cards]


class ManualScore(BaseModel):
    user: Annotated[str | None, refers_to("username")] = Field(
        default=None, description="人员用户名（与 department 二选一）"
    )
    department: Annotated[str | None, refers_to("department_code")] = Field(default=None, description="部门编码")
    points: float = Field(ge=-100, le=100)
    reason: str = Field(min_length=2, max_length=500, description="特色工作说明")


@router.post("/manual-scores", summary="录入特色工作得分", status_code=201)
def manual_score(session: SessionDep, user: Manager, body: ManualScore) -> dict[str, Any]:
    if (body.user is None) == (body.department is None):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "user 与 department 须且只能填写一个")
    event = journal.append(
        session,
        actor=user.username,
        action="assessment.manual_score",
        target_type="user" if body.user else "department",
        target_id=body.user or body.department or "",
        payload={**body.model_dump(), "dimension": "distinctive"},
    )
    session.commit()
    return {"event_id": event.id}


@router.get("/clocks", summary="督办时钟（所有期限的自动监控）")
def clocks(
    session: SessionDep,
    _: StaffUser,
    scope: ScopeDep,
    state: Literal["running", "warned", "breached", "stopped", "all"] = "running",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[SupervisionClockPublic]:
    query = select(SupervisionClock)
    if (in_scope := scope.where(SupervisionClock.department_id)) is not None:
        query = query.where(in_scope)
    if state == "running":
        query = query.where(col(SupervisionClock.stopped_at).is_(None), col(SupervisionClock.breached_at).is_(None))
    elif state == "warned":
        query = query.where(col(SupervisionClock.warned_at).is_not(None), col(SupervisionClock.stopped_at).is_(None))
    elif state == "breached":
        query = query.where(col(SupervisionClock.breached_at).is_not(None))
    elif state == "stopped":
        query = query.where(col(SupervisionClock.stopped_at).is_not(None))
    rows = session.exec(query.order_by(col(SupervisionClock.due_at)).limit(limit)).all()
    return [SupervisionClockPublic.model_validate(r) for r in rows]


class DrawIn(BaseModel):
    start: dt.datetime
    end: dt.datetime
    seed: str | None = Field(default=None, max_length=64)


@router.post("/spot-checks/draw", summary="随机抽查已办结线索与任务", status_code=201)
def draw_now(session: SessionDep, _: Manager, body: DrawIn) -> list[SpotCheckPublic]:
    checks = draw(session, load_supervision_rules().spot_check, body.start, body.end, seed=body.seed)
    session.commit()
    return [SpotCheckPublic.model_validate(c) for c in checks]


@router.get("/spot-checks", summary="抽查记录")
def spot_checks(session: SessionDep, _: StaffUser, scope: ScopeDep, pending: bool = False) -> list[SpotCheckPublic]:
    query = select(SpotCheck)
    if pending:
        query = query.where(col(SpotCheck.verdict).is_(None))
    rows = session.exec(query.order_by(col(SpotCheck.id).desc()))
    return [SpotCheckPublic.model_validate(c) for c in rows if _visible(session, scope, c)]


def _visible(session: Session, scope: Scope, check: SpotCheck) -> bool:
    """A spot check is visible where its target (a clue, a task, …) is."""
    if scope.county:
        return True
    departments = departments_of(session, f"{check.target_type}_id", check.target_id)
    return any(scope.allows(d) for d in departments or [None])


class ReviewIn(BaseModel):
    verdict: Literal["ok", "problem"]
    note: str = Field(default="", max_length=2000)


@router.post(
    "/spot-checks/{check_id}/review", summary="抽查评定（发现问题生成督办线索）", dependencies=[SUPERVISORS_ONLY]
)
def review_check(session: SessionDep, user: Manager, check_id: int, body: ReviewIn) -> SpotCheckPublic:
    try:
        check = review(session, check_id, verdict=body.verdict, note=body.note, by=user.username)
    except ReviewError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    except DutyRuleError as exc:  # the reviewer is one of the people whose work is checked
        raise HTTPException(status.HTTP_403_FORBIDDEN, {"detail": exc.message, **exc.extra}) from None
    session.commit()
    return SpotCheckPublic.model_validate(check)


class CheckIn(BaseModel):
    note: str = Field(default="", max_length=200)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)


@router.post("/attendance/check-in", summary="考勤签到", status_code=201)
def check_in(session: SessionDep, user: CurrentUser, body: CheckIn) -> dict[str, Any]:
    event = journal.append(
        session,
        actor=user.username,
        action=load_supervision_rules().attendance.check_in_action,
        target_type="user",
        target_id=user.username,
        payload=body.model_dump(),
    )
    session.commit()
    return {"event_id": event.id, "ts": event.ts}


@router.get("/attendance", summary="考勤统计（按值班表）", dependencies=[SUPERVISORS_ONLY])
def attendance_report(
    session: SessionDep, _: Manager, window: PeriodDep, department: str | None = None
) -> list[dict[str, Any]]:
    rows = attendance(session, load_supervision_rules().attendance, *window, department=department)
    return [dataclasses.asdict(r) for r in rows]


@router.get(
    "/check-in-flags",
    summary="签到位置异常：距场所超过签到半径的现场签到（geo.toml [geofence]）",
    dependencies=[SUPERVISORS_ONLY],
)
def check_in_flags(session: SessionDep, _: Manager, window: PeriodDep) -> list[dict[str, Any]]:
    events = session.exec(
        select(journal.JournalEvent)
        .where(
            journal.JournalEvent.action == "task.check_in_outside_geofence",
            col(journal.JournalEvent.ts) >= window[0],
            col(journal.JournalEvent.ts) < window[1],
        )
        .order_by(col(journal.JournalEvent.id))
    ).all()
    return [
        {"task_id": int(e.target_id), "inspector": e.actor, "at": e.ts.isoformat(), **(e.payload or {})} for e in events
    ]


@router.get(
    "/improvement", summary="持续改进报告：各研判规则与边缘规则的线索、去向与确认率", dependencies=[SUPERVISORS_ONLY]
)
def improvement(session: SessionDep, _: Manager, window: PeriodDep) -> list[dict[str, Any]]:
    return [dataclasses.asdict(r) for r in report(session, *window)]
