"""Console aggregates (控制台): read-only views the web console needs beyond the resource APIs, the live
alert feed for the big screen and the public self-service kiosk intake.

* ``GET /console/labels`` (public) Chinese labels for categories, severities, channels, states, duties, and the
  inspection-item checklist (code → title, requirement) — static reference data, no personal data.
* ``GET /console/overview`` counts by domain (food / drug / special equipment), sites online/offline, 24 h trend,
  recent alerts and deadline warnings (the big screen and the supervisor's home).
* ``GET /console/deadlines`` open inspection tasks and running case clocks with their due dates and remaining
  working days (statutory calendar), soonest first; ``mine=true`` only the caller's.
* ``GET /console/clues/{id}/context`` the alerts behind a clue, the reading window around the first alert and the
  evidence (snapshots, inspection photos) to show on the clue page.
* ``GET /console/live`` Server-Sent Events: ``alert`` (raised/cleared), ``clue`` (created) and ``task`` events
  following the journal; token as bearer header or ``?access_token=`` (EventSource cannot set headers).
* ``POST /console/kiosk/complaints`` (public, rate-limited per registered terminal -- ``X-Kiosk-Token``,
  :mod:`cloud.security.kiosks` -- else, stricter, per client address; size-limited) a 12315-style complaint or
  report from the self-service terminal; answers a receipt number. It calls the workflow intake as the
  ``kiosk`` actor (duty 受理), so validation and clue collection are the same as for any work order.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import secrets
import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from cloud import journal
from cloud.alerts import Alert, AlertStatus
from cloud.api.deps import SessionDep, StaffUser, StreamUser
from cloud.core.db import utcnow, writer
from cloud.security.kiosks import HEADER as KIOSK_HEADER
from cloud.security.kiosks import Caller
from cloud.security.kiosks import caller as kiosk_caller
from cloud.security.scoping import Scope, ScopeDep, StreamScopeDep, departments_of, public, visible_sites
from cloud.workflow.clues import place_label
from protocols.messages import SEVERITY_RANK

log = logging.getLogger(__name__)
router = APIRouter(prefix="/console", tags=["console 控制台"])
TZ = ZoneInfo("Asia/Shanghai")

DOMAINS: dict[str, str] = {"food": "食品", "drug": "药品", "special_equipment": "特种设备"}
_SEVERITY_RANK = {str(k): v for k, v in SEVERITY_RANK.items()}
_SPECIAL = ("elevator", "boiler", "pressure_vessel", "special_equipment", "lift", "crane", "gas_cylinder")


def domain_of(category: str | None, site_category: str | None = None) -> str | None:
    """food | drug | special_equipment from an alert/clue category, else from the site's category."""
    cat = (category or "").lower()
    if cat.startswith("drug"):
        return "drug"
    if cat.startswith("food"):
        return "food"
    if cat.startswith(_SPECIAL):
        return "special_equipment"
    return site_category if site_category in DOMAINS else None


def _site_categories(session: Session) -> dict[str, str | None]:
    try:
        from cloud.registry.models import Site
    except ModuleNotFoundError:  # pragma: no cover - registry not installed
        return {}
    return {s.site_id: s.category for s in session.exec(select(Site))}


# ---------------------------------------------------------------- labels (public reference data)
@router.get(
    "/labels", summary="界面用中文标签与检查事项清单（公开参考数据）", dependencies=[public("static reference labels")]
)
def labels() -> dict[str, Any]:
    from cloud.labels import vocabulary

    checklist: list[dict[str, Any]] = []
    try:
        from cloud.rules.library import packaged_catalogue

        checklist = [
            {"code": i.code, "domain": i.domain, "title": i.title, "requirement": i.requirement, "key": i.key_item}
            for i in packaged_catalogue().checklist.items
        ]
    except (ModuleNotFoundError, OSError, ValueError):  # pragma: no cover - catalogue missing or invalid
        checklist = []
    return {**vocabulary(), "domains": DOMAINS, "checklist": checklist}


# ---------------------------------------------------------------- deadlines
def _remaining_working_days(due: dt.date, today: dt.date) -> int | None:
    """Working days from ``today`` to ``due`` (negative when overdue); ``None`` when the calendar cannot say
    (a range longer than it walks, e.g. a due date decades away): the row still shows, by calendar date."""
    from cloud.workflow.calendar import default_calendar

    try:
        return int(default_calendar().working_days_between(today, due).value)
    except ValueError:
        log.warning("deadline %s: outside the working-day calendar's range from %s", due, today)
        return None


def _task_status(due: dt.date, today: dt.date, left: int | None) -> str:
    if due < today or (left is not None and left < 0):
        return "overdue"
    return "due_soon" if left is not None and left <= 1 else "running"


def deadline_rows(
    session: Session, *, user_id: int | None = None, limit: int = 200, scope: Scope | None = None
) -> list[dict[str, Any]]:
    """Open tasks and running case clocks, soonest first, with remaining working days (within ``scope``)."""
    from cloud.workflow import enforcement, staffing
    from cloud.workflow.deadlines import date_certainty
    from cloud.workflow.models import EnforcementCase, InspectionTask
    from cloud.workflow.states import CASE_MACHINE, TASK_MACHINE

    today = dt.datetime.now(TZ).date()
    rows: list[dict[str, Any]] = []
    task_query = select(InspectionTask).where(col(InspectionTask.state).not_in(["closed", "cancelled", "declined"]))
    case_query = select(EnforcementCase)
    if scope is not None and not scope.county:
        task_query = task_query.where(scope.where(InspectionTask.department_id))  # type: ignore[arg-type]
        case_query = case_query.where(scope.where(EnforcementCase.department_id))  # type: ignore[arg-type]
    open_tasks = session.exec(task_query)
    for task in open_tasks:
        people = staffing.assignees(session, "task", task.id or 0)
        if user_id is not None and user_id not in people:
            continue
        left = _remaining_working_days(task.due_date, today)
        rows.append(
            {
                "kind": "task",
                "id": task.id,
                "no": task.task_no,
                "title": f"检查任务 {task.task_no}",
                "state": str(task.state),
                "state_label": TASK_MACHINE.state_label(task.state),
                "clue_id": task.clue_id,
                "site_id": task.site_id,
                "deadline": "检查任务办理期限",
                "due": task.due_date.isoformat(),
                "certainty": date_certainty(task.due_date, today),
                "remaining_working_days": left,
                "status": _task_status(task.due_date, today, left),
                "people": people,
            }
        )
    for case in session.exec(case_query):
        people = staffing.assignees(session, "case", case.id or 0)
        if user_id is not None and user_id not in people:
            continue
        for clock in enforcement.compute_clocks(case):
            if not clock.get("running"):
                continue
            rows.append(
                {
                    "kind": "case",
                    "id": case.id,
                    "no": case.case_no,
                    "title": f"案件 {case.case_no} {case.party_name or ''}".strip(),
                    "state": str(case.state),
                    "state_label": CASE_MACHINE.state_label(case.state),
                    "clue_id": case.clue_id,
                    "site_id": None,
                    "deadline": clock["name"],
                    "due": clock["due"],
                    "certainty": clock.get("certainty", "official"),
                    "remaining_working_days": clock["remaining_working_days"],
                    "status": clock["status"],
                    "people": people,
                }
            )
    rows.sort(key=lambda r: (r["due"], r["kind"], r["id"] or 0))
    return rows[:limit]


@router.get("/deadlines", summary="期限：在办检查任务与案件法定期限（剩余工作日）")
def get_deadlines(
    session: SessionDep,
    user: StaffUser,
    scope: ScopeDep,
    mine: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    return deadline_rows(session, user_id=user.id if mine else None, limit=limit, scope=scope)


# ---------------------------------------------------------------- overview (big screen)
@router.get("/overview", summary="总览：按领域统计、场所在线、24 小时趋势、最新告警、期限预警")
def get_overview(session: SessionDep, _: StaffUser, scope: ScopeDep) -> dict[str, Any]:
    from cloud.presence import AgentPresence
    from cloud.workflow.clues import Clue, ClueStatus

    now = utcnow()
    journal_id = int(session.exec(select(func.max(col(journal.JournalEvent.id)))).one() or 0)
    sites = _site_categories(session)
    visible = visible_sites(session, scope)
    alerts_in: list[Any] = []  # jurisdiction: the caller's sites and clues only
    clues_in: list[Any] = []
    if visible is not None:
        sites = {k: v for k, v in sites.items() if k in visible}
        alerts_in.append(col(Alert.site_id).in_(sorted(visible)))
        clues_in.append(scope.where(Clue.department_id))
    counts: dict[str, dict[str, Any]] = {
        d: {"label": label, "open_alerts": 0, "open_clues": 0, "sites": 0} for d, label in DOMAINS.items()
    }
    for cat in sites.values():
        if cat in counts:
            counts[cat]["sites"] += 1
    for alert in session.exec(select(Alert).where(Alert.status == AlertStatus.OPEN, *alerts_in)):
        d = domain_of(alert.category, sites.get(alert.site_id))
        if d:
            counts[d]["open_alerts"] += 1
    for clue in session.exec(select(Clue).where(Clue.status == ClueStatus.OPEN, *clues_in)):
        d = domain_of(clue.category, sites.get(clue.site_id or ""))
        if d:
            counts[d]["open_clues"] += 1

    # presence: a site is online when any of its agents is online
    agents = [a for a in session.exec(select(AgentPresence)) if visible is None or a.site_id in visible]
    site_state: dict[str, bool] = {}
    for agent in agents:
        site_state[agent.site_id] = site_state.get(agent.site_id, False) or agent.state == "online"
    online = sum(1 for v in site_state.values() if v)
    offline = sum(1 for v in site_state.values() if not v)

    # trend: alerts raised per hour over the last 24 h, per domain (Beijing hours)
    start = (now - dt.timedelta(hours=23)).replace(minute=0, second=0, microsecond=0)
    hours = [start + dt.timedelta(hours=i) for i in range(24)]
    series = {d: [0] * 24 for d in DOMAINS}
    for alert in session.exec(select(Alert).where(col(Alert.started_at) >= start, *alerts_in)):
        d = domain_of(alert.category, sites.get(alert.site_id))
        started = alert.started_at if alert.started_at.tzinfo else alert.started_at.replace(tzinfo=dt.UTC)
        idx = int((started - start).total_seconds() // 3600)
        if d and 0 <= idx < 24:
            series[d][idx] += 1

    recent = session.exec(select(Alert).where(*alerts_in).order_by(col(Alert.id).desc()).limit(20))
    total_open_clues = session.exec(
        select(func.count()).select_from(Clue).where(Clue.status == ClueStatus.OPEN, *clues_in)
    ).one()
    rows = deadline_rows(session, limit=500, scope=scope)
    warnings = [r for r in rows if r["status"] in ("overdue", "due_soon")][:20]
    return {
        "generated_at": now.isoformat(),
        "journal_id": journal_id,  # pass as ?after= to /console/live: no gap between this view and the stream
        "domains": counts,
        "open_clues": int(total_open_clues),
        "sites": {"known": len(sites), "reporting": len(site_state), "online": online, "offline": offline},
        "trend": {
            "hours": [h.astimezone(TZ).strftime("%H:00") for h in hours],
            "series": {d: {"label": DOMAINS[d], "data": v} for d, v in series.items()},
        },
        "recent_alerts": [_alert_event(a, sites, session) for a in recent],
        "deadline_warnings": warnings,
    }


def _alert_event(alert: Alert, sites: dict[str, str | None], session: Session) -> dict[str, Any]:
    return {
        "id": alert.id,
        "site_id": alert.site_id,
        "place": place_label(session, alert.site_id, alert.device_id, alert.sensor_id),
        "sensor_id": alert.sensor_id,
        "rule_id": alert.rule_id,
        "status": str(alert.status),
        "severity": alert.severity,
        "category": alert.category,
        "domain": domain_of(alert.category, sites.get(alert.site_id)),
        "message": alert.message,
        "value": alert.value,
        "limit": alert.limit,
        "unit": alert.unit,
        "started_at": alert.started_at.isoformat(),
    }


# ---------------------------------------------------------------- clue context
@router.get("/clues/{clue_id}/context", summary="线索上下文：告警、读数时间窗、证据")
def get_clue_context(session: SessionDep, _: StaffUser, clue_id: int) -> dict[str, Any]:
    from cloud.workflow.clues import Clue, ClueSource
    from cloud.workflow.models import InspectionResult, InspectionTask

    clue = session.get(Clue, clue_id)
    if clue is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "线索不存在")
    sources = list(session.exec(select(ClueSource).where(ClueSource.clue_id == clue_id)))
    alert_ids = [s.alert_id for s in sources if s.alert_id is not None]
    alerts = (
        list(session.exec(select(Alert).where(col(Alert.id).in_(alert_ids)).order_by(col(Alert.id))))
        if alert_ids
        else []
    )
    sites = _site_categories(session)
    evidence: list[dict[str, Any]] = [
        {"sha256": ref["sha256"], "label": ref.get("label") or "现场抓拍", "from": "alert"}
        for alert in alerts
        for ref in alert.evidence
        if isinstance(ref, dict) and ref.get("sha256")
    ]
    for source in sources:
        refs = source.extra.get("evidence")
        for ref in refs if isinstance(refs, list) else []:
            if isinstance(ref, dict) and ref.get("sha256"):
                evidence.append({"sha256": ref["sha256"], "label": ref.get("label") or "现场抓拍", "from": "alert"})
    tasks = list(session.exec(select(InspectionTask).where(InspectionTask.clue_id == clue_id)))
    for task in tasks:
        for result in session.exec(select(InspectionResult).where(InspectionResult.task_id == task.id)):
            for sha in result.photos:
                evidence.append({"sha256": sha, "label": f"检查照片 {result.item_code}", "from": "inspection"})
    window: dict[str, Any] | None = None
    # the chart follows the clue's most important source: the most severe alert with a reading (earliest on a tie),
    # so a critical 8 °C threshold alert wins over the minor rate-of-change alert that opened the clue
    with_reading = [a for a in alerts if a.sensor_id]
    first = min(with_reading, key=lambda a: (_SEVERITY_RANK.get(a.severity, 99), a.id or 0)) if with_reading else None
    if first is not None and first.sensor_id:
        started = first.started_at if first.started_at.tzinfo else first.started_at.replace(tzinfo=dt.UTC)
        end = (first.cleared_at or utcnow()) + dt.timedelta(minutes=30)
        end = end if end.tzinfo else end.replace(tzinfo=dt.UTC)
        window = {
            "site_id": first.site_id,
            "sensor_id": first.sensor_id,
            "start": (started - dt.timedelta(hours=2)).isoformat(),
            "end": max(end, started + dt.timedelta(minutes=30)).isoformat(),
            "alert_at": started.isoformat(),
            # a rate-of-change limit (°C/min) is no line on a chart of the readings (°C)
            "limit": None if (first.unit or "").endswith("/min") else first.limit,
            "unit": first.unit,
        }
    return {
        "clue_id": clue_id,
        "domain": domain_of(clue.category, sites.get(clue.site_id or "")),
        "alerts": [
            {**_alert_event(a, sites, session), "cleared_at": a.cleared_at.isoformat() if a.cleared_at else None}
            for a in alerts
        ],
        "window": window,
        "evidence": [{**e, "url": f"/api/v1/evidence/{e['sha256']}"} for e in evidence],
    }


# ---------------------------------------------------------------- dispatch candidates
@router.get("/clues/{clue_id}/candidates", summary="派发候选人员：辖区、在办工作量、回避（建议人选在前）")
def get_dispatch_candidates(session: SessionDep, _: StaffUser, clue_id: int) -> dict[str, Any]:
    """The inspectors a dispatcher may choose for a clue, each with department, open workload and recusal; the ones
    dispatch would pick by itself are ``suggested``. Also which dispositions the clue's current analysis allows."""
    from cloud.registry.models import Department
    from cloud.workflow import staffing
    from cloud.workflow.analysis import Disposal
    from cloud.workflow.clues import Clue
    from cloud.workflow.config import workflow_rules
    from cloud.workflow.decisions import current_decision
    from cloud.workflow.models import Recusal
    from cloud.workflow.service import WorkflowError
    from cloud.workflow.states import Role as Duty

    clue = session.get(Clue, clue_id)
    if clue is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "线索不存在")
    count = workflow_rules().dispatch.inspectors_per_task
    people = [a for a in staffing.directory(session, Duty.INSPECTOR) if a.user_id is not None]
    loads = staffing.workloads(session, [a.user_id for a in people if a.user_id is not None])
    recusals = (
        {r.user_id: r.reason for r in session.exec(select(Recusal).where(Recusal.subject_id == clue.subject_id))}
        if clue.subject_id is not None
        else {}
    )
    try:
        suggested = {
            m.actor.user_id
            for m in staffing.pick(
                session, duty=Duty.INSPECTOR, count=count, department_id=clue.department_id, subject_id=clue.subject_id
            )
        }
    except WorkflowError:
        suggested = set()
    departments = {d.id: d.name for d in session.exec(select(Department))}
    rows = [
        {
            "user_id": a.user_id,
            "name": a.name,
            "department": departments.get(a.department_id) if a.department_id else None,
            "in_jurisdiction": a.department_id is None or a.department_id == clue.department_id,
            "open_workload": loads.get(a.user_id or 0, 0),
            "recused": a.user_id in recusals,
            "recusal_reason": recusals.get(a.user_id or 0),
            "suggested": a.user_id in suggested,
        }
        for a in people
    ]
    rows.sort(key=lambda r: (not r["suggested"], r["recused"], not r["in_jurisdiction"], r["open_workload"]))
    decision = current_decision(session, clue_id)
    dispatchable = [Disposal.INSPECT.value, Disposal.OPEN_CASE.value]
    return {
        "clue_id": clue_id,
        "needed": count,
        "candidates": rows,
        "decision": decision.disposal if decision else None,
        "default_disposal": decision.disposal if decision and decision.disposal in dispatchable else None,
        "dispositions": dispatchable,
    }


# ---------------------------------------------------------------- live feed (SSE)
LIVE_ACTIONS = ["alert.raised", "alert.cleared", "clue.created", "task.created", "task.transition", "clue.transition"]


def _live_user(user: StreamUser) -> str:
    """Staff only (a device account has no business on the live feed); session checks as for every request."""
    if str(user.role) not in ("admin", "supervisor", "inspector", "auditor"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "无权限 (forbidden)")
    return user.username


def _in_scope(session: Session, scope: Scope, ev: journal.JournalEvent, visible: set[str] | None) -> bool:
    """An event of the live feed is shown where its alert's site or its clue/task is."""
    if visible is None:
        return True
    if ev.action.startswith("alert."):
        return str((ev.payload or {}).get("site_id")) in visible
    departments = departments_of(session, f"{ev.target_type}_id", str(ev.target_id))
    return any(scope.allows(d) for d in departments or [None])


def _last_event_id(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.max(col(journal.JournalEvent.id)))).one() or 0)


def _events_after(engine: Engine, after: int, scope: Scope | None = None) -> list[dict[str, Any]]:
    with Session(engine) as session:
        sites = None
        visible = visible_sites(session, scope) if scope is not None else None
        out: list[dict[str, Any]] = []
        for ev in journal.read_since(session, after, limit=200, actions=LIVE_ACTIONS):
            if scope is not None and not _in_scope(session, scope, ev, visible):
                out.append({"id": ev.id, "skip": True})  # moves the cursor, sends nothing
                continue
            payload = dict(ev.payload or {})
            if ev.action.startswith("alert."):
                sites = sites if sites is not None else _site_categories(session)
                payload["domain"] = domain_of(payload.get("category"), sites.get(str(payload.get("site_id"))))
                payload["place"] = place_label(  # people read names, not ids (big screen, board)
                    session, str(payload.get("site_id")), payload.get("device_id"), payload.get("sensor_id")
                )
            out.append(
                {
                    "id": ev.id,
                    "type": ev.action.split(".")[0],
                    "action": ev.action,
                    "ts": ev.ts.isoformat(),
                    "target_id": ev.target_id,
                    "actor": ev.actor,  # the page tells one's own actions from others' (not shown)
                    "payload": payload,
                }
            )
        return out


async def live_frames(
    request: Request,
    engine: Engine,
    after: int,
    *,
    poll_s: float = 0.5,
    keepalive_s: float = 15.0,
    scope: Scope | None = None,
) -> AsyncIterator[str]:
    import json

    from cloud.core.live import JOURNAL, LiveWake

    wake: LiveWake | None = getattr(request.app.state, "live", None)
    woken = wake.subscribe(JOURNAL) if wake is not None else None  # LISTEN/NOTIFY on PostgreSQL (every instance)
    try:
        yield "retry: 2000\n: connected\n\n"
        quiet_since = time.monotonic()
        while not await request.is_disconnected():
            if woken is not None:
                woken.clear()
            if getattr(request.app.state, "console_closing", False):
                return
            events = await asyncio.to_thread(_events_after, engine, after, scope)
            for event in events:
                after = event["id"]
                if event.get("skip"):
                    continue
                data = json.dumps(event, ensure_ascii=False, default=str)
                yield f"id: {event['id']}\nevent: {event['type']}\ndata: {data}\n\n"
            if events:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > keepalive_s:
                quiet_since = time.monotonic()
                yield ": keepalive\n\n"
            if events:
                continue
            if wake is not None and woken is not None and wake.listening:
                await wake.wait(woken)
            else:
                await asyncio.sleep(poll_s)
    finally:
        if wake is not None and woken is not None:
            wake.unsubscribe(JOURNAL, woken)


@router.get("/live", summary="实时告警与线索流 (Server-Sent Events)", response_class=StreamingResponse)
async def live(
    request: Request,
    _: Annotated[str, Depends(_live_user)],
    scope: StreamScopeDep,
    after: Annotated[int | None, Query(ge=0, description="从该日志编号之后开始（默认：现在）")] = None,
) -> StreamingResponse:
    engine: Engine = request.app.state.engine
    last = request.headers.get("last-event-id", "")
    if last.isdigit():  # a reconnecting EventSource resumes where it stopped
        after = int(last)
    elif after is None:
        after = await asyncio.to_thread(_last_event_id, engine)
    return StreamingResponse(
        live_frames(request, engine, after, scope=scope),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


# ---------------------------------------------------------------- self-service kiosk (public)
KIOSK_MAX_BODY = 16 * 1024
KIOSK_LIMIT = 5  # submissions per client address per window (anonymous: no registered terminal credential)
KIOSK_TERMINAL_LIMIT = 60  # submissions per registered terminal per window (a hall's terminal serves many people)
KIOSK_WINDOW_S = 600.0
KIOSK_GLOBAL_LIMIT = 120  # all clients per window (a flood from many addresses)


class RateLimiter:
    """Sliding-window counter per key, plus a global bound; in memory (one terminal hall per process).

    ``per_terminal``: the per-key limit of a registered terminal (:mod:`cloud.security.kiosks`); other keys (an
    anonymous client address) get ``per_key``."""

    def __init__(self, per_key: int, total: int, window_s: float, per_terminal: int | None = None) -> None:
        self.per_key, self.total, self.window_s = per_key, total, window_s
        self.per_terminal = per_key if per_terminal is None else per_terminal
        self._hits: dict[str, deque[float]] = {}
        self._all: deque[float] = deque()
        self._lock = threading.Lock()

    def allow(self, key: str, now: float | None = None, *, terminal: bool = False) -> float:
        """0 when allowed (and counted), else seconds until the next submission is allowed."""
        now = time.monotonic() if now is None else now
        limit = self.per_terminal if terminal else self.per_key
        with self._lock:
            for q in (self._all, self._hits.setdefault(key, deque())):
                while q and now - q[0] > self.window_s:
                    q.popleft()
            mine = self._hits[key]
            if len(mine) >= limit:
                return self.window_s - (now - mine[0])
            if len(self._all) >= self.total:
                return self.window_s - (now - self._all[0])
            mine.append(now)
            self._all.append(now)
            return 0.0


def _limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter | None = getattr(request.app.state, "kiosk_limiter", None)
    if limiter is None:
        limiter = RateLimiter(KIOSK_LIMIT, KIOSK_GLOBAL_LIMIT, KIOSK_WINDOW_S, KIOSK_TERMINAL_LIMIT)
        request.app.state.kiosk_limiter = limiter
    return limiter


def _kiosk_caller(request: Request) -> Caller:
    """A registered terminal (its ``X-Kiosk-Token`` credential) or the anonymous client address."""
    with Session(request.app.state.engine) as session:
        return kiosk_caller(session, request.headers.get(KIOSK_HEADER), request.client.host if request.client else None)


class KioskComplaintIn(BaseModel):
    """What a citizen types at the terminal (12315-style). Complaint: own dispute with a business; report: a
    violation seen (may be anonymous)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: Literal["complaint", "report"] = "complaint"
    category: str | None = Field(default=None, max_length=64, pattern=r"^[a-z0-9_]+$")
    complainant_name: str | None = Field(default=None, max_length=64)
    complainant_phone: str | None = Field(default=None, max_length=32)
    complainant_address: str | None = Field(default=None, max_length=300)
    anonymous: bool = False
    respondent_name: str = Field(min_length=2, max_length=200)
    respondent_address: str | None = Field(default=None, max_length=300)
    request: str = Field(default="", max_length=2000)
    facts: str = Field(min_length=5, max_length=4000)
    incident_at: AwareDatetime | None = None
    incident_place: str | None = Field(default=None, max_length=300)
    goods: str | None = Field(default=None, max_length=200)
    amount: Decimal | None = Field(default=None, ge=0, max_digits=14, decimal_places=2)


def receipt_number(now: dt.datetime) -> str:
    """ZZ + Beijing date + 6 random digits: printed on the receipt and stored as the work order number."""
    return f"ZZ{now.astimezone(TZ):%Y%m%d}{secrets.randbelow(10**6):06d}"


@router.post(
    "/kiosk/complaints",
    status_code=status.HTTP_201_CREATED,
    dependencies=[public("self-service terminal: rate- and size-limited")],
    summary="自助终端投诉举报（无需登录；限流、限大小；返回受理回执号）",
)
async def post_kiosk_complaint(request: Request) -> JSONResponse:
    from cloud.workflow.intake import WorkOrderIn, accept_due_view, intake
    from cloud.workflow.service import Actor, WorkflowError
    from cloud.workflow.states import Role as Duty

    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > KIOSK_MAX_BODY:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "内容过长，请精简后再提交")
    body = await request.body()
    if len(body) > KIOSK_MAX_BODY:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, "内容过长，请精简后再提交")
    who = await asyncio.to_thread(_kiosk_caller, request)
    wait = _limiter(request).allow(who.key, terminal=who.registered)
    if wait > 0:
        return JSONResponse(
            {"detail": f"提交过于频繁，请 {int(wait // 60) + 1} 分钟后再试", "code": "rate_limited"},
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
            headers={"Retry-After": str(int(wait) + 1)},
        )
    try:
        form = KioskComplaintIn.model_validate_json(body)
    except ValidationError as exc:
        fields = sorted({str(e["loc"][0]) for e in exc.errors() if e.get("loc")})
        return JSONResponse(
            {"detail": "请检查填写内容", "code": "invalid", "fields": fields},
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    now = utcnow()
    receipt = receipt_number(now)
    terminal = f"自助终端（{who.terminal.name}）" if who.terminal else "自助终端"
    kiosk = Actor("kiosk", None, terminal, frozenset({Duty.INTAKE_CLERK}))

    def store() -> dict[str, Any]:
        order = WorkOrderIn(channel="walk_in", external_no=receipt, received_at=now, **form.model_dump())
        from cloud.workflow.progress import issue_code

        with Session(writer(request.app.state.engine)) as session:
            result = intake(session, order, kiosk)
            code = issue_code(session, result.order)
            session.commit()
            return {
                "receipt_no": receipt,
                "verify_code": code,  # shown once with the receipt: receipt + code look up the progress
                "received_at": now.astimezone(TZ).isoformat(),
                **accept_due_view(result.order),  # and no internal id: the terminal is public (a clue's id
                # would tell a second reporter that the business was reported already)
                "message": "您的投诉举报已提交。市场监管部门将在 7 个工作日内决定是否受理，请妥善保存回执号。"
                + (
                    "受理期限按暂定节假日安排推算（官方放假安排尚未公布），以实际公布为准。"
                    if result.order.accept_due_warnings
                    else ""
                ),
            }

    try:
        answer = await asyncio.to_thread(store)
    except ValidationError as exc:
        fields = sorted({str(e["loc"][0]) for e in exc.errors() if e.get("loc")})
        return JSONResponse({"detail": "请检查填写内容", "code": "invalid", "fields": fields}, status_code=422)
    except WorkflowError as exc:
        return JSONResponse({"detail": exc.message, "code": exc.code, **exc.extra}, status_code=exc.status)
    return JSONResponse(answer, status_code=status.HTTP_201_CREATED)


class KioskProgressIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    receipt_no: str = Field(min_length=4, max_length=64)
    code: str = Field(min_length=6, max_length=6, pattern=r"^[0-9]{6}$")


KIOSK_LOOKUPS = 20  # lookups per client address per window (the code is 6 digits: 5 failures lock a receipt)
KIOSK_TERMINAL_LOOKUPS = 200  # lookups per registered terminal per window


@router.post(
    "/kiosk/progress",
    dependencies=[public("self-service terminal: progress by receipt number + verification code, no personal data")],
    summary="自助终端办理进度查询（回执号 + 查询码；不含个人信息；错误 5 次锁定）",
)
def post_kiosk_progress(request: Request, body: KioskProgressIn) -> JSONResponse:
    from cloud.workflow.progress import LookupRefused, lookup

    limiter: RateLimiter | None = getattr(request.app.state, "kiosk_lookup_limiter", None)
    if limiter is None:
        limiter = RateLimiter(KIOSK_LOOKUPS, KIOSK_GLOBAL_LIMIT * 5, KIOSK_WINDOW_S, KIOSK_TERMINAL_LOOKUPS)
        request.app.state.kiosk_lookup_limiter = limiter
    who = _kiosk_caller(request)
    wait = limiter.allow(who.key, terminal=who.registered)
    if wait > 0:
        return JSONResponse(
            {"detail": f"查询过于频繁，请 {int(wait // 60) + 1} 分钟后再试", "code": "rate_limited"},
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
            headers={"Retry-After": str(int(wait) + 1)},
        )
    with Session(writer(request.app.state.engine)) as session:
        try:
            answer = lookup(session, body.receipt_no, body.code)
        except LookupRefused as exc:
            session.commit()  # the failed attempt counts
            code = status.HTTP_423_LOCKED if exc.code == "locked" else status.HTTP_404_NOT_FOUND
            return JSONResponse({"detail": exc.message, "code": exc.code}, status_code=code)
        session.commit()
    return JSONResponse(answer)
