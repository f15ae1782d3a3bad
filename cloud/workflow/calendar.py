"""Working days on the official Chinese holiday calendar (法定节假日与调休), with a visible fallback.

Source of truth per year, in order:

1. ``chinese-calendar`` (official State Council schedules with make-up working days, 2004–2026 in 1.11);
2. the editable holiday table ``cloud/rules/holidays.toml`` (weekdays minus listed holidays plus listed make-up
   working days) — unless a year there is marked ``official = true`` every result touching it carries a warning;
3. plain weekdays Monday–Friday, with a warning.

Every computation returns a :class:`CalendarResult` carrying the value, the warnings (Chinese + English) and the
sources used, so that callers show the warning next to the date instead of silently trusting a guess.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Generic, TypeVar

import chinese_calendar
from pydantic import Field, field_validator, model_validator

from cloud.rules.loader import RuleModel, load_model, rules_path

__all__ = [
    "CalendarResult",
    "DayInfo",
    "DaySource",
    "HolidayTable",
    "WorkCalendar",
    "YearTable",
    "default_calendar",
    "load_holiday_table",
]

T = TypeVar("T")

#: Safety bound for day-by-day walks (no statutory period is anywhere near ten years).
MAX_WALK_DAYS = 3660


class DaySource(StrEnum):
    OFFICIAL = "chinese_calendar"
    TABLE = "holiday_table"
    WEEKDAYS = "weekday_fallback"


class YearTable(RuleModel):
    official: bool = Field(default=False, description="true once the State Council schedule has been entered in full")
    source: str = Field(default="", max_length=500, description="where the dates come from")
    holidays: list[dt.date] = Field(default_factory=list, description="days off (those on Mon–Fri matter)")
    workdays: list[dt.date] = Field(default_factory=list, description="make-up working days (调休上班)")
    statutory: list[dt.date] = Field(
        default_factory=list,
        description="statutory holidays (法定节假日) including those on a weekend: each weekend one of a block "
        "gives an in-lieu day off (补休) on the next weekdays after the block, unless listed in holidays already",
    )

    @model_validator(mode="after")
    def _disjoint(self) -> YearTable:
        both = (set(self.holidays) | set(self.statutory)) & set(self.workdays)
        if both:
            raise ValueError(f"dates both holiday and workday: {sorted(d.isoformat() for d in both)}")
        return self

    def days_off(self) -> set[dt.date]:
        """Holidays, statutory days and the in-lieu days they give (补休), for a year without official data."""
        off = set(self.holidays) | set(self.statutory)
        days = sorted(set(self.statutory))
        blocks: list[list[dt.date]] = []
        for day in days:
            if blocks and (day - blocks[-1][-1]).days == 1:
                blocks[-1].append(day)
            else:
                blocks.append([day])
        for block in blocks:
            owed = sum(1 for d in block if d.weekday() >= 5)
            day = block[-1]
            while owed:
                day += dt.timedelta(days=1)
                if day.weekday() < 5 and day not in off and day not in self.workdays:
                    off.add(day)
                    owed -= 1
        return off


class HolidayTable(RuleModel):
    years: dict[int, YearTable] = Field(default_factory=dict)

    @field_validator("years")
    @classmethod
    def _dates_in_year(cls, years: dict[int, YearTable]) -> dict[int, YearTable]:
        for year, table in years.items():
            wrong = [d for d in (*table.holidays, *table.workdays) if d.year != year]
            if wrong:
                raise ValueError(f"years.{year}: dates outside {year}: {[d.isoformat() for d in wrong]}")
        return years


def load_holiday_table(path: Path | None = None) -> HolidayTable:
    """Load and validate ``holidays.toml`` (default: the packaged one)."""
    return load_model(HolidayTable, path or rules_path("holidays.toml"))


@dataclass(frozen=True, slots=True)
class DayInfo:
    day: dt.date
    working: bool
    source: DaySource
    holiday_name: str | None = None


@dataclass(frozen=True, slots=True)
class CalendarResult(Generic[T]):
    """A computed value with the warnings a user must see next to it."""

    value: T
    warnings: tuple[str, ...] = ()
    sources: frozenset[DaySource] = field(default_factory=frozenset)

    @property
    def uses_fallback(self) -> bool:
        return bool(self.sources - {DaySource.OFFICIAL})


def _covered_by_chinese_calendar(year: int) -> bool:
    try:
        chinese_calendar.is_workday(dt.date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


class WorkCalendar:
    """Decides working days; caches per day. Pure apart from reading its inputs once."""

    def __init__(self, table: HolidayTable | None = None, *, use_chinese_calendar: bool = True) -> None:
        self._table = table if table is not None else HolidayTable()
        self._use_cc = use_chinese_calendar
        self._year_source: dict[int, DaySource] = {}
        self._days: dict[dt.date, DayInfo] = {}
        self._off_days: dict[int, set[dt.date]] = {}

    def _off(self, year: int) -> set[dt.date]:
        if year not in self._off_days:
            self._off_days[year] = self._table.years[year].days_off()
        return self._off_days[year]

    # -- per year -------------------------------------------------------------------------------------------
    def year_source(self, year: int) -> DaySource:
        source = self._year_source.get(year)
        if source is None:
            if self._use_cc and _covered_by_chinese_calendar(year):
                source = DaySource.OFFICIAL
            elif year in self._table.years:
                source = DaySource.TABLE
            else:
                source = DaySource.WEEKDAYS
            self._year_source[year] = source
        return source

    def certainty(self, years: set[int] | list[int]) -> str:
        """``official`` when every year comes from official data, else ``provisional``."""
        return "provisional" if any(self.year_warning(y) for y in years) else "official"

    def year_warning(self, year: int) -> str | None:
        """The warning to show for results that depend on ``year`` (``None`` when the data is official)."""
        source = self.year_source(year)
        if source is DaySource.OFFICIAL:
            return None
        if source is DaySource.TABLE:
            if self._table.years[year].official:
                return None
            return (
                f"{year} 年节假日安排未经官方数据确认：按周一至周五并参照可编辑节假日表 holidays.toml 计算，"
                f"请核对国务院办公厅放假通知。 / {year}: no official holiday data; computed from Monday–Friday "
                f"and the editable holiday table (holidays.toml, not marked official) — verify against the "
                f"State Council notice."
            )
        return (
            f"{year} 年无节假日数据：仅按周一至周五计算工作日，未扣除法定节假日和调休，请在 holidays.toml "
            f"中补录。 / {year}: no holiday data at all; working days are plain Monday–Friday without "
            f"public holidays or make-up days — add the year to holidays.toml."
        )

    # -- per day --------------------------------------------------------------------------------------------
    def day(self, day: dt.date) -> DayInfo:
        info = self._days.get(day)
        if info is None:
            info = self._compute_day(day)
            self._days[day] = info
        return info

    def _compute_day(self, day: dt.date) -> DayInfo:
        source = self.year_source(day.year)
        if source is DaySource.OFFICIAL:
            is_holiday, name = chinese_calendar.get_holiday_detail(day)
            return DayInfo(day, not is_holiday, source, name)
        weekday = day.weekday() < 5
        if source is DaySource.TABLE:
            table = self._table.years[day.year]
            if day in table.workdays:
                return DayInfo(day, True, source, "make-up working day")
            if day in self._off(day.year):
                return DayInfo(day, False, source, "holiday")
        return DayInfo(day, weekday, source, None)

    def is_working_day(self, day: dt.date) -> bool:
        return self.day(day).working

    # -- walks ----------------------------------------------------------------------------------------------
    def _result(self, value: T, years: set[int]) -> CalendarResult[T]:
        warnings = tuple(w for y in sorted(years) if (w := self.year_warning(y)))
        return CalendarResult(value, warnings, frozenset(self.year_source(y) for y in years))

    def add_working_days(self, start: dt.date, count: int) -> CalendarResult[dt.date]:
        """The ``count``-th working day after ``start`` (``start`` itself is not counted; ``count`` ≥ 1)."""
        if count < 1:
            raise ValueError("count must be ≥ 1")
        day, seen, years = start, 0, {start.year}
        for _ in range(MAX_WALK_DAYS):
            day += dt.timedelta(days=1)
            years.add(day.year)
            if self.is_working_day(day):
                seen += 1
                if seen == count:
                    return self._result(day, years)
        raise ValueError(f"no {count} working days within {MAX_WALK_DAYS} days of {start}")

    def working_days_between(self, start: dt.date, end: dt.date) -> CalendarResult[int]:
        """Working days in ``(start, end]``; negative (counting ``(end, start]``) when ``end`` < ``start``."""
        if end < start:
            inner = self.working_days_between(end, start)
            return CalendarResult(-inner.value, inner.warnings, inner.sources)
        if (end - start).days > MAX_WALK_DAYS:
            raise ValueError("range too long")
        years = {start.year, end.year}
        count = 0
        day = start
        while day < end:
            day += dt.timedelta(days=1)
            years.add(day.year)
            count += self.is_working_day(day)
        return self._result(count, years)

    def next_working_day(self, day: dt.date) -> CalendarResult[dt.date]:
        """``day`` itself if it is a working day, else the first working day after it."""
        years = {day.year}
        for _ in range(MAX_WALK_DAYS):
            if self.is_working_day(day):
                return self._result(day, years)
            day += dt.timedelta(days=1)
            years.add(day.year)
        raise ValueError("no working day found")


_DEFAULT: WorkCalendar | None = None


def default_calendar() -> WorkCalendar:
    """A process-wide calendar built from the packaged holiday table."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = WorkCalendar(load_holiday_table())
    return _DEFAULT
