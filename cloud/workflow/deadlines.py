"""Statutory deadlines (法定期限) computed from the data in ``cloud/rules/deadlines.toml``.

One engine for every limit: count ``days`` working or calendar days from the day after the trigger, skip paused
days (testing/appraisal time excluded, 检测检验鉴定期间不计入), add approved extensions, and (for calendar-day
periods, when configured) move a last day that is a holiday to the next working day. The result carries the
calendar warnings, so that a deadline in a year without official holiday data is never shown without one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator

from cloud.rules.loader import RuleModel, load_model, rules_path
from cloud.workflow.calendar import CalendarResult, WorkCalendar, default_calendar

__all__ = [
    "Deadline",
    "DeadlineError",
    "DeadlineRules",
    "DeadlineSpec",
    "DeadlineStatus",
    "Extension",
    "ExtensionKind",
    "Pause",
    "Unit",
    "compute_deadline",
    "deadline_status",
    "load_deadline_rules",
    "period_days",
    "remaining_working_days",
]


class Unit(StrEnum):
    WORKING_DAYS = "working_days"
    CALENDAR_DAYS = "calendar_days"


class ExtensionKind(StrEnum):
    APPROVAL = "approval"  # 经负责人批准
    COLLECTIVE_DECISION = "collective_decision"  # 负责人集体讨论决定


class DeadlineSpec(RuleModel):
    name: str = Field(min_length=1, max_length=100)
    name_en: str = Field(min_length=1, max_length=200)
    unit: Unit
    days: int = Field(gt=0, le=3650)
    extension_days: int = Field(default=0, ge=0, le=3650)
    max_extensions: int = Field(default=0, ge=0, le=10)
    extension_approver: str | None = None
    further_extension: Literal["none", "collective_decision"] = "none"
    pausable: list[str] = Field(default_factory=list)
    roll_over_holiday: bool = False
    basis: str = Field(min_length=1, max_length=300)
    confidence: Literal["v", "r"]
    warn_before: int = Field(default=0, ge=0, description="working days before due that count as due soon")

    @model_validator(mode="after")
    def _extensions_consistent(self) -> DeadlineSpec:
        if self.max_extensions and not self.extension_days:
            raise ValueError("max_extensions > 0 needs extension_days > 0")
        if self.extension_days and not self.max_extensions:
            raise ValueError("extension_days > 0 needs max_extensions > 0")
        if self.max_extensions and not self.extension_approver:
            raise ValueError("an extendable deadline needs extension_approver")
        return self


class DeadlineRules(RuleModel):
    timezone: str = "Asia/Shanghai"
    deadlines: dict[str, DeadlineSpec]

    @model_validator(mode="after")
    def _valid_timezone(self) -> DeadlineRules:
        try:
            ZoneInfo(self.timezone)
        except Exception as exc:  # ZoneInfoNotFoundError, ValueError
            raise ValueError(f"unknown timezone {self.timezone!r}") from exc
        return self

    def spec(self, deadline_id: str) -> DeadlineSpec:
        try:
            return self.deadlines[deadline_id]
        except KeyError:
            raise DeadlineError(
                f"未知期限类型 {deadline_id!r} / unknown deadline {deadline_id!r}; known: {sorted(self.deadlines)}"
            ) from None


def period_days(deadline_id: str) -> int:
    """The base length of a configured period (for texts such as "within 5 working days")."""
    return _packaged_rules().spec(deadline_id).days


def load_deadline_rules(path: Path | None = None) -> DeadlineRules:
    return load_model(DeadlineRules, path or rules_path("deadlines.toml"))


@cache
def _packaged_rules() -> DeadlineRules:
    return load_deadline_rules()


class DeadlineError(ValueError):
    """An invalid deadline request (unknown id, extension not allowed, pause reason not allowed...)."""


@dataclass(frozen=True, slots=True)
class Pause:
    """Days ``start``..``end`` (both inclusive) are excluded; ``end=None`` means still paused."""

    start: dt.date
    end: dt.date | None
    reason: str

    def covers(self, day: dt.date, as_of: dt.date | None) -> bool:
        end = self.end if self.end is not None else as_of
        if end is None:
            raise DeadlineError("an open pause needs as_of / 未结束的中止需要指定计算日期")
        return self.start <= day <= end


@dataclass(frozen=True, slots=True)
class Extension:
    kind: ExtensionKind = ExtensionKind.APPROVAL
    days: int | None = None  # None: the spec's extension_days (required for collective decisions)
    approved_by: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Deadline:
    deadline_id: str
    name: str
    unit: Unit
    start: dt.date  # the trigger day (not counted)
    due: dt.date  # last day of the period
    due_at: dt.datetime  # end of the due day in the configured timezone
    total_days: int  # base + extensions, in ``unit``
    extension_days: int
    paused_days: int  # days of ``unit`` excluded by pauses
    suspended: bool  # an open pause: ``due`` is provisional (as if the pause ended on as_of)
    basis: str
    confidence: Literal["v", "r"]
    warnings: tuple[str, ...]


class DeadlineStatus(StrEnum):
    RUNNING = "running"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"
    SUSPENDED = "suspended"


def _trigger_day(start: dt.date | dt.datetime, tz: ZoneInfo) -> dt.date:
    if isinstance(start, dt.datetime):
        if start.tzinfo is None:
            raise DeadlineError("start datetime must be timezone-aware / 起算时间必须带时区")
        return start.astimezone(tz).date()
    return start


def _extension_total(spec: DeadlineSpec, extensions: tuple[Extension, ...], deadline_id: str) -> int:
    approvals = [e for e in extensions if e.kind is ExtensionKind.APPROVAL]
    collective = [e for e in extensions if e.kind is ExtensionKind.COLLECTIVE_DECISION]
    if len(approvals) > spec.max_extensions:
        raise DeadlineError(
            f"{spec.name}最多延长 {spec.max_extensions} 次 / {deadline_id}: at most "
            f"{spec.max_extensions} approved extension(s)"
        )
    total = 0
    for ext in approvals:
        days = spec.extension_days if ext.days is None else ext.days
        if not 0 < days <= spec.extension_days:
            raise DeadlineError(
                f"{spec.name}每次延长不超过 {spec.extension_days} 日 / {deadline_id}: an approved extension "
                f"is 1..{spec.extension_days} days"
            )
        total += days
    if collective:
        if spec.further_extension != "collective_decision":
            raise DeadlineError(
                f"{spec.name}不允许集体讨论继续延期 / {deadline_id}: no further extension by collective decision"
            )
        if len(approvals) < spec.max_extensions:
            raise DeadlineError(
                f"应先经负责人批准延期 / {deadline_id}: use the approved extension before a collective decision"
            )
        for ext in collective:
            if ext.days is None or ext.days <= 0:
                raise DeadlineError(
                    f"集体讨论延期须确定合理期限 / {deadline_id}: a collective decision must state its days"
                )
            total += ext.days
    return total


def compute_deadline(
    deadline_id: str,
    start: dt.date | dt.datetime,
    *,
    pauses: tuple[Pause, ...] | list[Pause] = (),
    extensions: tuple[Extension, ...] | list[Extension] = (),
    as_of: dt.date | None = None,
    calendar: WorkCalendar | None = None,
    rules: DeadlineRules | None = None,
) -> Deadline:
    """Compute the deadline ``deadline_id`` for a trigger at ``start`` (a date or an aware datetime).

    ``as_of`` closes open pauses provisionally (the result is then ``suspended``).
    """
    rules = rules or _packaged_rules()
    spec = rules.spec(deadline_id)
    cal = calendar or default_calendar()
    tz = ZoneInfo(rules.timezone)
    trigger = _trigger_day(start, tz)
    pauses = tuple(pauses)
    for pause in pauses:
        if pause.reason not in spec.pausable:
            raise DeadlineError(
                f"{spec.name}不因“{pause.reason}”中止计算 / {deadline_id}: pause reason {pause.reason!r} "
                f"not allowed (allowed: {spec.pausable})"
            )
        if pause.end is not None and pause.end < pause.start:
            raise DeadlineError("pause ends before it starts / 中止结束日早于开始日")
    ext_days = _extension_total(spec, tuple(extensions), deadline_id)
    total = spec.days + ext_days
    working = spec.unit is Unit.WORKING_DAYS

    day, counted, paused = trigger, 0, 0
    years = {trigger.year}
    for _ in range(3660 * 3):
        day += dt.timedelta(days=1)
        years.add(day.year)
        counts = cal.is_working_day(day) if working else True
        if any(p.covers(day, as_of) for p in pauses):
            paused += counts
            continue
        if counts:
            counted += 1
            if counted == total:
                break
    else:
        raise DeadlineError(f"{deadline_id}: period does not end within ten years")

    if not working and spec.roll_over_holiday:
        rolled = cal.next_working_day(day)
        day = rolled.value
        years.add(day.year)
    warnings = tuple(w for y in sorted(years) if (w := cal.year_warning(y)))
    due_at = dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=tz)
    return Deadline(
        deadline_id=deadline_id,
        name=spec.name,
        unit=spec.unit,
        start=trigger,
        due=day,
        due_at=due_at,
        total_days=total,
        extension_days=ext_days,
        paused_days=paused,
        suspended=any(p.end is None for p in pauses),
        basis=spec.basis,
        confidence=spec.confidence,
        warnings=warnings,
    )


def date_certainty(due: dt.date, start: dt.date | None = None, calendar: WorkCalendar | None = None) -> str:
    """``official`` when every calendar year from ``start`` (default: ``due``'s own) to ``due`` has official
    holiday data, else ``provisional`` (a due date stored without its warnings, e.g. an inspection task's)."""
    cal = calendar or default_calendar()
    first = min(start or due, due).year
    return "provisional" if any(cal.year_warning(y) for y in range(first, due.year + 1)) else "official"


def remaining_working_days(
    deadline: Deadline, as_of: dt.date, calendar: WorkCalendar | None = None
) -> CalendarResult[int]:
    """Working days left after ``as_of`` up to and including the due day (0 on the due day, < 0 overdue)."""
    cal = calendar or default_calendar()
    return cal.working_days_between(as_of, deadline.due)


def deadline_status(
    deadline: Deadline,
    as_of: dt.date,
    *,
    calendar: WorkCalendar | None = None,
    rules: DeadlineRules | None = None,
) -> DeadlineStatus:
    if deadline.suspended:
        return DeadlineStatus.SUSPENDED
    if as_of > deadline.due:
        return DeadlineStatus.OVERDUE
    spec = (rules or _packaged_rules()).spec(deadline.deadline_id)
    left = remaining_working_days(deadline, as_of, calendar).value
    return DeadlineStatus.DUE_SOON if left <= spec.warn_before else DeadlineStatus.RUNNING
