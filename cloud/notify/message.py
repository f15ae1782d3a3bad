"""The words of a notification (issue #19): a severity taken from the clue or alert and a body a person can act on.

Every channel (e-mail, webhook/WeCom/DingTalk, MQTT, the in-app list and the phone) renders the same
:class:`~cloud.notify.models.Incident` title and body, so the wording is made once, here:

* where: the place as the clue names it (场所·设备) and the site's registered address;
* what happened: the measured quantity in Chinese, the value with its unit, the limit, since when (Asia/Shanghai);
* by when: the acknowledgement deadline before the alarm escalates, a rescue SLA, a task's due date;
* the link: the clue in the console, a task on the phone.

The severity of an alert notification is its clue's (the most severe of its sources, carried in the journal event),
else the alert's own; a task notification carries its clue's severity. Nothing is defaulted to 次要 when the source
says otherwise.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

if TYPE_CHECKING:
    from cloud.journal import JournalEvent
    from cloud.notify.routing import Facts

TZ = ZoneInfo("Asia/Shanghai")
#: units as a person writes them
UNIT_TEXT = {"°C": "℃", "degC": "℃", "C": "℃", "celsius": "℃", "%": "%", "RH": "%RH", "pct": "%"}
ESCALATES_TO = {"supervisor": "分管负责人", "head": "部门负责人"}


def local_time(value: dt.datetime | str | None, fmt: str = "%Y-%m-%d %H:%M") -> str | None:
    """An aware time (or ISO string) as read in Asia/Shanghai; None for nothing or a time without a zone."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)  # the database's naive times are UTC
    return value.astimezone(TZ).strftime(fmt)


def amount(value: Any, unit: str | None) -> str:
    """``9.3 ℃``: the number as measured (no trailing zeros) and the unit as a person writes it."""
    try:
        number = f"{float(value):g}"
    except (TypeError, ValueError):
        number = str(value)
    text = unit_text(unit)
    return f"{number} {text}".strip()


def unit_text(unit: str | None) -> str:
    """A unit as a person writes it: ``°C`` → ℃, a rate of change ``°C/min`` → ℃/分钟."""
    if unit and unit.endswith("/min"):
        return f"{unit_text(unit[: -len('/min')])}/分钟"
    return UNIT_TEXT.get(unit or "", unit or "")


def site_line(session: Session | None, site_id: str | None) -> str | None:
    """``场所：仁和大药房（地址：…）`` from the registry; the id only for a site that is not registered."""
    if not site_id:
        return None
    from cloud.registry.models import Site

    site = session.get(Site, site_id) if session is not None else None
    if site is None:
        return f"场所：{site_id}（未登记）"
    address = f"（地址：{site.address}）" if site.address else "（地址未登记）"
    return f"场所：{site.name}{address}"


def _measured(place: str | None, p: Mapping[str, Any]) -> str:
    """The measuring point in words (药品冷藏柜 1 号温度), without the site's name."""
    if not place:
        return str(p.get("sensor_id") or p.get("device_id") or "")
    return place.split("·", 1)[1] if "·" in place else "监测点"


def alert_lines(session: Session | None, p: Mapping[str, Any], place: str | None) -> list[str]:
    """Where, what and since when of an ``alert.raised`` payload (``place``: the clue's 场所·设备 label)."""
    lines = [line for line in [site_line(session, p.get("site_id"))] if line]
    unit = p.get("unit")
    if p.get("value") is not None:
        what = f"情况：{_measured(place, p)} {amount(p['value'], unit)}"
        if p.get("limit") is not None:
            what += f"，限值 {amount(p['limit'], unit)}"
        lines.append(what)
        if p.get("message"):
            lines.append(f"说明：{p['message']}")
    elif p.get("message"):
        lines.append(f"情况：{_measured(place, p)} {p['message']}".replace("情况： ", "情况："))
    since = local_time(p.get("started_at"))
    if since:
        lines.append(f"开始时间：{since}（北京时间）")
    return lines


def clue_lines(session: Session | None, clue_id: int | None, p: Mapping[str, Any]) -> list[str]:
    """Where and what of a new clue (a complaint, a report …)."""
    from cloud.workflow.clues import Clue

    clue = session.get(Clue, clue_id) if session is not None and clue_id else None
    lines = [line for line in [site_line(session, p.get("site_id") or (clue.site_id if clue else None))] if line]
    if clue is not None and clue.subject_name and not clue.site_id:
        lines.append(f"当事人：{clue.subject_name}")
    summary = p.get("summary") or (clue.description if clue else "") or p.get("title") or (clue.title if clue else "")
    if summary:
        lines.append(f"情况：{str(summary)[:300]}")
    since = local_time(clue.first_seen_at if clue else None)
    if since:
        lines.append(f"发现时间：{since}（北京时间）")
    return lines


def task_lines(session: Session | None, task_id: str | None) -> tuple[list[str], str | None]:
    """Where, what and by when of an inspection task; and its clue's severity."""
    from cloud.workflow.clues import Clue
    from cloud.workflow.models import InspectionTask

    if session is None or not task_id or not str(task_id).isdigit():
        return [], None
    task = session.get(InspectionTask, int(task_id))
    if task is None:
        return [], None
    clue = session.get(Clue, task.clue_id) if task.clue_id else None
    lines = [line for line in [site_line(session, task.site_id or (clue.site_id if clue else None))] if line]
    if clue is not None:
        lines.append(f"线索：{clue.title}")
    if task.instructions:
        lines.append(f"要求：{task.instructions}")
    lines.append(f"完成期限：{task.due_date.isoformat()}")
    return lines, clue.severity if clue is not None else None


def deadline_lines(
    escalate_at: dt.datetime | None, escalates_to: str | None, sla_name: str | None, sla_due_at: dt.datetime | None
) -> list[str]:
    """By when someone must act: acknowledge before the alarm escalates; a statutory rescue clock."""
    lines = []
    if escalate_at is not None:
        who = ESCALATES_TO.get(escalates_to or "", escalates_to or "上级")
        lines.append(f"处置期限：请于 {local_time(escalate_at)} 前确认收到，逾时升级至{who}")
    if sla_name and sla_due_at is not None:
        lines.append(f"{sla_name}：须于 {local_time(sla_due_at)} 前")
    return lines


def link_line(base_url: str, target_type: str | None, target_id: str | None, clue_id: int | None) -> str | None:
    """``查看详情：<console>/#/clue/7`` — a task opens on the phone (``/m/#/task/3``)."""
    base = base_url.rstrip("/")
    if target_type == "task" and target_id:
        return f"查看任务：{base}/m/#/task/{target_id}"
    if clue_id:
        return f"查看线索：{base}/#/clue/{clue_id}"
    return None


def describe(session: Session | None, event: JournalEvent, facts: Facts) -> None:
    """Fill in ``facts.body`` (and a task's severity from its clue) for a routed event: run only when a route wants
    the event, so the follower reads the registry for what it notifies, not for every event it passes."""
    p = event.payload or {}
    with session.no_autoflush if session is not None else contextlib.nullcontext():  # registry reads only
        if event.action == "alert.raised":
            facts.body = body_text(alert_lines(session, p, facts.place))
        elif event.action == "clue.created":
            facts.body = body_text(clue_lines(session, facts.clue_id, p))
        elif event.target_type == "task":
            lines, severity = task_lines(session, event.target_id)
            facts.body = body_text(facts.body, lines)
            facts.severity = severity or facts.severity


def body_text(*parts: list[str] | str | None) -> str:
    """The body's lines, one a line, nothing empty."""
    lines: list[str] = []
    for part in parts:
        if isinstance(part, list):
            lines += part
        elif part:
            lines.append(part)
    return "\n".join(line for line in lines if line)[:2000]
