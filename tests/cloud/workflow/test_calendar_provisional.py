"""Years without official holiday data (2027 here: chinese-calendar 1.11 stops at 2026) are computed from the
provisional table, which models in-lieu days off (补休) for statutory days on a weekend, and every date that
depends on them says so (certainty ``provisional`` + the warning) wherever it is shown.

Hand-computed (statutory days per the 2024 holiday rules; the State Council's 2027 schedule is unknown):
* Tue 28 Sep 2027 + 7 working days: Sep 29, 30; Oct 1 statutory; Oct 2–3 statutory on a weekend → in lieu
  Mon 4, Tue 5 Oct off; Oct 6, 7, 8, 11, 12 → Tue 12 Oct (plain weekdays would give Fri 8 Oct).
* Thu 4 Feb 2027 + 5 working days: Feb 5 (除夕) and Feb 8 statutory, Feb 6–7 statutory on the weekend → in lieu
  Feb 9–10 off; Feb 11, 12, 15, 16, 17 → Wed 17 Feb.
* a complaint received Mon 28 Dec 2026: Dec 29, 30, 31; Jan 1 2027 off; Jan 4, 5, 6, 7 → Thu 7 Jan 2027, shown
  as provisional; one received 28 Sep 2026 is official.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from cloud.rules.loader import RULES_DIR, RuleFileError
from cloud.workflow.calendar import load_holiday_table
from cloud.workflow.deadlines import compute_deadline, load_deadline_rules
from tests.utils.workflow_factories import World

API = "/api/v1"


def test_2027_in_lieu_days_off_move_due_dates() -> None:
    national = compute_deadline("complaint_accept", dt.date(2027, 9, 28))
    assert national.due == dt.date(2027, 10, 12) and national.warnings
    spring = compute_deadline("statement", dt.date(2027, 2, 4))
    assert spring.due == dt.date(2027, 2, 17) and spring.warnings


def test_in_lieu_days_are_not_taken_twice_and_make_up_days_count() -> None:
    table = load_holiday_table()
    year = table.years[2027].model_copy(update={"workdays": [dt.date(2027, 2, 20)]})  # a Saturday make-up day
    off = year.days_off()
    assert {dt.date(2027, 2, 9), dt.date(2027, 2, 10), dt.date(2027, 5, 3), dt.date(2027, 5, 4)} <= off
    assert dt.date(2027, 2, 11) not in off and dt.date(2027, 2, 20) not in off


@pytest.mark.parametrize(
    ("received", "due", "certainty"),
    [
        ("2026-12-28T09:00:00+08:00", "2027-01-07", "provisional"),
        ("2026-09-28T09:00:00+08:00", "2026-10-13", "official"),
    ],
)
def test_intake_shows_the_certainty_of_the_acceptance_due_date(
    world: World, received: str, due: str, certainty: str
) -> None:
    body = {
        "channel": "hotline_12345",
        "kind": "complaint",
        "received_at": received,
        "complainant_name": "陈某",
        "complainant_phone": "13800001111",
        "complainant_address": "苏州市姑苏区某路 1 号",
        "respondent_name": "示例大药房有限公司",
        "respondent_address": "苏州市姑苏区人民路 100 号",
        "request": "退货",
        "facts": "血压计无法开机",
    }
    got = world.client.post(f"{API}/clues/intake", json=body, headers=world.h("clerk")).json()
    assert got["accept_due"] == due and got["accept_due_certainty"] == certainty
    assert bool(got["accept_due_warnings"]) == (certainty == "provisional")


def test_every_rules_file_can_be_overridden_locally(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTINEL_WORKFLOW_RULES_DIR", str(tmp_path))
    text = (RULES_DIR / "deadlines.toml").read_text(encoding="utf-8")
    (tmp_path / "deadlines.toml").write_text(text.replace("days = 7\n", "days = 8\n", 1), encoding="utf-8")
    assert load_deadline_rules().spec("complaint_accept").days == 8  # the county's copy wins
    (tmp_path / "holidays.toml").write_text("[years.2027]\nofficial = true\nholiday = []\n", encoding="utf-8")
    with pytest.raises(RuleFileError) as err:
        load_holiday_table()
    assert err.value.file == str(tmp_path / "holidays.toml") and err.value.key == "years.2027.holiday"
    assert "Extra inputs" in err.value.reason
