"""The follow-up loop through the API on one world: a closed task with a rectification order holds its clue open;
the deadline scheduler assigns the 复查 per the dispatch rules (a recused officer is replaced); closing is refused
with the rule's code and Chinese reason, and only a duty named in duties.toml may override it with a reason, which
waives the obligation, cancels the open 复查, is journaled on the timeline and routed to supervision."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlmodel import Session

from cloud.notify.config import load_rules
from cloud.workflow.follow_up import run_due
from cloud.workflow.models import Recusal
from tests.utils.workflow_factories import World

API = "/api/v1"
CST = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture(scope="module")
def world(module_world: World) -> World:
    return module_world


def _rectified(world: World) -> tuple[int, dict[str, object], str]:
    """A clue whose task ordered rectification and was closed: (clue id, the task, the order's deadline)."""
    c = world.client
    clue_id = world.alert()
    assert clue_id is not None
    task = c.post(f"{API}/clues/{clue_id}/dispatch", json={}, headers=world.h("clerk")).json()["task"]
    lead = next(n for n in ("insp1", "insp2", "insp3") if world.user_ids[n] == task["assignees"][0])

    def act(who: str, action: str, **body: object) -> dict[str, object]:
        r = c.post(f"{API}/tasks/{task['id']}/transitions", json={"action": action, **body}, headers=world.h(who))
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    act(lead, "accept")
    act(lead, "check_in", check_in={"lat": 31.3, "lon": 120.6})
    for code in task["items"]:
        r = c.put(
            f"{API}/tasks/{task['id']}/results/{code}",
            json={"outcome": "fail" if code == "DR-STO-01" else "pass", "note": "冷藏柜 12.0 ℃"},
            headers=world.h(lead),
        )
        assert r.status_code == 200, r.text
    submitted = act(lead, "submit", findings="冷藏柜温度 12 ℃")
    order = next(d for d in submitted["documents"] if d["kind"] == "rectification_order")  # type: ignore[attr-defined]
    deadline = c.get(f"{API}/documents/{order['id']}", headers=world.h("head")).json()["data"]["deadline"]
    act("head", "close")
    return clue_id, task, deadline


def _close(world: World, clue_id: int, who: str, **body: object) -> object:
    return world.client.post(
        f"{API}/clues/{clue_id}/transitions", json={"action": "close", "reason": "已处理", **body}, headers=world.h(who)
    )


def test_scheduler_replaces_a_recused_officer_and_override_cancels_the_follow_up(world: World) -> None:
    c = world.client
    clue_id, task, deadline = _rectified(world)
    assignees = list(task["assignees"])  # type: ignore[call-overload]
    with Session(world.engine) as session:  # one of the officers is now recused for the subject
        session.add(Recusal(user_id=assignees[0], subject_id=world.subject_id, reason="亲属关系", created_by="head"))
        session.commit()
    at = dt.datetime.combine(dt.date.fromisoformat(deadline), dt.time(0, 30), tzinfo=CST)  # early on the day
    made = run_due(world.engine, now=at)
    assert len(made) == 1 and run_due(world.engine, now=at) == []
    clue = c.get(f"{API}/clues/{clue_id}", headers=world.h("head")).json()
    follow = next(t for t in clue["tasks"] if t["id"] == made[0])
    assert assignees[0] not in follow["assignees"] and len(follow["assignees"]) == 2  # dispatched as any task

    # the 复查 is not done: refused for everyone without a reason, with the rule's code
    refused = _close(world, clue_id, "head")
    assert refused.status_code == 409, refused.text  # type: ignore[attr-defined]
    body = refused.json()  # type: ignore[attr-defined]
    assert body["code"] == "closing_obligation" and body["rule"] == "clue_closing_obligations"
    assert body["can_override"] and "复查" in body["detail"] and "填写批准办结的理由" in body["detail"]
    # a clerk may close clues, but not override the obligation
    clerk = _close(world, clue_id, "clerk", override_reason="当事人已停业")
    assert clerk.status_code == 409 and not clerk.json()["can_override"]  # type: ignore[attr-defined]
    assert "只有承办机构负责人可以填写理由批准办结" in clerk.json()["detail"]  # type: ignore[attr-defined]

    ok = _close(world, clue_id, "head", override_reason="当事人已注销，无复查对象")
    assert ok.status_code == 200, ok.text  # type: ignore[attr-defined]
    clue = c.get(f"{API}/clues/{clue_id}", headers=world.h("head")).json()
    assert clue["state"] == "closed" and clue["follow_ups"][0]["state"] == "waived"
    assert clue["follow_ups"][0]["waived_reason"] == "当事人已注销，无复查对象" and clue["closing_obligations"] == []
    assert next(t for t in clue["tasks"] if t["id"] == made[0])["state"] == "cancelled"

    timeline = c.get(f"{API}/clues/{clue_id}/timeline", headers=world.h("head")).json()
    override = next(e for e in timeline if e["action"] == "clue.close_overridden")
    assert override["actor_name"] == "周局长" and override["payload"]["reason"] == "当事人已注销，无复查对象"
    assert override["payload"]["rule"] == "clue_closing_obligations" and "复查" in override["payload"]["obligations"][0]
    close = next(e for e in timeline if e["action"] == "clue.transition" and e["payload"]["to"] == "closed")
    assert close["payload"]["override_reason"] == "当事人已注销，无复查对象"
    # supervision hears of it (notification routing data: routing.toml)
    route = load_rules().routing.route_for("clue.close_overridden", {})
    assert route is not None and route.id == "close_override" and route.recipients == ["supervisors"]


def test_override_while_the_deadline_is_pending_means_no_follow_up(world: World) -> None:
    from protocols import AlertPhase

    world.alert(AlertPhase.CLEAR)  # the first clue is closed: the next alert starts a new one
    clue_id, _task, deadline = _rectified(world)
    refused = _close(world, clue_id, "clerk")
    assert refused.status_code == 409 and "改正期限" in refused.json()["detail"]  # type: ignore[attr-defined]
    assert deadline in refused.json()["obligations"][0]  # type: ignore[attr-defined]
    ok = _close(world, clue_id, "head", override_reason="上级交办，另案处理")
    assert ok.status_code == 200, ok.text  # type: ignore[attr-defined]
    at = dt.datetime.combine(dt.date.fromisoformat(deadline), dt.time(12, 0), tzinfo=CST)
    assert run_due(world.engine, now=at) == []  # waived: the scheduler creates nothing


def test_early_follow_up_when_the_party_reports_rectification_done(world: World) -> None:
    from protocols import AlertPhase

    world.alert(AlertPhase.CLEAR)
    clue_id, task, deadline = _rectified(world)
    fid = world.client.get(f"{API}/clues/{clue_id}", headers=world.h("head")).json()["follow_ups"][0]["id"]
    url = f"{API}/clues/{clue_id}/follow-ups/{fid}/schedule"
    assert world.client.post(url, json={"reason": "当事人已整改"}, headers=world.h("insp1")).status_code == 403
    assert world.client.post(url, json={"reason": ""}, headers=world.h("head")).status_code == 422
    made = world.client.post(url, json={"reason": "当事人报告已整改，申请复查"}, headers=world.h("head"))
    assert made.status_code == 200, made.text
    assert made.json()["method"] == "复查" and sorted(made.json()["assignees"]) == sorted(task["assignees"])  # type: ignore[call-overload]
    again = world.client.post(url, json={"reason": "再次"}, headers=world.h("head"))
    assert again.status_code == 409  # once per order
    at = dt.datetime.combine(dt.date.fromisoformat(deadline), dt.time(9, 0), tzinfo=CST)
    assert run_due(world.engine, now=at) == []  # the scheduler does not make a second one
    timeline = world.client.get(f"{API}/clues/{clue_id}/timeline", headers=world.h("head")).json()
    early = next(e for e in timeline if e["action"] == "task.follow_up_early")
    assert early["payload"]["reason"] == "当事人报告已整改，申请复查" and early["actor_name"] == "周局长"
