"""One scenario per rule of the cloud's shipped rule files: the analysis pack (``analysis.toml``: which disposal a
clue gets) and the notification routes (``routing.toml``: which route an event takes). Expectations are written from
what the rule is for (the regulation or the procedure it serves), and a meta-test fails when a rule is added
without a scenario here.

* a report (举报) is verified and a case opened or not within 15 working days → open_case; a referral likewise;
* a trapped passenger is the maintenance unit's rescue against minutes (handled directly, tracked by the SLA),
  other critical elevator alarms are inspected on site;
* serious alarms repeated ≥ 5 times in 90 days → a case; drug / cold-chain alarms → inspection; …
* every drug-site alarm takes a route reaching ≥ 3 designated people (GSP), a trapped passenger the rescue route.
"""

from __future__ import annotations

from typing import Any

import pytest

from cloud.notify.config import load_rules
from cloud.workflow.analysis import (
    Channel,
    ClueFacts,
    ClueKind,
    Disposal,
    RiskGrade,
    Severity,
    decide,
    load_analysis_rules,
)

ALERT = {"kind": ClueKind.ALERT, "channel": Channel.SENSOR}
COMPLAINT = {"kind": ClueKind.COMPLAINT, "channel": Channel.HOTLINE_12345}

ANALYSIS: dict[str, tuple[dict[str, Any], Disposal]] = {
    "A01": ({"kind": ClueKind.REFERRAL, "channel": Channel.SUPERIOR, "category": "price"}, Disposal.OPEN_CASE),
    "A02": ({"kind": ClueKind.REPORT, "channel": Channel.HOTLINE_12315, "category": "food"}, Disposal.OPEN_CASE),
    "A03t": (
        {**ALERT, "category": "elevator", "rule_id": "elevator.trapped", "severity": Severity.CRITICAL},
        Disposal.HANDLE_DIRECTLY,
    ),
    "A03": (
        {**ALERT, "category": "elevator", "rule_id": "elevator.fault_05", "severity": Severity.CRITICAL},
        Disposal.INSPECT,
    ),
    "A04": ({**ALERT, "category": "boiler", "severity": Severity.MAJOR, "repeats_90d": 5}, Disposal.OPEN_CASE),
    "A04i": (
        {
            "kind": ClueKind.ALERT,
            "channel": Channel.INTERNET_MONITORING,
            "category": "online_advertising",
            "severity": Severity.MAJOR,
        },
        Disposal.OPEN_CASE,
    ),
    "A04p": (
        {
            "kind": ClueKind.ALERT,
            "channel": Channel.INTERNET_MONITORING,
            "category": "online_price",
            "severity": Severity.MAJOR,
        },
        Disposal.INSPECT,
    ),
    "A04m": (
        {
            "kind": ClueKind.ALERT,
            "channel": Channel.INTERNET_MONITORING,
            "category": "online_price",
            "severity": Severity.MINOR,
        },
        Disposal.MANUAL_ANALYSIS,
    ),
    "A05": ({**ALERT, "category": "boiler", "severity": Severity.MAJOR, "risk_grade": RiskGrade.C}, Disposal.INSPECT),
    "A06": (
        {**ALERT, "category": "drug_storage", "severity": Severity.MAJOR, "risk_grade": RiskGrade.A},
        Disposal.INSPECT,
    ),
    "A07": (
        {**ALERT, "category": "boiler", "severity": Severity.MINOR, "repeats_90d": 2, "risk_grade": RiskGrade.A},
        Disposal.INSPECT,
    ),
    "A08": (
        {**ALERT, "category": "power", "severity": Severity.MAJOR, "risk_grade": RiskGrade.A},
        Disposal.HANDLE_DIRECTLY,
    ),
    "A09": (
        {**ALERT, "category": "kitchen_hygiene", "severity": Severity.MINOR, "risk_grade": RiskGrade.A},
        Disposal.HANDLE_DIRECTLY,
    ),
    "A10": (
        {**ALERT, "category": "boiler", "severity": Severity.WARNING, "risk_grade": RiskGrade.B},
        Disposal.NO_ACTION,
    ),
    "A11": ({**COMPLAINT, "category": "food_safety"}, Disposal.INSPECT),
    "A12": ({**COMPLAINT, "category": "consumer_dispute", "repeats_90d": 2}, Disposal.HANDLE_DIRECTLY),
    "A13": ({**COMPLAINT, "category": "consumer_dispute", "repeats_90d": 3}, Disposal.INSPECT),
}


@pytest.mark.parametrize("rule_id", sorted(ANALYSIS))
def test_analysis_rule_scenario(rule_id: str) -> None:
    facts, disposal = ANALYSIS[rule_id]
    decision = decide(ClueFacts(**facts))
    assert (decision.rule_id, decision.disposal) == (rule_id, disposal), decision.explanation()


def test_every_analysis_rule_has_a_scenario() -> None:
    assert {r.id for r in load_analysis_rules().rules} == set(ANALYSIS)


def _facts(**kw: str | None) -> dict[str, str | None]:
    base: dict[str, str | None] = dict.fromkeys(
        ("severity", "category", "rule_id", "site_id", "site_category", "channel")
    )
    return {**base, **kw}


ROUTES: dict[str, tuple[str, dict[str, str | None]]] = {
    "drug_temperature": ("alert.raised", _facts(category="drug_storage", severity="major", rule_id="gsp.temp_high")),
    "drug_site": ("alert.raised", _facts(category="power", severity="critical", site_category="drug")),
    "elevator_trapped": ("alert.raised", _facts(category="elevator", severity="critical", rule_id="elevator.trapped")),
    "critical_alert": ("alert.raised", _facts(category="boiler", severity="critical", rule_id="boiler.overpressure")),
    "alert": ("alert.raised", _facts(category="boiler", severity="minor", rule_id="boiler.hardness_high")),
    "clue": ("clue.created", _facts(channel="hotline_12315")),
    "task_assigned": ("task.created", _facts()),
    "close_override": ("clue.close_overridden", _facts()),
    "supervision": ("supervision.clue_created", _facts()),
    "device_unannounced": ("device.unannounced_held", _facts()),
}


@pytest.mark.parametrize("route_id", sorted(ROUTES))
def test_notification_route_scenario(route_id: str) -> None:
    action, facts = ROUTES[route_id]
    route = load_rules().routing.route_for(action, facts)
    assert route is not None and route.id == route_id


def test_every_route_has_a_scenario_and_device_clues_are_not_routed_twice() -> None:
    rules = load_rules().routing
    assert {r.id for r in rules.routes} == set(ROUTES)
    assert rules.route_for("clue.created", _facts(channel="sensor")) is None  # notified as alert.raised
