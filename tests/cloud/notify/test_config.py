"""Rule files: validated at load; a GSP route with fewer than 3 designated people is refused."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from cloud.notify.config import load_rules
from cloud.notify.roster import TZ, ShiftTemplate, expand
from cloud.rules.loader import RULES_DIR, RuleFileError


def copy_rules(tmp_path: Path) -> Path:
    for name in ("routing.toml", "escalation.toml"):
        shutil.copy(RULES_DIR / name, tmp_path / name)
    return tmp_path


def test_packaged_rules_load() -> None:
    rules = load_rules()
    drug = next(r for r in rules.routing.routes if r.id == "drug_temperature")
    assert drug.min_recipients >= 3 and drug.storm_exempt
    assert rules.policy("elevator_trapped").sla is not None
    assert rules.policy("elevator_trapped").sla.within_s == 1800  # type: ignore[union-attr]


def test_drug_route_with_fewer_than_three_recipients_is_refused(tmp_path: Path) -> None:
    d = copy_rules(tmp_path)
    text = (d / "routing.toml").read_text(encoding="utf-8").replace("\nmin_recipients = 3", "\nmin_recipients = 2", 1)
    (d / "routing.toml").write_text(text, encoding="utf-8")
    with pytest.raises(RuleFileError) as err:
        load_rules(d)
    assert "routing.toml" in str(err.value) and "GSP" in str(err.value)


def test_unknown_escalation_policy_names_the_route(tmp_path: Path) -> None:
    d = copy_rules(tmp_path)
    text = (d / "routing.toml").read_text(encoding="utf-8").replace('escalation = "critical"', 'escalation = "nope"')
    (d / "routing.toml").write_text(text, encoding="utf-8")
    with pytest.raises(RuleFileError, match=r"critical_alert.*nope"):
        load_rules(d)


def test_night_shift_crosses_midnight_in_shanghai_time() -> None:
    shifts = expand(
        "SC01",
        dt.date(2026, 11, 2),
        2,
        [ShiftTemplate("night", dt.time(17, 30), dt.time(8, 30), ("insp-a",))],
    )
    assert len(shifts) == 2
    first = shifts[0]
    assert first.starts_at == dt.datetime(2026, 11, 2, 17, 30, tzinfo=TZ)
    assert first.ends_at == dt.datetime(2026, 11, 3, 8, 30, tzinfo=TZ)
    assert first.starts_at.astimezone(dt.UTC).hour == 9  # 17:30 Beijing time = 09:30 UTC


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("\nmin_designated = 3", "\nmin_designated = 2"),  # GSP: three designated enterprise people
        ('recipients = ["site_contacts", "on_duty"]\ndesignation = "gsp_designated"', 'recipients = ["on_duty"]'),
    ],
)
def test_drug_route_must_reach_three_designated_enterprise_people(tmp_path: Path, old: str, new: str) -> None:
    d = copy_rules(tmp_path)
    text = (d / "routing.toml").read_text(encoding="utf-8")
    assert old in text
    (d / "routing.toml").write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(RuleFileError) as err:
        load_rules(d)
    assert "routing.toml" in str(err.value) and "min_designated" in str(err.value)
