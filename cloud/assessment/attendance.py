"""Attendance (考勤) from inspector check-ins against the duty roster.

A shift counts as *on time* with a check-in from ``early_grace`` before its start to ``late_grace`` after it,
*late* with a first check-in later in the shift, *absent* without one. Check-ins are journal events:
``attendance.check_in`` (``POST /assessment/attendance/check-in``) and on-site task check-ins.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlmodel import Session, col, select

from cloud import journal
from cloud.assessment.config import AttendanceSpec
from cloud.notify.models import DutyShift


@dataclass
class AttendanceRow:
    person: str
    shifts: int = 0
    on_time: int = 0
    late: int = 0
    absent: int = 0
    absences: list[str] = field(default_factory=list)


def check_ins(
    session: Session, spec: AttendanceSpec, start: dt.datetime, end: dt.datetime
) -> dict[str, list[dt.datetime]]:
    actions = [spec.check_in_action] + [a.split(":", 1)[0] for a in spec.also_count]
    wanted = {a: (a.split(":", 1)[1] if ":" in a else None) for a in spec.also_count}
    events = session.exec(
        select(journal.JournalEvent).where(
            col(journal.JournalEvent.action).in_(actions),
            col(journal.JournalEvent.ts) >= start,
            col(journal.JournalEvent.ts) < end,
        )
    ).all()
    out: dict[str, list[dt.datetime]] = {}
    for ev in events:
        if ev.action != spec.check_in_action:
            verb = next((v for a, v in wanted.items() if a.split(":", 1)[0] == ev.action), None)
            if verb is not None and (ev.payload or {}).get("action") != verb:
                continue
        out.setdefault(ev.actor, []).append(ev.ts)
    return out


def attendance(
    session: Session, spec: AttendanceSpec, start: dt.datetime, end: dt.datetime, *, department: str | None = None
) -> list[AttendanceRow]:
    early = dt.timedelta(minutes=spec.early_grace_minutes)
    late = dt.timedelta(minutes=spec.late_grace_minutes)
    query = select(DutyShift).where(col(DutyShift.starts_at) >= start, col(DutyShift.starts_at) < end)
    if department:
        query = query.where(DutyShift.department == department)
    shifts = session.exec(query.order_by(col(DutyShift.starts_at))).all()
    seen = check_ins(session, spec, start - early, end + dt.timedelta(days=1))
    rows: dict[str, AttendanceRow] = {}
    for shift in shifts:
        row = rows.setdefault(shift.contact_key, AttendanceRow(shift.contact_key))
        row.shifts += 1
        times = [t for t in seen.get(shift.contact_key, []) if shift.starts_at - early <= t < shift.ends_at]
        if any(t <= shift.starts_at + late for t in times):
            row.on_time += 1
        elif times:
            row.late += 1
        else:
            row.absent += 1
            row.absences.append(shift.starts_at.isoformat())
    return sorted(rows.values(), key=lambda r: r.person)
