"""Every labelled simulator scenario through the analysis pipeline: exactly the expected alerts."""

from __future__ import annotations

import pytest

from protocols.messages import AlertEvent, AlertPhase
from simulators.camera.groundtruth import Evaluation
from tests.edge.vision.helpers import SCENARIOS, run_offline, scenario, sha256

NAMES = sorted(p.stem for p in SCENARIOS.glob("*.toml"))


@pytest.mark.parametrize("name", NAMES)
def test_scenario_gives_exactly_the_expected_alerts(name: str) -> None:
    sc = scenario(name)
    run = run_offline(sc)
    alerts = run.alerts()
    expected = sorted(e.rule_id for e in sc.expect)
    assert sorted(a.rule_id for a in alerts) == expected, [(a.rule_id, a.raised_s) for a in alerts]
    evaluation = Evaluation()
    evaluation.add(sc, alerts)
    assert not evaluation.missed and not evaluation.unexpected
    for kind, score in evaluation.per_type.items():
        assert score.cleared_late == 0, f"{kind} did not clear in time"

    for _, tr in run.transitions:
        # raise carries a JPEG snapshot whose SHA-256 is the reference; clear carries none
        if tr.phase is AlertPhase.RAISE:
            assert len(tr.evidence) == 1
            ref = tr.evidence[0]
            blob = run.snapshots[ref.sha256]
            assert sha256(blob) == ref.sha256 and ref.size == len(blob) and blob[:3] == b"\xff\xd8\xff"
        else:
            assert tr.phase is AlertPhase.CLEAR and not tr.evidence
        # and it is a valid wire message once the agent adds its identity
        event = AlertEvent(site_id="s1", agent_id="a1", seq=1, **tr.alert_fields())
        assert event.device_id == "kitchen-cam-1"
        assert event.category in {"video", "food_safety"}


def test_zone_and_category_of_pest_alert() -> None:
    run = run_offline(scenario("night_pest"))
    raised = [tr for _, tr in run.transitions if tr.phase is AlertPhase.RAISE]
    assert len(raised) == 1
    tr = raised[0]
    assert tr.zone_id == "kitchen" and tr.category == "food_safety"
    assert tr.value is not None and 0.5 <= tr.value <= 0.9  # a confidence, never certainty
    assert "疑似鼠患" in tr.message


def test_people_analysis_is_gated_by_motion_and_schedule() -> None:
    quiet = run_offline(scenario("quiet_night"))
    assert quiet.hog_runs == 0  # nothing moves: HOG never runs
    person = run_offline(scenario("after_hours_person"))
    assert 0 < person.hog_runs < person.frames
