"""Complaints at the kiosk and their progress lookup: a receipt number plus a verification code shown once; the
answer names the stage and the due date (预计 when the calendar year is provisional) and carries no personal data;
wrong codes count and lock the receipt; the stage follows the acceptance decision."""

from __future__ import annotations

import json

import pytest

from cloud.workflow.progress import MAX_FAILURES
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
    r = world.client.post(f"{KIOSK}/complaints", json=COMPLAINT, headers={"X-Kiosk-Id": terminal})
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def _lookup(world: World, receipt: object, code: object, terminal: str = "hall-9") -> object:
    return world.client.post(
        f"{KIOSK}/progress", json={"receipt_no": receipt, "code": code}, headers={"X-Kiosk-Id": terminal}
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
    clue = world.client.get(f"{API}/clues/{receipt['clue_id']}", headers=world.h("head")).json()
    order_id = next(s["work_order_id"] for s in clue["sources"] if s["work_order_id"])
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
