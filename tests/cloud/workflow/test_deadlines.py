from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from cloud.rules.loader import RuleFileError
from cloud.workflow.calendar import HolidayTable, WorkCalendar
from cloud.workflow.deadlines import (
    DeadlineError,
    DeadlineStatus,
    Extension,
    ExtensionKind,
    Pause,
    compute_deadline,
    deadline_status,
    load_deadline_rules,
    remaining_working_days,
)

D = dt.date
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def test_report_before_spring_festival_2026_counts_holidays_and_make_up_days() -> None:
    # Thursday 12 Feb 2026, 16:30 Beijing time. Counting from Fri 13 Feb:
    # 13 (1), Sat 14 make-up (2), 16–23 Spring Festival off, 24–27 (3–6), Sat 28 make-up (7),
    # Mar 2–6 (8–12), Mar 9–11 (13–15).
    received = dt.datetime(2026, 2, 12, 16, 30, tzinfo=SHANGHAI)
    deadline = compute_deadline("report_verify", received)
    assert deadline.due == D(2026, 3, 11)
    assert deadline.due_at == dt.datetime(2026, 3, 11, 23, 59, 59, tzinfo=deadline.due_at.tzinfo)
    assert deadline.warnings == ()
    # plain weekdays would have given 5 March: the holiday calendar matters
    weekdays_only = compute_deadline("report_verify", received, calendar=WorkCalendar(use_chinese_calendar=False))
    assert weekdays_only.due == D(2026, 3, 5)


def test_trigger_day_is_taken_in_beijing_time() -> None:
    # 20:00 UTC on 12 Feb is 04:00 on 13 Feb in Beijing: the count starts a day later
    received = dt.datetime(2026, 2, 12, 20, 0, tzinfo=dt.UTC)
    assert compute_deadline("report_verify", received).start == D(2026, 2, 13)
    with pytest.raises(DeadlineError):
        compute_deadline("report_verify", dt.datetime(2026, 2, 12, 20, 0))


def test_approved_extension_adds_fifteen_working_days() -> None:
    deadline = compute_deadline("report_verify", D(2026, 2, 12), extensions=[Extension(approved_by="局长")])
    assert deadline.extension_days == 15
    assert deadline.due == D(2026, 4, 1)
    with pytest.raises(DeadlineError, match="at most 1"):
        compute_deadline("report_verify", D(2026, 2, 12), extensions=[Extension(), Extension()])


def test_testing_time_is_excluded() -> None:
    pause = Pause(D(2026, 2, 24), D(2026, 2, 27), "testing")  # four working days of lab testing
    deadline = compute_deadline("report_verify", D(2026, 2, 12), pauses=[pause])
    assert deadline.paused_days == 4
    assert deadline.due == D(2026, 3, 17)
    with pytest.raises(DeadlineError, match="not allowed"):
        compute_deadline("complaint_accept", D(2026, 2, 12), pauses=[pause])


def test_open_pause_is_provisional() -> None:
    pause = Pause(D(2026, 2, 24), None, "appraisal")
    with pytest.raises(DeadlineError):
        compute_deadline("report_verify", D(2026, 2, 12), pauses=[pause])
    deadline = compute_deadline("report_verify", D(2026, 2, 12), pauses=[pause], as_of=D(2026, 2, 25))
    assert deadline.suspended and deadline.paused_days == 2
    assert deadline_status(deadline, D(2026, 2, 25)) is DeadlineStatus.SUSPENDED


def test_deadline_running_into_2027_uses_fallback_with_warning() -> None:
    # From Sun 20 Dec 2026: Dec 21–25 (5), Dec 28–31 (9), 1 Jan 2027 off (table), Jan 4–8 (14), Jan 11 (15)
    deadline = compute_deadline("report_verify", D(2026, 12, 20))
    assert deadline.due == D(2027, 1, 11)
    assert len(deadline.warnings) == 1 and "2027" in deadline.warnings[0]
    bare = compute_deadline("report_verify", D(2026, 12, 20), calendar=WorkCalendar(HolidayTable()))
    assert bare.due == D(2027, 1, 8)  # without the table 1 Jan counts as a working day
    assert "no holiday data" in bare.warnings[0]


def test_case_decision_counts_calendar_days_and_rolls_over_holidays() -> None:
    assert compute_deadline("case_decision", D(2026, 7, 1)).due == D(2026, 9, 29)
    # 90 days after 3 July is 1 October (National Day): the period ends on the next working day
    assert compute_deadline("case_decision", D(2026, 7, 3)).due == D(2026, 10, 8)


def test_case_decision_extensions() -> None:
    once = compute_deadline("case_decision", D(2026, 7, 1), extensions=[Extension()])
    assert once.due == D(2026, 10, 29)
    with pytest.raises(DeadlineError, match="before a collective"):
        compute_deadline("case_decision", D(2026, 7, 1), extensions=[Extension(ExtensionKind.COLLECTIVE_DECISION, 20)])
    twice = compute_deadline(
        "case_decision",
        D(2026, 7, 1),
        extensions=[Extension(), Extension(ExtensionKind.COLLECTIVE_DECISION, days=20)],
    )
    assert twice.total_days == 140
    with pytest.raises(DeadlineError, match="collective"):
        compute_deadline(
            "seizure", D(2026, 7, 1), extensions=[Extension(), Extension(ExtensionKind.COLLECTIVE_DECISION, 5)]
        )


def test_remaining_working_days_and_status() -> None:
    deadline = compute_deadline("complaint_accept", D(2026, 3, 2))  # 7 wd → 11 March
    assert deadline.due == D(2026, 3, 11)
    assert remaining_working_days(deadline, D(2026, 3, 2)).value == 7
    assert remaining_working_days(deadline, D(2026, 3, 11)).value == 0
    assert remaining_working_days(deadline, D(2026, 3, 13)).value == -2
    assert deadline_status(deadline, D(2026, 3, 3)) is DeadlineStatus.RUNNING
    assert deadline_status(deadline, D(2026, 3, 10)) is DeadlineStatus.DUE_SOON
    assert deadline_status(deadline, D(2026, 3, 12)) is DeadlineStatus.OVERDUE


# Every statutory period, its due date hand-computed on the official 2026 calendar from the law's number (National
# Day 1–7 Oct off, Sat 10 Oct a make-up working day). From Mon 28 Sep the working days run Sep 29, 30, Oct 8, 9,
# 10 (Sat), 12, 13, 14, 15, 16, 19 … 23, 26 … 30. Calendar-day periods that end on a day off move to the next
# working day. A wrong number in deadlines.toml, or a new deadline without a row here, fails.
STATUTORY = {
    # id: (trigger, due, why)
    "complaint_accept": (D(2026, 9, 28), D(2026, 10, 13), "7 working days"),
    "mediation": (D(2026, 10, 9), D(2026, 12, 10), "45 working days"),
    "report_verify": (D(2026, 9, 28), D(2026, 10, 23), "15 working days"),
    "case_decision": (D(2026, 9, 28), D(2026, 12, 28), "90 days: Sun 27 Dec → Mon 28 Dec"),
    "legal_review": (D(2026, 9, 28), D(2026, 10, 16), "10 working days"),
    "statement": (D(2026, 9, 28), D(2026, 10, 10), "5 working days (the make-up Saturday counts)"),
    "seizure": (D(2026, 9, 28), D(2026, 10, 28), "30 days"),
    "evidence_preservation": (D(2026, 9, 28), D(2026, 10, 13), "7 working days"),
    "follow_up_inspection": (D(2026, 9, 28), D(2026, 10, 10), "5 working days [r]"),
    "reporter_feedback": (D(2026, 9, 28), D(2026, 10, 10), "5 working days [r]"),
    "penalty_publication": (D(2026, 9, 28), D(2026, 10, 30), "20 working days [r]"),
    "random_inspection_publication": (D(2026, 9, 28), D(2026, 10, 30), "20 working days [r]"),
    "payment": (D(2026, 9, 18), D(2026, 10, 8), "15 days: Sat 3 Oct (National Day) → Thu 8 Oct"),
}


@pytest.mark.parametrize("deadline_id", sorted(STATUTORY))
def test_statutory_period_due_date(deadline_id: str) -> None:
    trigger, due, why = STATUTORY[deadline_id]
    assert compute_deadline(deadline_id, trigger).due == due, f"{deadline_id}: {why}"


def test_every_configured_deadline_has_a_hand_computed_due_date() -> None:
    configured = set(load_deadline_rules().deadlines)
    assert configured == set(STATUTORY), (
        f"without a row: {configured - set(STATUTORY)}; stale: {set(STATUTORY) - configured}"
    )
    assert load_deadline_rules().deadlines["reporter_feedback"].confidence == "r"


def test_unknown_deadline_and_bad_file(tmp_path: Path) -> None:
    with pytest.raises(DeadlineError, match="unknown deadline"):
        compute_deadline("nope", D(2026, 1, 5))
    bad = tmp_path / "deadlines.toml"
    bad.write_text('[deadlines.x]\nname="x"\nname_en="x"\nunit="working_days"\ndays=0\nbasis="b"\nconfidence="v"\n')
    with pytest.raises(RuleFileError) as info:
        load_deadline_rules(bad)
    assert info.value.key == "deadlines.x.days"
    assert str(bad) in str(info.value)
