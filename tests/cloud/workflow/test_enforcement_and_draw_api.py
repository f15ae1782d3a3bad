"""A report opens a case whose verification deadline crosses the 2026 Spring Festival with its make-up working
days; the case runs through approval (signed 立案审批表), investigation, legal review, decision, payment,
publication and closure, and closes the clue. The random draw is reproducible from its seed, never picks a
recused inspector, freezes its list and exports its results."""

from __future__ import annotations

import csv
import io

from cloud.workflow.deadlines import compute_deadline
from cloud.workflow.paperwork import today
from tests.utils.workflow_factories import USCC, World

API = "/api/v1"


def test_report_opens_case_with_spring_festival_deadline(world: World) -> None:
    c = world.client
    # insp3 is related to the subject: recused
    rec = c.post(
        f"{API}/recusals",
        json={"user_id": world.user_ids["insp3"], "subject_id": world.subject_id, "reason": "近亲属在该企业任职"},
        headers=world.h("head"),
    )
    assert rec.status_code == 201, rec.text
    report = {
        "channel": "hotline_12315",
        "kind": "report",
        "external_no": "12315-2026-0212",
        "anonymous": True,
        "received_at": "2026-02-12T10:00:00+08:00",
        "category": "drug_storage",
        "respondent_name": "示例大药房有限公司",
        "respondent_uscc": USCC,
        "facts": "举报该药店将需冷藏的胰岛素常温存放",
    }
    resp = c.post(f"{API}/clues/intake", json=report, headers=world.h("clerk"))
    assert resp.status_code == 201, resp.text
    cid = resp.json()["clue"]["id"]
    clue = c.get(f"{API}/clues/{cid}", headers=world.h("head")).json()
    assert clue["decision"]["disposal"] == "open_case" and clue["decision"]["deadline_id"] == "report_verify"

    sent = c.post(f"{API}/clues/{cid}/dispatch", json={}, headers=world.h("clerk"))
    assert sent.status_code == 200, sent.text
    case = sent.json()["case"]
    # Thu 12 Feb 2026 + 15 working days: Sat 14 Feb and Sat 28 Feb are make-up days, 16–23 Feb is the holiday
    assert case["verify_due"] == "2026-03-11"
    verify = next(k for k in case["clocks"] if k["clock"] == "verify")
    assert verify["due"] == "2026-03-11" and verify["warnings"] == []
    officers = case["officers"]
    assert len(officers) == 2 and world.user_ids["insp3"] not in officers
    lead = next(n for n in ("insp1", "insp2") if world.user_ids[n] == officers[0])
    case_id = case["id"]

    def act(who: str, action: str, **body: object) -> dict[str, object]:
        r = c.post(f"{API}/cases/{case_id}/transitions", json={"action": action, **body}, headers=world.h(who))
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    # online approval: only the bureau head may open the case
    assert (
        c.post(
            f"{API}/cases/{case_id}/transitions", json={"action": "approve_opening"}, headers=world.h(lead)
        ).status_code
        == 403
    )
    # the approval form needs the opinions of a handler and of the department head, entered by them
    early = c.post(f"{API}/cases/{case_id}/transitions", json={"action": "approve_opening"}, headers=world.h("head"))
    assert early.status_code == 409 and early.json()["code"] == "opinion_missing"
    for who, text in ((lead, "建议立案调查：冷藏药品常温存放"), ("head", "同意承办人意见")):
        r = c.post(f"{API}/cases/{case_id}/opinions", json={"opinion": text}, headers=world.h(who))
        assert r.status_code == 201, r.text
    opened = act("head", "approve_opening", opinion="同意立案", legal_basis=["《药品管理法》第一百二十六条"])
    assert opened["state"] == "approved"
    assert opened["decision_due"] == compute_deadline("case_decision", today()).due.isoformat()
    approval = next(d for d in opened["documents"] if d["kind"] == "case_approval")
    signed = c.get(f"{API}/documents/{approval['id']}", headers=world.h("head")).json()
    assert signed["signatures"][0]["signer"]["user_id"] == "head"
    form = signed["data"]
    lead_name = {"insp1": "李四", "insp2": "王五"}[lead]
    assert form["handler_opinion"].startswith("建议立案调查：冷藏药品常温存放（" + lead_name)
    assert form["department_opinion"].startswith("同意承办人意见（周局长")
    assert form["head_opinion"].startswith("同意立案（周局长")
    assert c.get(f"{API}/clues/{cid}", headers=world.h("head")).json()["state"] == "in_execution"
    ext = c.post(
        f"{API}/cases/{case_id}/extensions", json={"clock": "decision", "reason": "需补充检验"}, headers=world.h("head")
    ).json()
    decision_clock = next(k for k in ext["clocks"] if k["clock"] == "decision")
    assert decision_clock["extension_days"] == 30 and decision_clock["total_days"] == 120

    act(lead, "start_investigation")
    act(lead, "notify", party_type="organisation", proposed_decision="警告，并处罚款 5000 元", proposed_amount="5000")
    # the party waives in writing: the case may go on before the window ends
    waive = c.post(
        f"{API}/cases/{case_id}/statements",
        json={"kind": "waiver", "content": "当事人书面放弃陈述、申辩和听证"},
        headers=world.h(lead),
    )
    assert waive.status_code == 201, waive.text
    act(lead, "submit_legal_review")
    back = c.post(
        f"{API}/cases/{case_id}/transitions", json={"action": "return_for_investigation"}, headers=world.h("legal")
    )
    assert back.status_code == 422  # a reason is required
    act("legal", "pass_review", reason="事实清楚，证据确凿，适用依据正确，程序合法")
    assert (
        c.post(f"{API}/cases/{case_id}/transitions", json={"action": "close"}, headers=world.h("head")).status_code
        == 409
    )
    decided = act("chief", "decide", decision="警告，并处罚款 5000 元", penalty_amount=5000)
    assert decided["state"] == "decided" and decided["penalty_amount"] == "5000.00"
    act(lead, "serve", method="direct", receiver="示例大药房有限公司")
    pay = c.post(
        f"{API}/cases/{case_id}/payments",
        json={"amount": 5000, "paid_on": today().isoformat(), "receipt_no": "FS-0001"},
        headers=world.h(lead),
    )
    assert pay.status_code == 201 and pay.json()["state"] == "paid"
    pub = c.post(
        f"{API}/cases/{case_id}/publications",
        json={"published_on": today().isoformat(), "content": "示例大药房有限公司 警告、罚款"},
        headers=world.h(lead),
    )
    assert pub.status_code == 201 and pub.json()["publications"][0]["on_time"]
    act("head", "close")
    clue = c.get(f"{API}/clues/{cid}", headers=world.h("head")).json()
    assert clue["state"] == "closed" and "结案" in clue["result"] and "5000" in clue["result"]
    actions = [e["action"] for e in c.get(f"{API}/clues/{cid}/timeline", headers=world.h("head")).json()]
    for expected in (
        "case.registered",
        "case.approved",
        "document.signed",
        "case.extended",
        "case.payment",
        "case.published",
    ):
        assert expected in actions, expected


def test_report_in_uncovered_year_carries_warning(world: World) -> None:
    report = {
        "channel": "hotline_12315",
        "kind": "report",
        "anonymous": True,
        "category": "food_cold_chain",
        "received_at": "2026-12-20T09:00:00+08:00",
        "respondent_name": "某某生鲜超市",
        "facts": "冻品解冻后再冻结销售",
    }
    cid = world.client.post(f"{API}/clues/intake", json=report, headers=world.h("clerk")).json()["clue"]["id"]
    case = world.client.post(f"{API}/clues/{cid}/dispatch", json={}, headers=world.h("clerk")).json()["case"]
    assert case["verify_due"] == "2027-01-11" and any("2027" in w for w in case["warnings"])


def test_random_draw_reproducible_frozen_and_respects_recusal(world: World) -> None:
    c = world.client
    subjects = [world.subject_id] + [
        world.add_subject(f"抽查对象{i}", f"91320508MA1WF10{i:02d}", "D") for i in range(1, 7)
    ]
    world.add_user("insp4", "inspector", duties=["inspector"], cert_no="32050004", full_name="钱七")
    recused = world.user_ids["insp1"]
    assert (
        c.post(
            f"{API}/recusals",
            json={"user_id": recused, "subject_id": subjects[1], "reason": "曾在该主体任职"},
            headers=world.h("head"),
        ).status_code
        == 201
    )
    seed = "0123456789abcdef-2026-plan"
    plans = []
    for name in ("2026 年第一批药品抽查", "复核重抽"):
        p = c.post(
            f"{API}/random-plans", json={"name": name, "seed": seed, "subject_ids": subjects}, headers=world.h("head")
        )
        assert p.status_code == 201, p.text
        drawn = c.post(f"{API}/random-plans/{p.json()['id']}/draw", headers=world.h("head"))
        assert drawn.status_code == 200, drawn.text
        plans.append(drawn.json())
    first, second = (p["record"]["assignments"] for p in plans)
    assert first == second and len(first) >= 3  # D: ceil(6 × 0.30) = 2, C: 1
    for a in first:
        if a["subject_id"] == str(subjects[1]):
            assert str(recused) not in a["inspector_ids"]
    # other seeds never pick the recused inspector for that subject either
    for i in range(4):
        p = c.post(
            f"{API}/random-plans",
            json={"name": f"种子{i}", "seed": f"seed-for-recusal-{i:04d}", "subject_ids": [subjects[1]]},
            headers=world.h("head"),
        ).json()
        record = c.post(f"{API}/random-plans/{p['id']}/draw", headers=world.h("head")).json()["record"]
        assert all(str(recused) not in a["inspector_ids"] for a in record["assignments"])

    plan_id = plans[0]["id"]
    assert c.post(f"{API}/random-plans/{plan_id}/draw", headers=world.h("head")).status_code == 409
    verified = c.post(f"{API}/random-plans/{plan_id}/verify", headers=world.h("head")).json()
    assert verified["valid"] and verified["seed"] == seed
    tasks = c.get(f"{API}/tasks", params={"plan_id": plan_id}, headers=world.h("head")).json()
    assert sorted(str(t["subject_id"]) for t in tasks) == sorted(a["subject_id"] for a in first)
    assert all(t["method"] == "双随机抽查" for t in tasks)
    exported = c.get(f"{API}/random-plans/{plan_id}/results.csv", headers=world.h("head"))
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["计划", "主体名称", "统一社会信用代码", "风险等级"] and len(rows) == len(first) + 1
    assert all(r[9] == seed for r in rows[1:])
