"""End to end through the API: a drug-fridge alert becomes a clue, analysis sends it to inspection, a 12345 work
order folds into it, inspectors complete the checklist, a signed rectification order is generated, the outcome
closes the clue; a tampered PDF fails verification; a closed clue does not absorb a new alert."""

from __future__ import annotations

from protocols import AlertPhase
from tests.utils.workflow_factories import PNG, World, work_order

API = "/api/v1"


def test_alert_to_signed_rectification_order_closes_clue(world: World) -> None:
    c = world.client
    clue_id = world.alert()
    assert clue_id is not None
    clue = c.get(f"{API}/clues/{clue_id}", headers=world.h("head")).json()
    assert clue["state"] == "triaged" and clue["subject_id"] == world.subject_id
    assert clue["department_id"] == world.department_id and clue["site_id"] == "pharmacy-1"
    decision = clue["decision"]
    assert decision["disposal"] == "inspect"
    assert decision["facts"]["risk_grade"] == "C" and decision["explanation"].startswith("研判结论：现场检查")

    # a 12345 work order about the same subject (by USCC) folds into the open clue
    order = work_order()
    folded = c.post(f"{API}/clues/intake", json=order, headers=world.h("clerk"))
    assert folded.status_code == 201, folded.text
    assert folded.json()["folded"] and folded.json()["clue"]["id"] == clue_id
    assert folded.json()["clue"]["source_count"] == 2
    assert "13800001234" not in folded.json()["clue"]["title"]  # personal data stays in the work order

    # dispatch: two inspectors of the jurisdiction, checklist items from the alert category
    sent = c.post(f"{API}/clues/{clue_id}/dispatch", json={}, headers=world.h("clerk"))
    assert sent.status_code == 200, sent.text
    task = sent.json()["task"]
    assert sent.json()["clue"]["state"] == "dispatched"
    assert "DR-STO-01" in task["items"] and len(task["assignees"]) == 2
    lead = next(n for n in ("insp1", "insp2", "insp3") if world.user_ids[n] == task["assignees"][0])
    other = next(n for n in ("insp1", "insp2", "insp3") if world.user_ids[n] not in task["assignees"])
    tid = task["id"]

    def act(who: str, action: str, **body: object) -> dict[str, object]:
        resp = c.post(f"{API}/tasks/{tid}/transitions", json={"action": action, **body}, headers=world.h(who))
        assert resp.status_code == 200, resp.text
        return resp.json()  # type: ignore[no-any-return]

    # an inspector not on the task cannot accept it
    assert (
        c.post(f"{API}/tasks/{tid}/transitions", json={"action": "accept"}, headers=world.h(other)).status_code == 403
    )
    act(lead, "accept")
    assert c.get(f"{API}/clues/{clue_id}", headers=world.h("head")).json()["state"] == "in_execution"
    act(lead, "check_in", check_in={"lat": 31.3, "lon": 120.6, "note": "到达现场"})
    for code in task["items"]:
        outcome = "fail" if code == "DR-STO-01" else "pass"
        r = c.put(
            f"{API}/tasks/{tid}/results/{code}",
            json={"outcome": outcome, "note": "冷藏柜 12.0 ℃"},
            headers=world.h(lead),
        )
        assert r.status_code == 200, r.text
    photo = c.post(
        f"{API}/tasks/{tid}/results/DR-STO-01/photos",
        files={"file": ("p.png", PNG, "image/png")},
        headers=world.h(lead),
    )
    assert photo.status_code == 201, photo.text
    assert c.get(f"{API}/evidence/{photo.json()['sha256']}", headers=world.h("head")).content == PNG
    submitted = act(lead, "submit", findings="冷藏柜温度 12 ℃，超出 2–8 ℃")
    assert submitted["state"] == "submitted" and submitted["conclusion"] == "rectify"
    kinds = {d["kind"]: d for d in submitted["documents"]}
    assert set(kinds) == {"inspection_record", "rectification_order"}

    # the rectification order is a signed PDF; a changed copy fails verification
    doc_id = kinds["rectification_order"]["id"]
    doc = c.get(f"{API}/documents/{doc_id}", headers=world.h("head")).json()
    assert doc["signatures"][0]["signer"]["user_id"] == lead and doc["doc_no"].endswith("号")
    pdf = c.get(f"{API}/documents/{doc_id}/pdf", headers=world.h("head")).content
    assert pdf.startswith(b"%PDF")
    ok = c.post(f"{API}/documents/{doc_id}/verify", files={"file": ("o.pdf", pdf)}, headers=world.h("head")).json()
    assert ok["valid"] and ok["signatures"][0]["valid"]
    tampered = pdf.replace(b"/Producer", b"/Produces", 1) if b"/Producer" in pdf else pdf[:-10] + b"0" * 10
    assert tampered != pdf
    bad = c.post(
        f"{API}/documents/{doc_id}/verify", files={"file": ("o.pdf", tampered)}, headers=world.h("head")
    ).json()
    assert not bad["valid"] and bad["signatures"][0]["reason"] == "hash_mismatch"
    assert b"PUBLIC KEY" in c.get(f"{API}/documents/public-key", headers=world.h("head")).content

    # the head closes the task: the rectification order is owed a 复查 (follow-up inspection) once its deadline
    # arrives; until then the clue stays in execution and cannot be closed (rule clue_closing_obligations)
    act("head", "close")
    pending = c.get(f"{API}/clues/{clue_id}", headers=world.h("head")).json()
    assert pending["state"] == "in_execution" and [t["id"] for t in pending["tasks"]] == [tid]
    deadline = doc["data"]["deadline"]
    assert pending["follow_ups"][0]["state"] == "pending" and pending["follow_ups"][0]["deadline"] == deadline
    assert deadline in pending["closing_obligations"][0] and "改正期限" in pending["closing_obligations"][0]
    refused = c.post(
        f"{API}/clues/{clue_id}/transitions", json={"action": "close", "reason": "已整改"}, headers=world.h("clerk")
    )
    assert refused.status_code == 409 and refused.json()["code"] == "closing_obligation"
    assert refused.json()["rule"] == "clue_closing_obligations" and not refused.json()["can_override"]
    assert "不能办结" in refused.json()["detail"] and "须由承办机构负责人填写理由批准" in refused.json()["detail"]

    # the deadline scheduler (lease follow_up): nothing before the deadline, the 复查 on the deadline, exactly once,
    # for the same officers (workflow.toml follow_up_officers = same), of the failed item, due 5 working days later
    import datetime as dt

    from cloud.workflow.deadlines import compute_deadline
    from cloud.workflow.follow_up import run_due

    due_day = dt.date.fromisoformat(deadline)
    at = dt.datetime.combine(due_day, dt.time(8, 0), tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert run_due(world.engine, now=at - dt.timedelta(days=1)) == []
    made = run_due(world.engine, now=at)
    assert len(made) == 1 and run_due(world.engine, now=at + dt.timedelta(days=2)) == []
    pending = c.get(f"{API}/clues/{clue_id}", headers=world.h("head")).json()
    follow = next(t for t in pending["tasks"] if t["id"] != tid)
    assert follow["id"] == made[0] and follow["method"] == "复查" and follow["items"] == ["DR-STO-01"]
    assert sorted(follow["assignees"]) == sorted(task["assignees"])
    # 5 working days after the deadline, as the rules file says [deadlines.follow_up_inspection]
    assert follow["due_date"] == compute_deadline("follow_up_inspection", due_day).due.isoformat()
    assert pending["follow_ups"][0]["state"] == "scheduled" and "复查" in pending["closing_obligations"][0]
    tid = follow["id"]
    act(lead, "accept")
    act(lead, "check_in", check_in={"lat": 31.3, "lon": 120.6, "note": "复查"})
    r = c.put(
        f"{API}/tasks/{tid}/results/DR-STO-01", json={"outcome": "pass", "note": "已整改，2–8 ℃"}, headers=world.h(lead)
    )
    assert r.status_code == 200, r.text
    assert act(lead, "submit", findings="已整改")["conclusion"] == "compliant"
    act("head", "close")
    closed = c.get(f"{API}/clues/{clue_id}", headers=world.h("head")).json()
    assert closed["state"] == "closed" and closed["status"] == "closed"
    # the result keeps the inspection's order and says the 复查 confirmed it (not "检查未发现问题" alone)
    assert "已责令限期改正（责令改正通知书" in closed["result"] and "经复查已按要求改正" in closed["result"]
    assert "检查未发现问题" not in closed["result"]

    timeline = c.get(f"{API}/clues/{clue_id}/timeline", headers=world.h("head")).json()
    actions = [e["action"] for e in timeline]
    for expected in (
        "clue.created",
        "clue.analysed",
        "work_order.received",
        "clue.folded",
        "task.created",
        "task.result_recorded",
        "task.photo_added",
        "document.generated",
        "document.signed",
        "clue.outcome",
        "task.follow_up_owed",
        "task.follow_up_scheduled",
    ):
        assert expected in actions, expected
    # actors as people read them: real names, 系统 for the system (no login names)
    names = {e["actor"]: e["actor_name"] for e in timeline}
    assert names["system"] == "系统" and names[lead] == {"insp1": "李四", "insp2": "王五", "insp3": "赵六"}[lead]
    closes = [e for e in timeline if e["action"] == "clue.transition" and e["payload"]["to"] == "closed"]
    assert len(closes) == 1 and closes[0]["actor"] == "system"
    assert [e["id"] for e in timeline] == sorted(e["id"] for e in timeline)

    # a closed clue never absorbs: the same alert raised again starts a new clue
    world.alert(AlertPhase.CLEAR)
    new_id = world.alert()
    assert new_id is not None and new_id != clue_id
    assert c.get(f"{API}/clues/{clue_id}", headers=world.h("head")).json()["source_count"] == 2
    again = c.get(f"{API}/clues/{new_id}", headers=world.h("head")).json()
    assert again["decision"]["facts"]["repeats_90d"] == 1


def test_complaint_mandatory_fields_and_bulk_import(world: World) -> None:
    from pathlib import Path

    c = world.client
    missing = c.post(
        f"{API}/clues/intake",
        json={
            "channel": "hotline_12315",
            "kind": "complaint",
            "complainant_name": "张某",
            "respondent_name": "某店",
            "request": "退款",
            "facts": "商品过期",
        },
        headers=world.h("clerk"),
    )
    assert missing.status_code == 422
    body = missing.json()
    assert body["code"] == "missing_fields"
    assert set(body["fields"]) == {"complainant_phone", "complainant_address", "respondent_address"}
    assert "投诉人电话" in body["detail"]
    bad_phone = c.post(
        f"{API}/clues/intake", json={"channel": "hotline_12315", "complainant_phone": "abc"}, headers=world.h("clerk")
    )
    assert bad_phone.status_code == 422 and "电话" in bad_phone.text
    assert c.post(f"{API}/clues/intake", json={"channel": "hotline_12315"}, headers=world.h("insp1")).status_code == 403

    sample = Path(__file__).parents[3] / "firmware-config" / "samples" / "work_orders_12345.csv"
    files = {"file": (sample.name, sample.read_bytes(), "text/csv")}
    report = c.post(f"{API}/clues/intake/import", files=files, headers=world.h("clerk")).json()
    assert report["received"] == 3 and report["accepted"] == 2
    assert report["errors"][0]["line"] == 4 and "complainant_phone" in report["errors"][0]["fields"]
    again = c.post(f"{API}/clues/intake/import", files=files, headers=world.h("clerk")).json()
    assert again["accepted"] == 0 and again["duplicates"] == 2
    orders = report["work_order_ids"]
    first = c.get(f"{API}/clues/work-orders/{orders[0]}", headers=world.h("clerk")).json()
    assert first["subject_id"] == world.subject_id and first["subject_match"] == "name"
    assert first["accept_due"] == "2026-12-01"  # 7 working days after Fri 20 Nov 2026
    anonymous = c.get(f"{API}/clues/work-orders/{orders[1]}", headers=world.h("clerk")).json()
    assert anonymous["anonymous"] and anonymous["complainant_phone"] is None
    clue = c.get(f"{API}/clues/{anonymous['clue_id']}", headers=world.h("head")).json()
    assert clue["kind"] == "report" and clue["decision"]["disposal"] == "open_case"
