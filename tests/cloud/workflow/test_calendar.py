from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.rules.loader import RuleFileError
from cloud.workflow.calendar import (
    DaySource,
    HolidayTable,
    WorkCalendar,
    default_calendar,
    load_holiday_table,
)

D = dt.date


def test_2026_make_up_working_days_match_the_official_schedule() -> None:
    cal = default_calendar()
    year = [D(2026, 1, 1) + dt.timedelta(days=i) for i in range(365)]
    make_up = [d for d in year if d.weekday() >= 5 and cal.is_working_day(d)]
    assert make_up == [D(2026, 1, 4), D(2026, 2, 14), D(2026, 2, 28), D(2026, 5, 9), D(2026, 9, 20), D(2026, 10, 10)]
    assert all(cal.day(d).source is DaySource.OFFICIAL for d in make_up)


def test_spring_festival_2026_weekdays_are_holidays() -> None:
    cal = default_calendar()
    for day in (D(2026, 2, 16), D(2026, 2, 17), D(2026, 2, 20), D(2026, 2, 23)):
        info = cal.day(day)
        assert not info.working
        assert info.holiday_name == "Spring Festival"
    assert cal.is_working_day(D(2026, 2, 24))


def test_2027_uses_the_holiday_table_with_a_warning() -> None:
    cal = default_calendar()
    assert cal.year_source(2027) is DaySource.TABLE
    assert not cal.is_working_day(D(2027, 1, 1))  # 元旦 from the table
    assert cal.is_working_day(D(2027, 1, 4))
    warning = cal.year_warning(2027)
    assert warning is not None and "2027" in warning and "holidays.toml" in warning


def test_year_without_any_data_falls_back_to_weekdays() -> None:
    cal = WorkCalendar(HolidayTable())
    assert cal.year_source(2031) is DaySource.WEEKDAYS
    assert cal.is_working_day(D(2031, 1, 1))  # a Wednesday, no holiday data
    assert not cal.is_working_day(D(2031, 1, 4))  # Saturday
    result = cal.add_working_days(D(2030, 12, 31), 1)
    assert result.value == D(2031, 1, 1)
    assert result.uses_fallback
    assert any("Monday–Friday" in w for w in result.warnings)


def test_official_table_year_has_no_warning(tmp_path: Path) -> None:
    path = tmp_path / "holidays.toml"
    path.write_text("[years.2030]\nofficial = true\nholidays = [2030-01-01]\nworkdays = [2030-01-05]\n")
    cal = WorkCalendar(load_holiday_table(path))
    assert cal.year_warning(2030) is None
    assert cal.is_working_day(D(2030, 1, 5))  # Saturday make-up day
    assert not cal.is_working_day(D(2030, 1, 1))


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[years.2030]\nholidays = [2031-01-01]\n", "years"),
        ("[years.2030]\nholidays = [2030-01-01]\nworkdays = [2030-01-01]\n", "years.2030"),
        ("[years.2030]\nofficial = true\nbogus = 1\n", "years.2030.bogus"),
    ],
)
def test_invalid_holiday_table_names_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "holidays.toml"
    path.write_text(text)
    with pytest.raises(RuleFileError) as info:
        load_holiday_table(path)
    assert info.value.file == str(path)
    assert info.value.key == key


def test_working_days_between_is_signed() -> None:
    cal = default_calendar()
    assert cal.working_days_between(D(2026, 2, 13), D(2026, 2, 24)).value == 2  # Feb 14 make-up + Feb 24
    assert cal.working_days_between(D(2026, 2, 24), D(2026, 2, 13)).value == -2
    assert cal.working_days_between(D(2026, 3, 2), D(2026, 3, 2)).value == 0


@settings(max_examples=60, deadline=None)
@given(start=st.dates(min_value=D(2025, 1, 1), max_value=D(2027, 6, 30)), n=st.integers(1, 60))
def test_add_then_count_round_trips(start: dt.date, n: int) -> None:
    cal = default_calendar()
    end = cal.add_working_days(start, n)
    assert cal.is_working_day(end.value)
    assert cal.working_days_between(start, end.value).value == n
    assert bool(end.warnings) == (end.value.year >= 2027)
