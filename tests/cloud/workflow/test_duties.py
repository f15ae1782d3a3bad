"""Duties as data (``cloud/rules/duties.toml``) and the separation-of-duty rules, each refusal naming its rule.

The rules come from GB/T 22239 (三员分立: system, security and audit administrators hold no business duty) and
from the penalty procedure (承办、审批、法制审核、决定 by different people; a recused person takes no part); the
expected refusals are written here from those rules, not read back from the rules file.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlmodel import Session

from cloud import journal
from cloud.assessment.models import SpotCheck
from cloud.assessment.spot_checks import review
from cloud.core.users import User, UserCreate, create_user
from cloud.rules.loader import RuleFileError
from cloud.workflow.duties import DutyRuleError, DutyRules, check_position, duty_rules
from cloud.workflow.models import EnforcementCase, Recusal, WorkAssignment
from cloud.workflow.service import SYSTEM, Actor, actor_for
from cloud.workflow.states import Role as Duty
from tests.utils.workflow_factories import World

API = "/api/v1"
ADMINISTRATORS = ("admin", "security_admin", "auditor")


def _refusal(resp: object, rule: str) -> dict[str, object]:
    r = resp  # an httpx response
    assert r.status_code == 403, r.text  # type: ignore[attr-defined]
    body: dict[str, object] = r.json()  # type: ignore[attr-defined]
    assert body["rule"] == rule, body
    text = str(body["detail"])
    assert "违反规则" in text and f"rule {rule}" in text  # Chinese and English
    return body


def test_administrators_hold_no_business_duty(world: World) -> None:
    with Session(world.engine) as session:
        for role in ADMINISTRATORS:
            user = create_user(
                session, user_create=UserCreate(username=f"x-{role}", role=role, password="Passw0rd!long")
            )
            assert actor_for(session, user).duties == frozenset(), role
        admin = session.get(User, 1)
        assert admin is not None and admin.role == "admin"
        assert actor_for(session, admin).duties == frozenset()
        # a default supervisor is no longer head, legal reviewer and approver at once
        sup = create_user(
            session, user_create=UserCreate(username="x-sup", role="supervisor", password="Passw0rd!long")
        )
        held = actor_for(session, sup).duties
        assert not held & {Duty.BUREAU_HEAD, Duty.DEPARTMENT_HEAD, Duty.LEGAL_REVIEWER}


def test_administrators_cannot_be_granted_a_business_duty(world: World) -> None:
    token = world.client.post(
        f"{API}/auth/token", data={"username": "admin", "password": "Adm1n-pass-for-tests"}
    ).json()["access_token"]
    admin = {"Authorization": f"Bearer {token}"}
    for role in ADMINISTRATORS:
        uid = world.add_user(f"y-{role}", role)
        resp = world.client.put(f"{API}/staff/{uid}", json={"duties": ["legal_reviewer"]}, headers=admin)
        _refusal(resp, "three_administrators")
    # the admin's own account neither
    _refusal(
        world.client.put(f"{API}/staff/1", json={"duties": ["bureau_head"]}, headers=admin), "three_administrators"
    )
    # an inspector account cannot be made bureau head; it can be made legal reviewer
    insp = world.user_ids["insp1"]
    _refusal(world.client.put(f"{API}/staff/{insp}", json={"duties": ["bureau_head"]}, headers=admin), "duty_grants")
    ok = world.client.put(f"{API}/staff/{insp}", json={"duties": ["inspector", "legal_reviewer"]}, headers=admin)
    assert ok.status_code == 200, ok.text


def test_rules_file_refuses_duties_for_administrators(tmp_path: Path) -> None:
    text = (Path(__file__).parents[3] / "cloud/rules/duties.toml").read_text(encoding="utf-8")
    bad = tmp_path / "duties.toml"
    bad.write_text(text.replace("device = []\n", 'device = []\nauditor = ["analyst"]\n', 1), encoding="utf-8")
    with pytest.raises(RuleFileError, match="administrator role 'auditor'"):
        duty_rules.__wrapped__(bad)
    assert isinstance(duty_rules(), DutyRules)


# ---------------------------------------------------------------- one person, one position per case
def _case(world: World) -> EnforcementCase:
    with Session(world.engine, expire_on_commit=False) as session:
        case = EnforcementCase(
            case_no="AY-T-1",
            source="manual",
            subject_id=world.subject_id,
            department_id=world.department_id,
            received_at=dt.datetime.now(dt.UTC),
            verify_due=dt.date.today() + dt.timedelta(days=20),
            created_by="t",
        )
        session.add(case)
        session.flush()
        for uid in (world.user_ids["insp1"], world.user_ids["insp2"]):
            session.add(WorkAssignment(target_type="case", target_id=case.id or 0, user_id=uid))
        session.commit()
        return case


def _acted(world: World, case: EnforcementCase, username: str, action: str) -> None:
    with Session(world.engine) as session:
        journal.append(
            session,
            actor=username,
            action="case.transition",
            target_type="case",
            target_id=case.id or 0,
            payload={"action": action},
        )
        session.commit()


def _actor(world: World, name: str, *duties: Duty) -> Actor:
    return Actor(name, world.user_ids[name], name, frozenset(duties), world.department_id)


def test_handling_approval_legal_review_and_decision_are_different_people(world: World) -> None:
    for name in ("boss", "deputy", "law"):
        world.add_user(name, "supervisor", duties=["bureau_head", "legal_reviewer"])
    case = _case(world)
    with Session(world.engine) as session:
        # an assigned officer who is also a bureau head cannot approve their own case
        with pytest.raises(DutyRuleError) as refused:
            check_position(session, case, "approve_opening", _actor(world, "insp1", Duty.BUREAU_HEAD))
        assert refused.value.rule == "case_positions" and "承办人" in refused.value.message
        check_position(session, case, "approve_opening", _actor(world, "boss", Duty.BUREAU_HEAD))
    _acted(world, case, "boss", "approve_opening")
    with Session(world.engine) as session:
        chief = _actor(world, "boss", Duty.BUREAU_HEAD, Duty.LEGAL_REVIEWER)
        for action in ("pass_review", "decide", "start_investigation"):  # the approver takes no other position
            with pytest.raises(DutyRuleError) as refused:
                check_position(session, case, action, chief)
            assert refused.value.rule == "case_positions"
            assert "立案审批人" in refused.value.message and "already holds ['approval']" in refused.value.message
        check_position(session, case, "refuse_opening", chief)  # same position: allowed
        check_position(session, case, "pass_review", _actor(world, "law", Duty.LEGAL_REVIEWER))
    _acted(world, case, "law", "pass_review")
    with Session(world.engine) as session:
        with pytest.raises(DutyRuleError):  # the legal reviewer does not decide
            check_position(session, case, "decide", _actor(world, "law", Duty.BUREAU_HEAD))
        check_position(session, case, "decide", _actor(world, "deputy", Duty.BUREAU_HEAD))
        check_position(session, case, "close", chief)  # closing is no position of the rule
        check_position(session, case, "decide", SYSTEM)


def test_a_recused_person_holds_no_position(world: World) -> None:
    world.add_user("boss", "supervisor", duties=["bureau_head"])
    case = _case(world)
    with Session(world.engine) as session:
        session.add(Recusal(user_id=world.user_ids["boss"], subject_id=world.subject_id, reason="亲属", created_by="t"))
        session.commit()
        for action in ("approve_opening", "decide", "start_investigation"):
            with pytest.raises(DutyRuleError) as refused:
                check_position(session, case, action, _actor(world, "boss", Duty.BUREAU_HEAD))
            assert refused.value.rule == "case_recusal"


def test_the_api_names_the_rule(world: World) -> None:
    """Through the HTTP API: an assigned officer holding the bureau-head duty tries to approve their own case."""
    world.add_user("officer-head", "supervisor", duties=["enforcement_officer", "bureau_head"])
    c = world.client
    body = {
        "subject_id": world.subject_id,
        "summary": "举报冷藏药品常温存放",
        "officers": [world.user_ids["officer-head"], world.user_ids["insp1"]],
    }
    case = c.post(f"{API}/cases", json=body, headers=world.h("clerk"))
    assert case.status_code == 201, case.text
    case_id = case.json()["id"]
    world.add_user("dept-head", "supervisor", duties=["department_head"])
    for who in ("officer-head", "dept-head"):
        r = c.post(f"{API}/cases/{case_id}/opinions", json={"opinion": "建议立案"}, headers=world.h(who))
        assert r.status_code == 201, r.text
    resp = c.post(
        f"{API}/cases/{case_id}/transitions",
        json={"action": "approve_opening", "role": "bureau_head"},
        headers=world.h("officer-head"),
    )
    _refusal(resp, "case_positions")


def test_spot_check_reviewer_is_not_the_reviewed(world: World) -> None:
    with Session(world.engine) as session:
        check = SpotCheck(batch="b1", target_type="task", target_id="1", responsible=["insp1"], seed="s")
        session.add(check)
        session.commit()
        with pytest.raises(DutyRuleError) as refused:
            review(session, check.id or 0, verdict="ok", note="", by="insp1")
        assert refused.value.rule == "spot_check_independence"
        session.rollback()
        assert review(session, check.id or 0, verdict="ok", note="", by="head").reviewed_by == "head"
