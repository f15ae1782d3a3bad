"""The console's API side without a browser: pages and static files are served, the charts' absence is
reported in Chinese, labels are public, the kiosk intake validates, limits size and rate, the overview counts
by domain, the deadlines carry remaining working days."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient

from cloud.api.routes.console import RateLimiter, domain_of, receipt_number
from cloud.web import mount_console, vendor_status
from tests.utils.kiosk_terminals import terminal_headers
from tests.utils.workflow_factories import World

API = "/api/v1"


def test_pages_and_static_files_are_served(world: World) -> None:
    c = world.client
    for path, marker in (("/", "console.js"), ("/m/", "mobile.js"), ("/screen/", "screen.js"), ("/kiosk/", "kiosk.js")):
        r = c.get(path)
        assert r.status_code == 200 and marker in r.text and 'lang="zh-CN"' in r.text
    assert c.get("/m", follow_redirects=False).headers["location"] == "/m/"
    assert "export async function api" in c.get("/static/js/api.js").text
    assert c.get("/vendor/status.json").json()["charts"] in (True, False)


def test_missing_npm_assets_say_how_to_enable_charts(tmp_path: Path) -> None:
    status = vendor_status(tmp_path / "no-vendor")
    assert status["charts"] is False and "npm ci" in str(status["hint"])
    app = FastAPI()
    mount_console(app, vendor=tmp_path / "no-vendor")
    with TestClient(app) as c:
        assert c.get("/vendor/status.json").json()["charts"] is False
        missing = c.get("/vendor/echarts.min.js")
        assert missing.status_code == 404 and "npm ci" in missing.text
        assert c.get("/").status_code == 200  # the console itself still works


def test_labels_are_public_and_in_chinese(world: World) -> None:
    labels = world.client.get(f"{API}/console/labels").json()
    assert labels["domains"] == {"food": "食品", "drug": "药品", "special_equipment": "特种设备"}
    assert labels["categories"]["drug_storage"] == "药品储存"
    assert any(i["code"] == "DR-STO-01" for i in labels["checklist"])
    assert labels["states"]["clue"]["dispatched"]


def test_domain_of_categories() -> None:
    assert domain_of("drug_storage") == "drug" and domain_of("food_cold_chain") == "food"
    assert domain_of("elevator") == "special_equipment" and domain_of("power", "drug") == "drug"
    assert domain_of("consumer_dispute") is None


def test_kiosk_intake_validates_and_limits(world: World) -> None:
    c = world.client
    url = f"{API}/console/kiosk/complaints"
    bad = c.post(url, json={"kind": "complaint", "respondent_name": "某店", "facts": "商品过期变质"})
    assert bad.status_code == 422 and bad.json()["code"] == "missing_fields"
    assert "complainant_phone" in bad.json()["fields"]
    phone = c.post(url, json={"respondent_name": "某店", "facts": "商品过期变质", "complainant_phone": "abc"})
    assert phone.status_code == 422 and "complainant_phone" in phone.json()["fields"]
    assert (
        c.post(url, content=b"{" + b" " * 20_000 + b"}", headers={"content-type": "application/json"}).status_code
        == 413
    )
    ok = c.post(
        url,
        json={
            "kind": "complaint",
            "category": "food",
            "complainant_name": "张某",
            "complainant_phone": "13800001234",
            "complainant_address": "苏州市道前街 1 号",
            "respondent_name": "好味道餐馆",
            "respondent_address": "观前街 8 号",
            "request": "退款",
            "facts": "菜品变质有异味",
        },
        headers=terminal_headers(world.engine, "大厅 1 号机"),
    )
    assert ok.status_code == 201, ok.text
    body = ok.json()
    assert body["receipt_no"].startswith("ZZ") and body["accept_due"]
    clues = c.get(f"{API}/clues?kind=complaint", headers=world.h("head")).json()["data"]
    clue = next(x for x in clues if "好味道餐馆" in x["title"])
    assert clue["channel"] == "walk_in" and clue["kind"] == "complaint" and "13800001234" not in clue["title"]


def test_the_kiosk_answer_names_no_internal_record(world: World) -> None:
    """The terminal is public: its answer is the receipt (number, code, due date), never an internal id. It used
    to carry ``clue_id``, so two anonymous reports about one business got the same number back and the second
    reporter learnt that somebody had already reported it (and how many clues the bureau holds)."""
    url = f"{API}/console/kiosk/complaints"
    report = {"kind": "report", "anonymous": True, "respondent_name": "同一家药店", "facts": "冷藏药品放在常温货架上"}
    answers = [
        world.client.post(url, json=report, headers=terminal_headers(world.engine, f"大厅 {n} 号机")) for n in (7, 8)
    ]
    assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
    for answer in answers:
        body = answer.json()
        assert not [key for key in body if key == "id" or key.endswith("_id")], body
        assert body["receipt_no"].startswith("ZZ") and len(body["verify_code"]) == 6
    assert answers[0].json()["receipt_no"] != answers[1].json()["receipt_no"]


def test_rate_limiter_per_terminal_and_global() -> None:
    limiter = RateLimiter(per_key=2, total=3, window_s=60)
    assert limiter.allow("a", 0) == 0 and limiter.allow("a", 1) == 0
    assert limiter.allow("a", 2) > 0  # third from the same terminal
    assert limiter.allow("b", 3) == 0
    assert limiter.allow("c", 4) > 0  # global bound
    assert limiter.allow("a", 61) == 0  # window passed


def test_receipt_number_is_beijing_dated() -> None:
    from datetime import UTC, datetime

    assert receipt_number(datetime(2026, 11, 26, 17, 0, tzinfo=UTC)).startswith("ZZ20261127")


def test_overview_and_deadlines(world: World) -> None:
    c = world.client
    clue_id = world.alert()
    sent = c.post(f"{API}/clues/{clue_id}/dispatch", json={}, headers=world.h("clerk"))
    assert sent.status_code == 200, sent.text
    overview = c.get(f"{API}/console/overview", headers=world.h("head")).json()
    assert overview["domains"]["drug"]["open_alerts"] == 1 and overview["domains"]["drug"]["open_clues"] == 1
    assert overview["domains"]["food"]["open_alerts"] == 0 and sum(overview["trend"]["series"]["drug"]["data"]) == 1
    assert overview["recent_alerts"][0]["domain"] == "drug" and overview["journal_id"] > 0
    rows = c.get(f"{API}/console/deadlines", headers=world.h("head")).json()
    assert rows[0]["kind"] == "task" and isinstance(rows[0]["remaining_working_days"], int)
    lead = sent.json()["task"]["assignees"][0]
    name = next(n for n, uid in world.user_ids.items() if uid == lead)
    assert len(c.get(f"{API}/console/deadlines?mine=true", headers=world.h(name)).json()) == 1
    assert c.get(f"{API}/console/deadlines?mine=true", headers=world.h("head")).json() == []
    ctx = c.get(f"{API}/console/clues/{clue_id}/context", headers=world.h("head")).json()
    assert ctx["domain"] == "drug" and ctx["window"]["sensor_id"] == "t1" and ctx["window"]["limit"] == 8.0
    assert c.get(f"{API}/console/overview").status_code == 401
    assert c.get(f"{API}/console/live").status_code == 401


def test_dispatch_candidates_name_people_with_workload_and_recusal(world: World) -> None:
    c = world.client
    clue_id = world.alert()
    r = c.post(
        f"{API}/recusals",
        json={"user_id": world.user_ids["insp3"], "subject_id": world.subject_id, "reason": "亲属在该企业任职"},
        headers=world.h("head"),
    )
    assert r.status_code == 201, r.text
    cand = c.get(f"{API}/console/clues/{clue_id}/candidates", headers=world.h("clerk")).json()
    by_name = {p["name"]: p for p in cand["candidates"]}
    assert set(by_name) == {"李四", "王五", "赵六"}  # never the system administrator
    assert by_name["赵六"]["recused"] and by_name["赵六"]["recusal_reason"] == "亲属在该企业任职"
    assert not by_name["赵六"]["suggested"]
    assert by_name["李四"]["suggested"] and by_name["王五"]["suggested"] and cand["needed"] == 2
    assert by_name["李四"]["department"] == "姑苏区市场监督管理局第一市场监督管理所"
    assert cand["default_disposal"] == "inspect" and cand["dispositions"] == ["inspect", "open_case"]
    sent = c.post(
        f"{API}/clues/{clue_id}/dispatch",
        json={"disposal": "inspect", "assignees": [world.user_ids["insp2"], world.user_ids["insp1"]]},
        headers=world.h("clerk"),
    )
    assert sent.status_code == 200, sent.text
    assert sent.json()["task"]["assignee_names"] == ["王五", "李四"]
    clue = c.get(f"{API}/clues/{clue_id}", headers=world.h("head")).json()
    assert clue["tasks"][0]["assignee_names"] == ["王五", "李四"]
    cand = c.get(f"{API}/console/clues/{clue_id}/candidates", headers=world.h("clerk")).json()
    assert {p["name"]: p["open_workload"] for p in cand["candidates"]}["李四"] == 1
