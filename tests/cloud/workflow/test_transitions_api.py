"""Clue transitions through the API: 409 with the reason, 403 for the wrong role, 422 without a reason, exactly one
winner of two concurrent transitions, stale versions refused, supervisor override, risk recomputation."""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, select

from cloud.core.db import session_scope
from cloud.workflow.clues import Clue
from cloud.workflow.decisions import run_periodic
from cloud.workflow.models import RiskAssessmentRecord
from cloud.workflow.service import Actor, Conflict, apply_transition
from cloud.workflow.states import CLUE_MACHINE
from cloud.workflow.states import Role as Duty
from tests.utils.workflow_factories import World

API = "/api/v1"


def _walk_in(world: World, title: str = "来访反映药店冷藏柜不制冷") -> int:
    body = {
        "kind": "walk_in",
        "channel": "walk_in",
        "category": "drug_storage",
        "title": title,
        "respondent_name": "示例大药房有限公司",
    }
    resp = world.client.post(f"{API}/clues", json=body, headers=world.h("clerk"))
    assert resp.status_code == 201, resp.text
    return int(resp.json()["clue"]["id"])


def test_invalid_transition_409_wrong_role_403_missing_reason_422(world: World) -> None:
    c = world.client
    cid = _walk_in(world)
    assert c.get(f"{API}/clues/{cid}", headers=world.h("head")).json()["state"] in ("triaged", "analysing")
    bad = c.post(
        f"{API}/clues/{cid}/transitions", json={"action": "close", "reason": "已处理"}, headers=world.h("head")
    )
    assert bad.status_code == 409 and bad.json()["code"] == "invalid_transition"
    assert "不能执行“办结”" in bad.json()["detail"]
    role = c.post(f"{API}/clues/{cid}/transitions", json={"action": "dismiss", "reason": "x"}, headers=world.h("insp1"))
    assert role.status_code == 403 and role.json()["code"] == "role_not_allowed"
    unheld = c.post(
        f"{API}/clues/{cid}/transitions",
        json={"action": "dismiss", "reason": "x", "role": "bureau_head"},
        headers=world.h("clerk"),
    )
    assert unheld.status_code == 403
    no_reason = c.post(f"{API}/clues/{cid}/transitions", json={"action": "dismiss"}, headers=world.h("clerk"))
    assert no_reason.status_code == 422 and no_reason.json()["code"] == "reason_required"
    stale = c.post(
        f"{API}/clues/{cid}/transitions",
        json={"action": "handle_directly", "expected_version": 0},
        headers=world.h("clerk"),
    )
    assert stale.status_code == 409 and stale.json()["code"] == "stale_version"
    # nothing of the refused attempts changed the clue
    events = c.get(f"{API}/clues/{cid}/timeline", headers=world.h("head")).json()
    assert all(e["payload"].get("action") != "dismiss" for e in events)


def test_two_concurrent_transitions_only_one_wins(world: World) -> None:
    c = world.client
    cid = _walk_in(world)
    barrier = threading.Barrier(2)
    results: list[int] = []

    def attempt(action: str, reason: str | None) -> None:
        barrier.wait()
        resp = c.post(
            f"{API}/clues/{cid}/transitions", json={"action": action, "reason": reason}, headers=world.h("clerk")
        )
        results.append(resp.status_code)

    threads = [
        threading.Thread(target=attempt, args=("handle_directly", None)),
        threading.Thread(target=attempt, args=("dismiss", "重复反映")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(results) == [200, 409]
    clue = c.get(f"{API}/clues/{cid}", headers=world.h("head")).json()
    assert clue["state"] in ("handled_directly", "no_action")
    timeline = c.get(f"{API}/clues/{cid}/timeline", headers=world.h("head")).json()
    wins = [
        e
        for e in timeline
        if e["action"] == "clue.transition" and e["payload"]["to"] in ("handled_directly", "no_action")
    ]
    assert len(wins) == 1

    # the compare-and-set itself: a writer holding a stale copy loses even if its read was valid
    with session_scope(world.engine, write=True) as session:
        clue_row = session.get(Clue, cid)
        assert clue_row is not None
        action = "close" if clue_row.state == "handled_directly" else "reopen"
        set_committed_value(clue_row, "version", clue_row.version - 1)
        head = Actor("head-bot", None, "负责人", frozenset({Duty.BUREAU_HEAD, Duty.SYSTEM}))
        with pytest.raises(Conflict) as lost:
            apply_transition(session, CLUE_MACHINE, clue_row, action, head, reason="复核")
        assert lost.value.code == "concurrent_transition"


def test_close_handled_clue_and_override_decision(world: World) -> None:
    c = world.client
    cid = _walk_in(world)
    override = c.post(
        f"{API}/clues/{cid}/decision",
        json={"disposal": "handle_directly", "reason": "无需检查"},
        headers=world.h("insp1"),
    )
    assert override.status_code == 403
    ok = c.post(
        f"{API}/clues/{cid}/decision",
        json={"disposal": "handle_directly", "reason": "电话联系经营者已恢复制冷"},
        headers=world.h("head"),
    )
    assert ok.status_code == 200 and ok.json()["override"] and ok.json()["disposal"] == "handle_directly"
    decisions = c.get(f"{API}/clues/{cid}/decisions", headers=world.h("head")).json()
    assert [d["current"] for d in decisions] == [False, True]
    assert c.post(f"{API}/clues/{cid}/dispatch", json={}, headers=world.h("clerk")).status_code == 409
    assert (
        c.post(
            f"{API}/clues/{cid}/transitions", json={"action": "handle_directly"}, headers=world.h("clerk")
        ).status_code
        == 200
    )
    closed = c.post(
        f"{API}/clues/{cid}/transitions",
        json={"action": "close", "reason": "经营者已整改，回访满意"},
        headers=world.h("clerk"),
    )
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert closed.json()["result"] == "经营者已整改，回访满意"
    # reopen only by a head, with a reason
    assert (
        c.post(
            f"{API}/clues/{cid}/transitions", json={"action": "reopen", "reason": "再次投诉"}, headers=world.h("clerk")
        ).status_code
        == 403
    )
    assert (
        c.post(
            f"{API}/clues/{cid}/transitions", json={"action": "reopen", "reason": "再次投诉"}, headers=world.h("head")
        ).json()["state"]
        == "triaged"
    )


async def test_risk_grade_on_demand_and_periodic(world: World) -> None:
    c = world.client
    world.alert(severity="critical")
    resp = c.post(f"{API}/risk/subjects/{world.subject_id}/recompute", headers=world.h("head"))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    factors = {r["factor"] for r in body["reasons"]}
    assert {"inherent", "critical_alerts"} <= factors and body["grade"] in "ABCD" and body["previous"] == "C"
    assert c.post(f"{API}/risk/subjects/{world.subject_id}/recompute", headers=world.h("insp1")).status_code == 403

    task = asyncio.create_task(run_periodic(world.engine, every_s=3600, first_delay_s=0))
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while True:
            with Session(world.engine) as session:
                rows = session.exec(select(RiskAssessmentRecord).where(RiskAssessmentRecord.trigger == "schedule"))
                if list(rows):
                    break
            assert loop.time() < deadline, "periodic recomputation did not run"
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
