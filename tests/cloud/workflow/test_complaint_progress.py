"""Complaints at the kiosk and their progress lookup: a receipt number plus a verification code shown once; the
answer names the stage and the due date (预计 when the calendar year is provisional) and carries no personal data;
wrong codes count and lock the receipt; the stage follows the acceptance decision."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from cloud.core.db import utcnow
from cloud.workflow.models import WorkOrder
from cloud.workflow.progress import MAX_FAILURES, ReceiptLookupGuard
from tests.utils.kiosk_terminals import terminal_headers
from tests.utils.workflow_factories import World

API = "/api/v1"
KIOSK = f"{API}/console/kiosk"
COMPLAINT = {
    "kind": "complaint",
    "category": "food",
    "complainant_name": "张某某",
    "complainant_phone": "13800001234",
    "complainant_address": "苏州市姑苏区道前街 1 号",
    "respondent_name": "好味道餐馆",
    "respondent_address": "苏州市姑苏区观前街 8 号",
    "request": "要求退款",
    "facts": "11 月 25 日晚在该店就餐，菜品变质有异味",
}


@pytest.fixture(scope="module")
def world(module_world: World) -> World:
    return module_world


def _submit(world: World, terminal: str) -> dict[str, object]:
    r = world.client.post(f"{KIOSK}/complaints", json=COMPLAINT, headers=terminal_headers(world.engine, terminal))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def _lookup(world: World, receipt: object, code: object, terminal: str = "hall-9") -> object:
    return world.client.post(
        f"{KIOSK}/progress",
        json={"receipt_no": receipt, "code": code},
        headers=terminal_headers(world.engine, terminal),
    )


def test_progress_by_receipt_and_code_without_personal_data(world: World) -> None:
    receipt = _submit(world, "hall-1")
    code = receipt["verify_code"]
    assert isinstance(code, str) and len(code) == 6 and code.isdigit()
    r = _lookup(world, receipt["receipt_no"], code)
    assert r.status_code == 200, r.text  # type: ignore[attr-defined]
    view = r.json()  # type: ignore[attr-defined]
    assert view["stage"] == "已收到，待决定是否受理" and view["kind_label"] == "投诉"
    assert view["category_label"] == "食品安全"
    assert view["due"]["date"] == receipt["accept_due"]
    certain = receipt["accept_due_certainty"] == "official"
    assert view["due"]["label"].startswith("预计 ") is (not certain) and view["due"]["label"].endswith("决定是否受理")
    text = json.dumps(view, ensure_ascii=False)
    for personal in ("张某", "138", "道前街", "好味道", "观前街", "变质", "退款"):
        assert personal not in text, personal

    # the clerk accepts it: the stage follows
    assert "clue_id" not in receipt  # the public answer carries no internal id
    with Session(world.engine) as session:
        order = session.exec(select(WorkOrder).where(WorkOrder.external_no == receipt["receipt_no"])).one()
        order_id = order.id
    accepted = world.client.post(
        f"{API}/work-orders/{order_id}/acceptance", json={"decision": "accepted"}, headers=world.h("clerk")
    )
    assert accepted.status_code == 200, accepted.text
    later = _lookup(world, receipt["receipt_no"], code).json()  # type: ignore[attr-defined]
    assert later["stage"] == "已受理，正在调解处理" and later["due"]["label"].endswith("完成调解")


def test_wrong_codes_are_refused_alike_and_lock_the_receipt(world: World) -> None:
    receipt = _submit(world, "hall-2")
    wrong = "000000" if receipt["verify_code"] != "000000" else "111111"
    unknown = _lookup(world, "ZZ20260101000000", wrong, "hall-3")
    assert unknown.status_code == 404  # type: ignore[attr-defined]
    first = _lookup(world, receipt["receipt_no"], wrong, "hall-3")
    assert first.status_code == 404 and first.json()["detail"] == unknown.json()["detail"]  # type: ignore[attr-defined]
    for _ in range(MAX_FAILURES - 1):
        _lookup(world, receipt["receipt_no"], wrong, "hall-4")
    locked = _lookup(world, receipt["receipt_no"], receipt["verify_code"], "hall-5")
    assert locked.status_code == 423 and "受理窗口" in locked.json()["detail"]  # type: ignore[attr-defined]
    bad = _lookup(world, receipt["receipt_no"], "12ab56", "hall-5")
    assert bad.status_code == 422  # type: ignore[attr-defined]


def test_an_unknown_receipt_number_answers_exactly_like_a_real_one(world: World) -> None:
    """Stranger walk: a real receipt locked after 5 wrong codes while an unknown number answered 404 for ever,
    so anyone could tell which receipt numbers exist. Both now count and lock alike; the lock ends after a day."""
    real = _submit(world, "hall-6")
    wrong = "000000" if real["verify_code"] != "000000" else "111111"
    answers: dict[str, list[tuple[int, str]]] = {}
    for number in (str(real["receipt_no"]), "ZZ20261201999999"):
        replies = [_lookup(world, number, wrong, "hall-7") for _ in range(MAX_FAILURES + 1)]
        answers[number] = [(r.status_code, r.json()["detail"]) for r in replies]  # type: ignore[attr-defined]
    first, second = answers.values()
    assert first == second
    assert first[-1][0] == 423 and first[-2][0] == 404  # the 5th wrong code locks, the 6th is told so
    # a day later the number may be tried again, and the right code opens it
    with Session(world.engine, expire_on_commit=False) as session:
        guard = session.get(ReceiptLookupGuard, real["receipt_no"])
        assert guard is not None and guard.locked_until is not None
        guard.locked_until = utcnow() - timedelta(seconds=1)
        session.add(guard)
        session.commit()
    assert _lookup(world, real["receipt_no"], real["verify_code"]).status_code == 200  # type: ignore[attr-defined]


def test_clue_shows_structured_facts_masked_contact_and_similar_open_clues(world: World) -> None:
    from tests.utils.workflow_factories import USCC

    c = world.client
    alert_clue = world.alert()
    order = {
        **COMPLAINT,
        "channel": "hotline_12315",
        "external_no": "12315-FACTS-1",
        "category": "drug_storage",
        "respondent_name": "示例大药房有限公司",
        "respondent_uscc": USCC,
        "incident_at": "2026-11-28T15:30:00+08:00",
        "incident_place": "人民路店冷藏柜",
        "goods": "胰岛素注射液",
        "amount": "128.50",
    }
    made = c.post(f"{API}/clues/intake", json=order, headers=world.h("clerk"))
    assert made.status_code == 201, made.text
    clue_id = made.json()["clue"]["id"]
    clue = c.get(f"{API}/clues/{clue_id}", headers=world.h("head")).json()
    wo = clue["work_orders"][0]
    assert (wo["incident_place"], wo["goods"], wo["amount"]) == ("人民路店冷藏柜", "胰岛素注射液", "128.50")
    assert wo["incident_at"].startswith("2026-11-28T07:30") and wo["request"] == "要求退款"
    assert wo["complainant_phone"] == "138****1234" and "13800001234" not in json.dumps(clue)
    # same subject + same matter within the grouping window: folded into the open alert clue (grouping.toml)
    assert clue_id == alert_clue
    # another matter of the same subject is not folded, but suggested on both clues (to link or merge)
    other = c.post(
        f"{API}/clues",
        json={
            "kind": "walk_in",
            "channel": "walk_in",
            "category": "food",
            "severity": "minor",
            "title": "来访反映该店销售过期食品",
            "subject_id": world.subject_id,
        },
        headers=world.h("clerk"),
    )
    assert other.status_code == 201, other.text
    other_id = other.json()["clue"]["id"]
    assert other_id != alert_clue
    seen = c.get(f"{API}/clues/{other_id}", headers=world.h("head")).json()["similar"]
    hit = next(s for s in seen if s["id"] == alert_clue)
    assert hit["why"] == "同一市场主体" and not hit["same_matter"] and hit["state_label"]

    # unmasking needs the duty and a reason, and is journaled on the clue's timeline
    assert c.get(f"{API}/pii/work-orders/{wo['id']}?reason=回访", headers=world.h("insp1")).status_code == 403
    plain = c.get(f"{API}/pii/work-orders/{wo['id']}?reason=回访投诉人", headers=world.h("head"))
    assert plain.status_code == 200 and plain.json()["complainant_phone"] == "13800001234"
    timeline = c.get(f"{API}/clues/{clue_id}/timeline", headers=world.h("head")).json()
    assert any(e["action"] == "pii.revealed" and e["payload"]["reason"] == "回访投诉人" for e in timeline)


def test_an_unmatched_report_is_linked_to_the_registered_subject_and_meets_its_open_clue(world: World) -> None:
    c = world.client
    alert_clue = world.alert()
    report = {
        "channel": "hotline_12345",
        "kind": "report",
        "anonymous": True,
        "category": "drug_storage",
        "respondent_name": "人民路那家大药房",
        "facts": "冷藏柜里的药放在常温货架上",
    }
    made = c.post(f"{API}/clues/intake", json=report, headers=world.h("clerk"))
    assert made.status_code == 201, made.text
    clue_id = made.json()["clue"]["id"]
    assert clue_id != alert_clue and made.json()["clue"]["subject_id"] is None
    url = f"{API}/clues/{clue_id}/subject"
    body = {"subject_id": world.subject_id, "reason": "被举报人即示例大药房人民路店"}
    assert c.post(url, json=body, headers=world.h("insp1")).status_code in (403, 404)  # no duty (or out of scope)
    linked = c.post(url, json=body, headers=world.h("clerk"))
    assert linked.status_code == 200, linked.text
    assert linked.json()["subject_id"] == world.subject_id and linked.json()["department_id"] == world.department_id
    clue = c.get(f"{API}/clues/{clue_id}", headers=world.h("head")).json()
    hit = next(s for s in clue["similar"] if s["id"] == alert_clue)
    assert hit["same_matter"] and hit["why"] == "同一市场主体、同一事项"
    as_clerk = c.get(f"{API}/clues/{clue_id}", headers=world.h("clerk")).json()
    assert "merge" in as_clerk["allowed_actions"]  # the console offers the clerk 并入该线索
    timeline = c.get(f"{API}/clues/{clue_id}/timeline", headers=world.h("head")).json()
    assert any(e["action"] == "clue.subject_linked" and e["payload"]["reason"] == body["reason"] for e in timeline)
