"""Complaint handling on the official 2026 calendar (expected dates hand-computed, not read from the rules):

* received Mon 28 Sep 2026 10:00: 7 working days — Sep 29, 30, Oct 8, 9, 10 (Sat, make-up), 12, 13 (1–7 Oct
  National Day off) → accept/refuse by Tue 13 Oct; still due at 23:00 that day, a supervision clue just after.
* accepted Fri 9 Oct: mediation 45 working days — Oct 10, 12–16, 19–23, 26–30, Nov 2–6, 9–13, 16–20, 23–27,
  30, Dec 1–4, 7–10 → Thu 10 Dec.
* a named report whose case is opened Wed 30 Sep: feedback within 5 working days — Oct 8, 9, 10, 12, 13 → 13 Oct.

``paperwork.today`` is replaced to move the bureau's "today" (time cannot be run forward here); the monitor is
the real supervision monitor over the real journal.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, col, select

from cloud.assessment.monitor import SupervisionMonitor
from cloud.workflow import paperwork
from cloud.workflow.clues import Clue
from cloud.workflow.models import ComplainantMessage
from tests.utils.workflow_factories import USCC, World

API = "/api/v1"
BJ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def today(monkeypatch: pytest.MonkeyPatch) -> list[dt.date]:
    day = [dt.date(2026, 9, 28)]
    monkeypatch.setattr(paperwork, "today", lambda: day[0])
    return day


def _complaint(world: World, received: str, no: str) -> dict[str, Any]:
    body = {
        "channel": "hotline_12315",
        "kind": "complaint",
        "external_no": no,
        "received_at": received,
        "category": "consumer_dispute",
        "complainant_name": "陈某",
        "complainant_phone": "13800001111",
        "complainant_address": "苏州市姑苏区某路 1 号",
        "respondent_name": "示例大药房有限公司",
        "respondent_address": "苏州市姑苏区人民路 100 号",
        "request": "退还货款 128 元",
        "facts": "购买的血压计无法开机，商家拒绝退货",
    }
    r = world.client.post(f"{API}/clues/intake", json=body, headers=world.h("clerk"))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def _supervision_clues(world: World) -> list[Clue]:
    with Session(world.engine) as session:
        return [c for c in session.exec(select(Clue)) if c.channel == "assessment"]


def _breached(world: World, *clock_ids: str) -> dict[str, bool]:
    """Per clock id: whether a clock of that id ran out (each must have been started)."""
    from cloud.assessment.models import SupervisionClock

    with Session(world.engine) as session:
        rows = session.exec(select(SupervisionClock).where(col(SupervisionClock.clock_id).in_(clock_ids))).all()
        assert {r.clock_id for r in rows} == set(clock_ids)
        return {i: any(r.breached_at is not None for r in rows if r.clock_id == i) for i in clock_ids}


def test_national_day_acceptance_due_and_supervision_clue(world: World, today: list[dt.date]) -> None:
    got = _complaint(world, "2026-09-28T10:00:00+08:00", "12315-0928-1")
    assert got["accept_due"] == "2026-10-13"
    monitor = SupervisionMonitor(world.engine)
    assert monitor.process_batch() > 0
    assert monitor.tick(dt.datetime(2026, 10, 13, 23, 0, tzinfo=BJ))["clues"] == 0
    assert monitor.tick(dt.datetime(2026, 10, 14, 0, 0, 1, tzinfo=BJ))["clues"] == 1
    clues = _supervision_clues(world)
    assert len(clues) == 1 and "投诉受理" in clues[0].title


def test_acceptance_mediation_and_notice(world: World, today: list[dt.date]) -> None:
    c = world.client
    got = _complaint(world, "2026-09-28T10:00:00+08:00", "12315-0928-2")
    order_id = got["work_order_id"]
    today[0] = dt.date(2026, 10, 9)
    accepted = c.post(
        f"{API}/work-orders/{order_id}/acceptance", json={"decision": "accepted"}, headers=world.h("clerk")
    )
    assert accepted.status_code == 200, accepted.text
    body = accepted.json()
    assert body["mediation_due"] == "2026-12-10" and body["result"]["on_time"] is True
    assert "complainant_phone" not in body
    again = c.post(f"{API}/work-orders/{order_id}/acceptance", json={"decision": "refused"}, headers=world.h("clerk"))
    assert again.status_code == 409
    with Session(world.engine) as session:
        messages = session.exec(select(ComplainantMessage).where(ComplainantMessage.work_order_id == order_id)).all()
        assert len(messages) == 1 and messages[0].to == "13800001111" and "决定受理" in messages[0].text
    doc = c.get(f"{API}/documents/{body['result']['document_id']}", headers=world.h("head")).json()
    lines = {line["label"]: line["value"] for line in doc["data"]["lines"]}
    assert lines["处理决定"] == "予以受理" and lines["调解期限"] == "2026-12-10"
    assert "陈某" not in str(doc["data"]) and "13800001111" not in str(doc["data"])  # no personal data

    monitor = SupervisionMonitor(world.engine)
    monitor.process_batch()
    early = c.post(f"{API}/work-orders/{order_id}/mediation", json={"outcome": "expired"}, headers=world.h("clerk"))
    assert early.status_code == 409 and early.json()["code"] == "mediation_running"
    ended = c.post(
        f"{API}/work-orders/{order_id}/mediation",
        json={"outcome": "agreed", "note": "退货退款"},
        headers=world.h("clerk"),
    )
    assert ended.status_code == 200 and ended.json()["mediation_outcome"] == "agreed"
    monitor.process_batch()
    # neither the acceptance clock nor the mediation clock is running: no supervision clue for them ever
    monitor.tick(dt.datetime(2027, 1, 30, tzinfo=BJ))
    assert _breached(world, "complaint_accept", "complaint_mediation") == {
        "complaint_accept": False,
        "complaint_mediation": False,
    }


def test_refusal_needs_a_statutory_ground(world: World, today: list[dt.date]) -> None:
    c = world.client
    order_id = _complaint(world, "2026-09-28T10:00:00+08:00", "12315-0928-3")["work_order_id"]
    bare = c.post(f"{API}/work-orders/{order_id}/acceptance", json={"decision": "refused"}, headers=world.h("clerk"))
    assert bare.status_code == 422 and bare.json()["code"] == "ground_required"
    assert "not_consumer_dispute" in bare.json()["grounds"]
    refused = c.post(
        f"{API}/work-orders/{order_id}/acceptance",
        json={"decision": "refused", "ground": "already_handled", "note": "已由区消费者协会调解"},
        headers=world.h("clerk"),
    )
    assert refused.status_code == 200, refused.text
    doc = c.get(f"{API}/documents/{refused.json()['result']['document_id']}", headers=world.h("head")).json()
    lines = {line["label"]: line["value"] for line in doc["data"]["lines"]}
    assert lines["处理决定"] == "不予受理" and "消费者协会" in lines["不予受理理由"]


def test_named_reporter_feedback_clock(world: World, today: list[dt.date]) -> None:
    c = world.client
    report = {
        "channel": "hotline_12315",
        "kind": "report",
        "received_at": "2026-09-21T10:00:00+08:00",
        "category": "drug_storage",
        "complainant_name": "林某",
        "complainant_phone": "13900002222",
        "respondent_name": "示例大药房有限公司",
        "respondent_uscc": USCC,
        "facts": "举报该药店将需冷藏的胰岛素常温存放",
    }
    got = c.post(f"{API}/clues/intake", json=report, headers=world.h("clerk")).json()
    case = c.post(f"{API}/clues/{got['clue']['id']}/dispatch", json={}, headers=world.h("clerk")).json()["case"]
    lead = next(n for n in ("insp1", "insp2", "insp3") if world.user_ids[n] == case["officers"][0])
    for who in (lead, "head"):
        c.post(f"{API}/cases/{case['id']}/opinions", json={"opinion": "建议立案"}, headers=world.h(who))
    today[0] = dt.date(2026, 9, 30)
    r = c.post(f"{API}/cases/{case['id']}/transitions", json={"action": "approve_opening"}, headers=world.h("head"))
    assert r.status_code == 200, r.text
    order = c.get(f"{API}/clues/work-orders/{got['work_order_id']}", headers=world.h("clerk")).json()
    assert order["feedback_due"] == "2026-10-13"
    monitor = SupervisionMonitor(world.engine)
    monitor.process_batch()
    today[0] = dt.date(2026, 10, 12)
    sent = c.post(
        f"{API}/work-orders/{got['work_order_id']}/feedback",
        json={"text": "你举报的事项已立案调查"},
        headers=world.h("clerk"),
    )
    assert sent.status_code == 200 and sent.json()["result"]["on_time"] is True
    monitor.process_batch()
    monitor.tick(dt.datetime(2026, 10, 20, tzinfo=BJ))
    assert _breached(world, "reporter_feedback") == {"reporter_feedback": False}
