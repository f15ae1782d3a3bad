"""Elevator trapped-passenger rescue (电梯困人救援): the rescuers' arrival record.

The ``elevator_trapped`` route (``routing.toml``) notifies the site's maintenance unit (维保单位, designation
``maintenance_unit``; where the city runs one, the 96333 rescue platform is registered the same way) and the
on-duty inspectors. The ``elevator_trapped`` policy (``escalation.toml``) starts the arrival clock at the alert's
start: 30 minutes in cities, 1 hour elsewhere, by the site's area class (``areas.toml``). Only the arrival
recorded here meets it — an inspector's check-in or the alert clearing does not — and a late arrival escalates to
the department head and becomes a supervision clue (``clue_on_breach``). The clue itself is handled directly
(``analysis.toml`` rule A03t): no inspection task counted in working days.

The arrival is reported by the maintenance unit or 96333 under their own account, or phoned in to the duty
desk and entered there (``via``); either way the record names the unit and the rescuer and the time they
arrived, and the clock compares that time, not the time it was entered.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from sqlmodel import Session

from cloud import journal
from cloud.notify.models import Incident
from cloud.workflow.service import Conflict, Invalid, NotFound

__all__ = ["ARRIVAL_ACTION", "ReportedVia", "record_arrival"]

ARRIVAL_ACTION = "elevator.rescue_arrived"
ReportedVia = Literal["maintenance_unit", "rescue_96333", "duty_phone"]
VIA_LABELS = {
    "maintenance_unit": "维保单位报告",
    "rescue_96333": "96333 救援平台报告",
    "duty_phone": "电话报告，值班人员录入",
}
CLOCK_SKEW = dt.timedelta(minutes=2)


def record_arrival(
    session: Session,
    incident_id: int,
    *,
    by: str,
    unit: str,
    rescuer: str,
    arrived_at: dt.datetime,
    via: ReportedVia,
    now: dt.datetime,
) -> dict[str, Any]:
    """Journal the rescuers' arrival (``elevator.rescue_arrived``); the notification service meets the clock."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"通知 {incident_id} 不存在 / incident not found")
    if incident.sla_due_at is None:
        raise Conflict("该通知没有到场时限 / this incident has no arrival clock", code="no_arrival_clock")
    if incident.sla_met_at is not None:
        raise Conflict(
            f"到场已于 {incident.sla_met_at.isoformat()} 登记 / the arrival is already recorded", code="arrived"
        )
    if arrived_at.tzinfo is None:
        raise Invalid("到场时间须带时区 / arrived_at needs a time zone", code="naive_time")
    if arrived_at > now + CLOCK_SKEW:
        raise Invalid("到场时间不能晚于现在 / the arrival cannot be in the future", code="future_time")
    if arrived_at < incident.opened_at - dt.timedelta(days=1):
        raise Invalid("到场时间早于告警 / the arrival precedes the alarm", code="before_alarm")
    on_time = arrived_at <= incident.sla_due_at
    payload = {
        "clue_id": incident.clue_id,
        "alert_id": incident.alert_id,
        "site_id": incident.site_id,
        "unit": unit.strip(),
        "rescuer": rescuer.strip(),
        "via": via,
        "via_label": VIA_LABELS[via],
        "arrived_at": arrived_at.astimezone(dt.UTC).isoformat(),
        "due_at": incident.sla_due_at.isoformat(),
        "on_time": on_time,
    }
    journal.append(
        session, actor=by, action=ARRIVAL_ACTION, target_type="incident", target_id=incident_id, payload=payload
    )
    return payload
