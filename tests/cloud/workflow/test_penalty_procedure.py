"""The administrative penalty procedure enforced through the API, on the official 2026 calendar.

Expected dates are hand-computed from the law and the State Council's 2026 schedule (National Day 1–7 Oct off,
Sat 10 Oct a make-up working day; Mid-Autumn Fri 25 Sep off), not read from the rules files:

* 告知 served Wed 30 Sep; 陈述申辩/听证 5 working days: Oct 8, 9, 10 (Sat, make-up), 12, 13 → due Tue 13 Oct.
* 法制审核 submitted Fri 16 Oct; 10 working days: Oct 19–23, 26–30 → due Fri 30 Oct.
* 决定书 served Wed 21 Oct; fine due 15 days after: Thu 5 Nov. Paid Tue 10 Nov: 5 days late; 3 % of
  12,345.67 yuan per day × 5 = 1,851.8505 → 1,851.85 yuan (加处罚款, capped at the fine).
* decided Fri 16 Oct: published within 20 working days (Oct 19–23, 26–30, Nov 2–6, 9–13) → Fri 13 Nov.
* 查封扣押 from Mon 28 Sep: 30 days → Wed 28 Oct; +30 once → Fri 27 Nov. 先行登记保存 from Wed 30 Sep: decide
  within 7 working days: Oct 8, 9, 10, 12, 13, 14, 15 → Thu 15 Oct.

The clock is moved by replacing ``paperwork.today`` (time itself cannot be run forward here; this is the only
stand-in, everything else is the real app on SQLite).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from cloud.assessment.models import SupervisionClock
from cloud.assessment.monitor import SupervisionMonitor
from cloud.workflow import paperwork
from cloud.workflow.clues import ClueSource
from cloud.workflow.procedure import late_surcharge
from tests.utils.workflow_factories import USCC, World

API = "/api/v1"
BJ = ZoneInfo("Asia/Shanghai")


class Clock:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.day = dt.date(2026, 9, 21)
        monkeypatch.setattr(paperwork, "today", lambda: self.day)

    def set(self, iso: str) -> None:
        self.day = dt.date.fromisoformat(iso)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


def _open_case(world: World, lead_out: list[str]) -> int:
    c = world.client
    report = {
        "channel": "hotline_12315",
        "kind": "report",
        "anonymous": True,
        "received_at": "2026-09-18T10:00:00+08:00",
        "category": "drug_storage",
        "respondent_name": "示例大药房有限公司",
        "respondent_uscc": USCC,
        "facts": "举报该药店将需冷藏的胰岛素常温存放",
    }
    cid = c.post(f"{API}/clues/intake", json=report, headers=world.h("clerk")).json()["clue"]["id"]
    case = c.post(f"{API}/clues/{cid}/dispatch", json={}, headers=world.h("clerk")).json()["case"]
    lead = next(n for n in ("insp1", "insp2", "insp3") if world.user_ids[n] == case["officers"][0])
    lead_out.append(lead)
    for who in (lead, "head"):
        r = c.post(f"{API}/cases/{case['id']}/opinions", json={"opinion": "建议立案调查"}, headers=world.h(who))
        assert r.status_code == 201, r.text
    return int(case["id"])


def _act(world: World, case_id: int, who: str, action: str, status: int = 200, **body: Any) -> dict[str, Any]:
    r = world.client.post(f"{API}/cases/{case_id}/transitions", json={"action": action, **body}, headers=world.h(who))
    assert r.status_code == status, r.text
    return r.json()  # type: ignore[no-any-return]


def _clock(case: dict[str, Any], name: str) -> dict[str, Any]:
    return next(k for k in case["clocks"] if k["clock"] == name)  # type: ignore[no-any-return]


def _publication_clock(world: World, case_id: int) -> SupervisionClock:
    with Session(world.engine) as session:
        rows = session.exec(
            select(SupervisionClock).where(
                SupervisionClock.clock_id == "case_publication", SupervisionClock.target_id == str(case_id)
            )
        ).all()
        assert len(rows) == 1
        return rows[0]


def test_general_procedure_cannot_skip_a_step(world: World, clock: Clock) -> None:
    c = world.client
    leads: list[str] = []
    case_id = _open_case(world, leads)
    lead = leads[0]
    _act(world, case_id, "head", "approve_opening", opinion="同意立案")
    _act(world, case_id, lead, "start_investigation")

    # seizure and evidence preservation with their clocks
    clock.set("2026-09-28")
    seized = c.post(
        f"{API}/cases/{case_id}/measures",
        json={"kind": "seizure", "items": "胰岛素注射液 40 支"},
        headers=world.h(lead),
    )
    assert seized.status_code == 201, seized.text
    mid = seized.json()["measure"]["id"]
    assert seized.json()["measure"]["due"] == "2026-10-28"
    ext = c.post(f"{API}/cases/{case_id}/measures/{mid}/extensions", json={"reason": "待检验"}, headers=world.h("head"))
    assert ext.status_code == 200 and ext.json()["measure"]["due"] == "2026-11-27"
    again = c.post(f"{API}/cases/{case_id}/measures/{mid}/extensions", json={"reason": "再延"}, headers=world.h("head"))
    assert again.status_code == 409  # 30 days once only
    clock.set("2026-09-30")
    kept = c.post(
        f"{API}/cases/{case_id}/measures",
        json={"kind": "evidence_preservation", "items": "温度记录仪 1 台"},
        headers=world.h(lead),
    ).json()
    assert kept["measure"]["due"] == "2026-10-15"
    assert _clock(kept, f"measure:{kept['measure']['id']}")["due"] == "2026-10-15"

    # 告知 on Wed 30 Sep: the statement window runs across the National Day holiday
    notified = _act(
        world,
        case_id,
        lead,
        "notify",
        party_type="organisation",
        proposed_decision="没收违法药品，并处罚款 12345.67 元",
        proposed_amount="12345.67",
    )
    assert notified["statement_due"] == "2026-10-13"
    assert _clock(notified, "statement")["due"] == "2026-10-13"
    assert _clock(notified, "statement")["certainty"] == "official"
    assert any(d["kind"] == "penalty_notice" for d in notified["documents"])

    clock.set("2026-10-09")
    early = _act(world, case_id, lead, "submit_legal_review", status=409)
    assert early["code"] == "statement_window_open" and "2026-10-13" in early["detail"]
    no_review = _act(world, case_id, "chief", "decide", status=409, decision="罚款", penalty_amount="1")
    assert no_review["code"] == "legal_review_required" and "法制审核" in no_review["detail"]

    # hearing: request inside the window, notice ≥ 7 days before, record before legal review
    _act(world, case_id, lead, "request_hearing", reason="当事人书面申请听证")
    late_notice = c.post(
        f"{API}/cases/{case_id}/hearing/notice",
        json={"hearing_on": "2026-10-15", "place": "本局听证室", "host": "法制科 孙某", "notified_on": "2026-10-09"},
        headers=world.h("legal"),
    )
    assert late_notice.status_code == 422, late_notice.text
    no_record = _act(world, case_id, lead, "submit_legal_review", status=409)
    assert no_record["code"] == "hearing_notice_missing"
    notice = c.post(
        f"{API}/cases/{case_id}/hearing/notice",
        json={"hearing_on": "2026-10-16", "place": "本局听证室", "host": "法制科 孙某", "notified_on": "2026-10-09"},
        headers=world.h("legal"),
    )
    assert notice.status_code == 201, notice.text
    assert _act(world, case_id, lead, "submit_legal_review", status=409)["code"] == "hearing_record_missing"
    clock.set("2026-10-16")
    held = c.post(
        f"{API}/cases/{case_id}/hearing/record",
        json={"participants": ["孙某", "李四", "当事人代理人"], "summary": "当事人称冷藏柜故障，未提交维修记录"},
        headers=world.h("legal"),
    )
    assert held.status_code == 201, held.text

    review = _act(world, case_id, lead, "submit_legal_review")
    assert review["legal_review_due"] == "2026-10-30" and _clock(review, "legal_review")["due"] == "2026-10-30"
    assert _act(world, case_id, "chief", "decide", status=409, decision="罚款")["code"] == "legal_review_required"
    _act(world, case_id, "legal", "pass_review", status=422)  # the review opinion is mandatory
    _act(world, case_id, "legal", "pass_review", reason="事实清楚，证据确凿，程序合法，建议按告知内容处罚")
    needs = _act(world, case_id, "chief", "decide", status=409, decision="罚款", penalty_amount="12345.67")
    assert needs["code"] == "collective_discussion_required" and "听证" in needs["detail"]
    _act(
        world, case_id, "chief", "collective_discussion", status=422, reason="同意", participants=["周局长", "吴副局长"]
    )
    _act(
        world,
        case_id,
        "chief",
        "collective_discussion",
        reason="同意法制审核意见",
        participants=["周局长", "吴副局长", "郑副局长"],
    )
    decided = _act(
        world, case_id, "chief", "decide", decision="没收违法药品，并处罚款 12345.67 元", penalty_amount="12345.67"
    )
    assert decided["penalty_amount"] == "12345.67"
    bad_amount = _act(world, case_id, "chief", "decide", status=422, decision="x", penalty_amount="1.005")
    assert "penalty_amount" in str(bad_amount)
    monitor = SupervisionMonitor(world.engine)
    monitor.process_batch()

    clock.set("2026-10-21")
    served = _act(world, case_id, lead, "serve", method="direct", receiver="示例大药房有限公司 张三")
    assert served["payment_due"] == "2026-11-05" and _clock(served, "payment")["due"] == "2026-11-05"

    # the documents carry what was entered, by whom, with the amount in yuan and fen
    docs = {d["kind"]: d["id"] for d in served["documents"]}
    for kind in ("penalty_notice", "hearing_notice", "hearing_record", "legal_review", "collective_discussion"):
        assert kind in docs, kind
    decision_doc = c.get(f"{API}/documents/{docs['penalty_decision']}", headers=world.h("head")).json()["data"]
    lines = {line["label"]: line["value"] for line in decision_doc["lines"]}
    assert lines["罚没款金额（元）"] == "12345.67"
    assert lines["法制审核意见"].startswith("事实清楚，证据确凿，程序合法，建议按告知内容处罚（法制科孙科长")
    assert lines["集体讨论结论"].startswith("同意法制审核意见（吴副局长")

    # execution: paid 5 days late → 加处罚款 1851.85; the case cannot close until everything is paid
    clock.set("2026-11-10")
    pay = c.post(
        f"{API}/cases/{case_id}/payments",
        json={"amount": "12345.67", "paid_on": "2026-11-10", "receipt_no": "FS-0001"},
        headers=world.h(lead),
    )
    assert pay.status_code == 201, pay.text
    owed = pay.json()["amount_owed"]
    assert pay.json()["state"] == "served"
    assert owed["surcharge"] == "1851.85" and owed["outstanding"] == "1851.85" and owed["total"] == "14197.52"
    refused = _act(world, case_id, "head", "close", status=409)
    assert refused["code"] == "money_outstanding" and "1851.85" in refused["detail"]
    pay2 = c.post(
        f"{API}/cases/{case_id}/payments",
        json={"amount": "1851.85", "paid_on": "2026-11-10", "receipt_no": "FS-0002"},
        headers=world.h(lead),
    )
    assert pay2.json()["state"] == "paid" and pay2.json()["payments"][1]["amount"] == "1851.85"
    assert _act(world, case_id, "head", "close")["state"] == "closed"

    # publication: decided Fri 16 Oct → 20 working days (Oct 19–23, 26–30, Nov 2–6, 9–13) → Fri 13 Nov; still
    # unpublished then, the supervision monitor raises a 督办线索 just after; a late publication stops the clock
    monitor.process_batch()
    assert _publication_clock(world, case_id).due_at.astimezone(BJ).date() == dt.date(2026, 11, 13)
    monitor.tick(dt.datetime(2026, 11, 13, 23, 0, tzinfo=BJ))
    assert _publication_clock(world, case_id).breached_at is None
    monitor.tick(dt.datetime(2026, 11, 14, 0, 0, 1, tzinfo=BJ))
    breached = _publication_clock(world, case_id)
    assert breached.breached_at is not None and breached.supervision_clue_id is not None
    with Session(world.engine) as session:  # folded into the case's supervision clue as its own source
        source = session.exec(select(ClueSource).where(ClueSource.ref == f"clock:{breached.id}")).one()
        assert source.clue_id == breached.supervision_clue_id and "行政处罚信息公示" in source.summary
    clock.set("2026-11-16")
    late = c.post(
        f"{API}/cases/{case_id}/publications",
        json={"published_on": "2026-11-16", "content": "示例大药房有限公司未按规定储存药品，罚款 12345.67 元"},
        headers=world.h(lead),
    )
    assert late.status_code == 201, late.text
    monitor.process_batch()
    assert _publication_clock(world, case_id).stopped_at is not None

    # the database holds exact fen, not floats
    with Session(world.engine) as session:
        stored = session.execute(text("SELECT penalty_amount FROM enforcement_case WHERE id = :i"), {"i": case_id})
        assert stored.scalar_one() == 1234567
        paid = session.execute(text("SELECT sum(amount) FROM case_payment WHERE case_id = :i"), {"i": case_id})
        assert paid.scalar_one() == 1234567 + 185185


def test_statement_window_is_inclusive_of_its_last_day(world: World, clock: Clock) -> None:
    leads: list[str] = []
    case_id = _open_case(world, leads)
    lead = leads[0]
    _act(world, case_id, "head", "approve_opening")
    _act(world, case_id, lead, "start_investigation")
    clock.set("2026-09-30")
    _act(world, case_id, lead, "notify", party_type="individual", proposed_decision="警告")
    clock.set("2026-10-13")  # last day of the window: still open
    assert _act(world, case_id, lead, "submit_legal_review", status=409)["code"] == "statement_window_open"
    clock.set("2026-10-14")
    assert _act(world, case_id, lead, "request_hearing", status=409)["code"] == "window_closed"
    assert _act(world, case_id, lead, "submit_legal_review")["state"] == "legal_review"


def test_late_payment_surcharge_is_capped_at_the_fine() -> None:
    due = dt.date(2026, 11, 5)
    fine = Decimal("1000.00")
    assert late_surcharge(fine, due, due) == Decimal("0.00")
    assert late_surcharge(fine, due, due + dt.timedelta(days=1)) == Decimal("30.00")
    assert late_surcharge(fine, due, due + dt.timedelta(days=33)) == Decimal("990.00")
    assert late_surcharge(fine, due, due + dt.timedelta(days=34)) == Decimal("1000.00")  # 1020 capped
    assert late_surcharge(fine, due, due + dt.timedelta(days=400)) == Decimal("1000.00")


@pytest.mark.parametrize(
    ("party_type", "amount", "status"),
    [
        ("individual", "200", 201),
        ("individual", "200.01", 422),
        ("organisation", "3000.00", 201),
        ("organisation", "3000.01", 422),
        ("individual", None, 201),  # a warning
    ],
)
def test_on_the_spot_penalty_limits(world: World, party_type: str, amount: str | None, status: int) -> None:
    answer = world.on_the_spot_case(amount, party_type=party_type, status=status)
    if status == 201:
        case = answer
        assert case["state"] == "served" and case["procedure"] == "simplified"
        assert any(d["kind"] == "on_the_spot_decision" for d in case["documents"])
        if amount is None:
            assert _act(world, case["id"], "head", "close")["state"] == "closed"
    else:
        assert answer["code"] == "simplified_limit"


def test_publication_refuses_personal_data(world: World, clock: Clock) -> None:
    case_id = world.on_the_spot_case()["id"]
    bad = world.client.post(
        f"{API}/cases/{case_id}/publications",
        json={"published_on": "2026-09-22", "content": "当事人联系电话 13812345678"},
        headers=world.h("insp1"),
    )
    assert bad.status_code == 422 and bad.json()["code"] == "personal_data"
