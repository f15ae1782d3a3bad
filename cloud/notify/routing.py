"""Routing: from a journal event to an incident description and the people who must hear about it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, select

from cloud.journal import JournalEvent
from cloud.notify.config import Route, RoutingRules
from cloud.notify.models import Contact, Rank, SiteContact
from cloud.notify.roster import on_duty

CATEGORY_LABELS = {
    "drug_storage": "药品储存",
    "food_cold_chain": "食品冷链",
    "elevator": "电梯",
    "boiler": "锅炉",
    "special_equipment": "特种设备",
    "presence": "设备在线",
    "power": "供电",
    "video": "视频监控",
    "online_advertising": "网络广告",
    "online_price": "网络价格",
}
SEVERITY_LABELS = {"critical": "紧急", "major": "重要", "minor": "次要", "warning": "警告", "indeterminate": "待定"}


@dataclass(slots=True)
class Facts:
    """What routing and the message need to know about one event."""

    action: str
    key: str
    kind: str
    title: str
    body: str = ""
    place: str | None = None  # the place as the clue names it (场所·设备), for the body
    severity: str = "minor"
    category: str | None = None
    rule_id: str | None = None
    site_id: str | None = None
    site_category: str | None = None
    department: str | None = None
    department_id: int | None = None
    channel: str | None = None
    clue_id: int | None = None
    alert_id: int | None = None
    target_type: str | None = None
    target_id: str | None = None
    assignees: list[str] = field(default_factory=list)

    def as_match(self) -> dict[str, str | None]:
        return {
            "severity": self.severity,
            "category": self.category,
            "rule_id": self.rule_id,
            "site_id": self.site_id,
            "site_category": self.site_category,
            "channel": self.channel,
        }


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def facts_from_event(event: JournalEvent, session: Session | None = None) -> Facts:
    """The routing facts and the title of ``event``; with a session, places are named as on the clue (场所·设备)."""
    p = event.payload or {}
    action = event.action
    clue_id = _int(p.get("clue_id")) or (_int(event.target_id) if event.target_type == "clue" else None)
    alert_id = _int(p.get("alert_id")) or (_int(event.target_id) if event.target_type == "alert" else None)
    assignees = [str(a) for a in (p.get("assignees") or [])]
    for key in ("assignee", "user", "inspector"):
        if p.get(key):
            assignees.append(str(p[key]))
    severity = str(p.get("severity") or "minor")
    category = p.get("category")
    site_id = p.get("site_id")
    cat = CATEGORY_LABELS.get(str(category), str(category or ""))
    if action == "alert.raised":
        key = f"clue:{clue_id}" if clue_id else f"alert:{site_id}/{p.get('device_id')}/{p.get('rule_id')}"
        from cloud.workflow.clues import more_severe, place_label  # the clue's own wording of a place

        device_id, sensor_id = p.get("device_id"), p.get("sensor_id")
        where = place_label(session, str(site_id), device_id, sensor_id) if site_id else f"{sensor_id or device_id}"
        # the clue's severity once a graver source joined it (the journal carries it: no lookup per event)
        severity = more_severe(str(p.get("clue_severity") or severity), severity)
        title = f"【{SEVERITY_LABELS.get(severity, severity)}】{cat}告警 {where}"
        body = ""  # where/what/since when: message.describe, once a route wants it
        kind = "alert"
    elif action == "clue.created":
        key = f"clue:{clue_id or event.target_id}"
        title = f"【新线索】{p.get('title') or cat or event.target_id}"
        body = ""
        kind = "clue"
    elif action.startswith("supervision."):
        key = f"{action}:{p.get('clock_id')}:{p.get('target_type')}:{p.get('target_id')}"
        title = str(p.get("title") or f"【督办】{p.get('clock_name') or action}")
        body = str(p.get("message") or "")
        kind = "supervision"
        severity = str(p.get("severity") or ("major" if action.endswith("clue_created") else "warning"))
    else:
        key = f"{event.target_type}:{event.target_id}:{action}"
        title = str(p.get("title") or workflow_title(event))
        body = str(p.get("message") or p.get("summary") or "")
        kind = event.target_type
    return Facts(
        action=action,
        key=key,
        kind=kind,
        title=title[:300],
        body=body[:2000],
        place=where if action == "alert.raised" else None,
        severity=severity,
        category=str(category) if category else None,
        rule_id=str(p["rule_id"]) if p.get("rule_id") else None,
        site_id=str(site_id) if site_id else None,
        department=str(p["department"]) if p.get("department") else None,
        department_id=_int(p.get("department_id")),
        channel=str(p["channel"]) if p.get("channel") else None,
        clue_id=clue_id,
        alert_id=alert_id,
        target_type=event.target_type,
        target_id=event.target_id,
        assignees=list(dict.fromkeys(assignees)),
    )


#: Chinese wording of workflow events that have no title of their own (verbs after the dot of the action).
EVENT_VERBS: dict[str, str] = {
    "created": "已创建",
    "assigned": "已指派给您",
    "registered": "已登记",
    "approved": "已批准",
    "extended": "已延期",
    "analysed": "研判完成",
    "decision_overridden": "研判结论已改判",
    "submitted": "已提交",
}


def workflow_title(event: JournalEvent) -> str:
    """``【检查任务】JC-2026-0001 已指派给您`` / ``【案件】AJ-… 状态变为 已立案`` from the workflow's own labels."""
    from cloud.workflow.states import MACHINES

    p = event.payload or {}
    machine = MACHINES.get(event.target_type)
    noun = {"task": "检查任务"}.get(event.target_type, machine.label if machine else event.target_type)
    ident = p.get("task_no") or p.get("case_no") or p.get("clue_no") or f"#{event.target_id}"
    verb = event.action.partition(".")[2]
    if verb == "transition" and machine is not None and p.get("to"):
        try:
            what = f"状态变为“{machine.state_label(machine.states(p['to']))}”"
        except (ValueError, KeyError):
            what = f"状态变为 {p['to']}"
    else:
        what = EVENT_VERBS.get(verb, verb)
    return f"【{noun}】{ident} {what}"


def site_category(session: Session, site_id: str | None) -> str | None:
    """The registry category of ``site_id`` (drug, food, special_equipment …), or None."""
    if not site_id:
        return None
    try:
        from cloud.registry.models import Site
    except ModuleNotFoundError:  # registry not installed
        return None
    site = session.get(Site, site_id)
    return site.category if site else None


def designated_count(session: Session, route: Route, people: list[str], site_id: str | None) -> int:
    """How many of ``people`` are the site's designated contacts for ``route`` (enterprise people)."""
    if not site_id or "site_contacts" not in route.recipients:
        return 0
    keys = set(
        session.exec(
            select(SiteContact.contact_key).where(
                SiteContact.site_id == site_id, SiteContact.designation == route.designation
            )
        ).all()
    )
    return len([p for p in people if p in keys])


def site_department(session: Session, site_id: str | None) -> str | None:
    """The code of the department responsible for ``site_id`` (registry), or None."""
    if not site_id:
        return None
    try:
        from cloud.registry.models import Department, Site
    except ModuleNotFoundError:  # registry not installed
        return None
    site = session.get(Site, site_id)
    if site is None or site.department_id is None:
        return None
    dept = session.get(Department, site.department_id)
    return dept.code if dept else None


def people_of_rank(session: Session, department: str | None, rank: Rank) -> list[str]:
    if not department:
        return []
    rows = session.exec(
        select(Contact.key).where(Contact.department == department, Contact.rank == rank, Contact.is_active)
    ).all()
    return list(rows)


def resolve_recipients(
    session: Session, route: Route, facts: Facts, department: str | None, now: dt.datetime
) -> list[str]:
    people: list[str] = []
    for kind in route.recipients:
        if kind == "on_duty" and department:
            people += on_duty(session, department, now)
        elif kind == "site_contacts" and facts.site_id:
            people += session.exec(
                select(SiteContact.contact_key).where(
                    SiteContact.site_id == facts.site_id, SiteContact.designation == route.designation
                )
            ).all()
        elif kind == "assignee":
            people += _usernames(session, facts.assignees)
        elif kind == "supervisors":
            people += people_of_rank(session, department, Rank.SUPERVISOR)
        elif kind == "admins":
            people += system_admins(session)
    return list(dict.fromkeys(people))


def system_admins(session: Session) -> list[str]:
    """The active system administrators' usernames (e.g. data of an unregistered site waits for them)."""
    from cloud.core.users import Role, User

    rows = session.exec(select(User.username).where(User.role == Role.ADMIN, User.is_active)).all()
    return sorted(rows)


def _usernames(session: Session, values: list[str]) -> list[str]:
    """Assignees given as user ids (workflow payloads) or usernames → usernames."""
    from cloud.core.users import User

    out: list[str] = []
    for value in values:
        if value.isdigit():
            user = session.get(User, int(value))
            if user is not None:
                out.append(user.username)
        else:
            out.append(value)
    return out


def department_code(session: Session, department_id: int | None) -> str | None:
    if department_id is None:
        return None
    try:
        from cloud.registry.models import Department
    except ModuleNotFoundError:
        return None
    dept = session.get(Department, department_id)
    return dept.code if dept else None


def department_for(session: Session, rules: RoutingRules, facts: Facts) -> str | None:
    return (
        facts.department
        or department_code(session, facts.department_id)
        or site_department(session, facts.site_id)
        or (rules.default_department or None)
    )


def contact_for(session: Session, key: str) -> Contact:
    """The stored contact, or an in-app + MQTT default for an app user without a contact record."""
    contact = session.exec(select(Contact).where(Contact.key == key)).first()
    return contact or Contact(key=key, full_name=key)
