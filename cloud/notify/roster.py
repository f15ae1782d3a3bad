"""Duty roster (值班表): concrete shifts in the database, generated from daily templates in Asia/Shanghai."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from cloud.notify.models import DutyShift

TZ = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True, slots=True)
class ShiftTemplate:
    """A daily shift ``start``–``end`` local time (end <= start: ends the next day), staffed by ``people``."""

    name: str
    start: dt.time
    end: dt.time
    people: tuple[str, ...]
    weekdays: frozenset[int] = frozenset(range(7))  # 0 = Monday


def expand(
    department: str, first_day: dt.date, days: int, templates: Iterable[ShiftTemplate], tz: ZoneInfo = TZ
) -> list[DutyShift]:
    """Concrete shifts for ``days`` days from ``first_day`` (not yet added to a session)."""
    shifts: list[DutyShift] = []
    for offset in range(days):
        day = first_day + dt.timedelta(days=offset)
        for tpl in templates:
            if day.weekday() not in tpl.weekdays:
                continue
            start = dt.datetime.combine(day, tpl.start, tzinfo=tz)
            end_day = day if tpl.end > tpl.start else day + dt.timedelta(days=1)
            end = dt.datetime.combine(end_day, tpl.end, tzinfo=tz)
            for person in tpl.people:
                shifts.append(
                    DutyShift(department=department, contact_key=person, starts_at=start, ends_at=end, shift=tpl.name)
                )
    return shifts


def on_duty(session: Session, department: str, at: dt.datetime) -> list[str]:
    """Contact keys on duty in ``department`` at ``at`` (aware), in roster order, without duplicates."""
    rows = session.exec(
        select(DutyShift.contact_key)
        .where(DutyShift.department == department, col(DutyShift.starts_at) <= at, col(DutyShift.ends_at) > at)
        .order_by(col(DutyShift.id))
    ).all()
    return list(dict.fromkeys(rows))


def shifts_between(
    session: Session, start: dt.datetime, end: dt.datetime, *, department: str | None = None
) -> Sequence[DutyShift]:
    query = select(DutyShift).where(col(DutyShift.starts_at) < end, col(DutyShift.ends_at) > start)
    if department:
        query = query.where(DutyShift.department == department)
    return session.exec(query.order_by(col(DutyShift.starts_at))).all()
