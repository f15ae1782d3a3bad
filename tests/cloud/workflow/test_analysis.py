from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.rules.loader import RuleFileError
from cloud.workflow.analysis import (
    Channel,
    ClueFacts,
    ClueKind,
    Disposal,
    RiskGrade,
    SubjectHistory,
    decide,
    grade_subject,
    load_analysis_rules,
    load_risk_rules,
)
from cloud.workflow.deadlines import load_deadline_rules
from protocols.messages import Severity


def alert(category: str, severity: Severity, **kw: object) -> ClueFacts:
    return ClueFacts(kind=ClueKind.ALERT, channel=Channel.SENSOR, category=category, severity=severity, **kw)


def test_drug_fridge_major_alert_goes_to_inspection_with_explanation() -> None:
    decision = decide(alert("drug_storage", Severity.MAJOR, risk_grade=RiskGrade.B))
    assert decision.disposal is Disposal.INSPECT
    assert decision.rule_id == "A06"
    assert {m.condition for m in decision.matched} == {"kind", "category", "severity_at_least"}
    category = next(m for m in decision.matched if m.condition == "category")
    assert category.actual == "drug_storage" and "drug_*" in category.expected
    assert "现场检查" in decision.explanation and "A06" in decision.explanation


def test_high_risk_subject_and_unknown_grade_inspect() -> None:
    assert decide(alert("boiler", Severity.MAJOR, risk_grade=RiskGrade.D)).rule_id == "A05"
    assert decide(alert("boiler", Severity.MAJOR)).rule_id == "A05"  # no grade yet counts as unknown


def test_repeats_within_90_days_escalate() -> None:
    facts = alert("food_cold_chain", Severity.MAJOR, risk_grade=RiskGrade.A, repeats_90d=5)
    decision = decide(facts)
    assert decision.disposal is Disposal.OPEN_CASE and decision.rule_id == "A04"
    assert decision.deadline == "report_verify"
    assert decide(alert("boiler", Severity.MINOR, risk_grade=RiskGrade.A, repeats_90d=2)).rule_id == "A07"


def test_elevator_critical_alert_is_inspected_even_for_low_risk() -> None:
    decision = decide(alert("elevator", Severity.CRITICAL, risk_grade=RiskGrade.A))
    assert (decision.disposal, decision.rule_id) == (Disposal.INSPECT, "A03")


def test_low_risk_warning_without_history_is_no_action() -> None:
    decision = decide(alert("boiler", Severity.WARNING, risk_grade=RiskGrade.A))
    assert decision.disposal is Disposal.NO_ACTION


def test_channels_of_complaints_reports_and_referrals() -> None:
    report = ClueFacts(kind=ClueKind.REPORT, channel=Channel.HOTLINE_12315, category="food_safety")
    assert decide(report).disposal is Disposal.OPEN_CASE
    referral = ClueFacts(kind=ClueKind.REFERRAL, channel=Channel.SUPERIOR, category="price")
    assert decide(referral).rule_id == "A01"
    dispute = ClueFacts(kind=ClueKind.COMPLAINT, channel=Channel.HOTLINE_12345, category="consumer_dispute")
    assert decide(dispute).disposal is Disposal.HANDLE_DIRECTLY
    assert decide(dispute).deadline == "complaint_accept"
    food = ClueFacts(kind=ClueKind.COMPLAINT, channel=Channel.HOTLINE_12345, category="food_safety")
    assert decide(food).disposal is Disposal.INSPECT


def test_unmatched_clue_goes_to_manual_analysis() -> None:
    facts = ClueFacts(kind=ClueKind.FEEDBACK, channel=Channel.ASSESSMENT, category="other")
    decision = decide(facts)
    assert (decision.disposal, decision.rule_id, decision.matched) == (Disposal.MANUAL_ANALYSIS, "default", ())


def test_rule_deadlines_exist() -> None:
    known = set(load_deadline_rules().deadlines)
    for rule in load_analysis_rules().rules:
        assert rule.deadline is None or rule.deadline in known, rule.id


def test_bad_rule_pack_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "analysis.toml"
    path.write_text(
        'version = "t"\n[default]\nreason = "x"\n[[rules]]\nid = "X1"\nname = "n"\nreason = "r"\n'
        'disposal = "inspect"\nwhen = { severity_at_least = "catastrophic" }\n'
    )
    with pytest.raises(RuleFileError) as info:
        load_analysis_rules(path)
    assert info.value.key == "rules[0].when.severity_at_least"


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(list(ClueKind)),
    channel=st.sampled_from(list(Channel)),
    category=st.sampled_from(["drug_storage", "food_cold_chain", "elevator", "boiler", "power", "kitchen_mask", "x"]),
    severity=st.sampled_from(list(Severity)),
    grade=st.none() | st.sampled_from(list(RiskGrade)),
    repeats=st.integers(0, 10),
)
def test_every_clue_gets_exactly_one_explained_decision(
    kind: ClueKind, channel: Channel, category: str, severity: Severity, grade: RiskGrade | None, repeats: int
) -> None:
    facts = ClueFacts(
        kind=kind, channel=channel, category=category, severity=severity, risk_grade=grade, repeats_90d=repeats
    )
    decision = decide(facts)
    assert decision.rule_id == "default" or decision.matched
    assert decision.explanation


# -- risk grading ---------------------------------------------------------------------------------------
def test_clean_small_business_is_grade_a() -> None:
    result = grade_subject(SubjectHistory(business_type="food_retail", clean_inspections_12m=2))
    assert result.grade is RiskGrade.A
    assert result.score == 0  # 3 inherent − 6 clean, floored at 0


def test_history_raises_the_grade_with_reasons() -> None:
    history = SubjectHistory(
        business_type="drug_retail", major_alerts_90d=3, general_violations_12m=1, overdue_rectifications=1
    )
    result = grade_subject(history, previous=RiskGrade.B)
    assert result.score == 6 + 6 + 8 + 10
    assert result.grade is RiskGrade.C and result.changed
    assert [r.factor for r in result.reasons] == [
        "inherent",
        "major_alerts",
        "general_violations",
        "overdue_rectifications",
    ]
    assert "逾期未整改" in result.explanation


def test_caps_and_floors() -> None:
    capped = grade_subject(SubjectHistory(critical_alerts_90d=100))
    assert capped.score == 20
    listed = grade_subject(SubjectHistory(serious_dishonesty_list=True))
    assert listed.grade is RiskGrade.D and listed.score == 0
    assert listed.reasons[-1].label == "列入严重违法失信名单"


def test_risk_rules_validate_fields(tmp_path: Path) -> None:
    path = tmp_path / "risk.toml"
    base = 'version = "t"\ngrades = [{grade="A",max_score=1},{grade="B",max_score=2},{grade="C",max_score=3},'
    base += '{grade="D",max_score=4}]\n'
    path.write_text(base + '[[factors]]\nid="x"\nfield="nonexistent"\nlabel="l"\npoints=1\ncap=2\n')
    with pytest.raises(RuleFileError) as info:
        load_risk_rules(path)
    assert info.value.key == "factors[0]" and "nonexistent" in info.value.reason


@settings(max_examples=100, deadline=None)
@given(
    base=st.builds(
        SubjectHistory,
        critical_alerts_90d=st.integers(0, 20),
        general_violations_12m=st.integers(0, 5),
        clean_inspections_12m=st.integers(0, 5),
    ),
    extra=st.integers(1, 5),
)
def test_more_violations_never_lower_the_grade(base: SubjectHistory, extra: int) -> None:
    worse = base.model_copy(update={"serious_violations_12m": base.serious_violations_12m + extra})
    order = list(RiskGrade)
    assert order.index(grade_subject(worse).grade) >= order.index(grade_subject(base).grade)
