"""移送 by territorial jurisdiction (#13): a report taken in by department A's intake inspector about a subject of
department B (named by USCC) becomes a new clue of B -- never folded invisibly into B's open clue -- journaled on
both sides with who referred it; A keeps a read-only receipt and can neither read nor change B's clue; B sees the
referred clue and where it came from. A county-wide intake clerk's work order goes straight to B (no referral).

Real parts: the app with its routes (FastAPI TestClient), SQLite, the registry's departments and subjects.
"""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session, col, select

from cloud import journal
from cloud.registry.models import Department, MarketSubject, RiskGrade
from cloud.registry.uscc import make
from cloud.workflow.clues import Clue
from cloud.workflow.models import ClueReferral, StaffProfile
from tests.utils.workflow_factories import make_world, work_order

API = "/api/v1"
USCC_B = make("91320508MA1WF0002")


def test_a_report_about_another_departments_subject_is_referred_as_a_new_clue(tmp_path: Path) -> None:
    world = make_world(tmp_path)
    with world.client as c, Session(world.engine) as session:
        dept_b = Department(code="gusu-2", name="姑苏区市场监督管理局第二市场监督管理所")
        session.add(dept_b)
        session.flush()
        session.add(
            MarketSubject(
                name="城西超市有限公司",
                uscc=USCC_B,
                risk_grade=RiskGrade.C,
                department_id=dept_b.id,
                address="苏州市姑苏区西中市 5 号",
            )
        )
        session.commit()
        b_id = dept_b.id
        assert b_id is not None
        world.add_user("recv-a", "inspector", duties=["intake_clerk", "inspector"], full_name="甲所受理员")
        uid = world.add_user("recv-b", "inspector", duties=["intake_clerk", "inspector"], full_name="乙所受理员")
        with Session(world.engine) as other:
            profile = other.exec(select(StaffProfile).where(StaffProfile.user_id == uid)).one()
            profile.department_id = b_id
            other.add(profile)
            other.commit()
        about_b = {"respondent_uscc": USCC_B, "respondent_name": "城西超市", "category": "food"}

        own = c.post(
            f"{API}/clues/intake", json=work_order(external_no="B-1", **about_b), headers=world.h("recv-b")
        ).json()
        b_clue = own["clue"]["id"]
        assert own["clue"]["department_id"] == b_id and "referral" not in own

        # department A's intake inspector takes a report about B's subject: 移送 to B
        r = c.post(
            f"{API}/clues/intake",
            json=work_order(external_no="A-1", kind="report", **about_b),
            headers=world.h("recv-a"),
        )
        assert r.status_code == 201, r.text
        receipt = r.json()
        assert receipt["clue"] is None and receipt["folded"] is False
        referral = receipt["referral"]
        assert referral["direction"] == "out" and referral["clue_id"] is None
        assert referral["to_department"] == "姑苏区市场监督管理局第二市场监督管理所"
        assert referral["from_department"] == "姑苏区市场监督管理局第一市场监督管理所"
        assert "已移送" in referral["message"] and referral["referred_by"] == "recv-a"

        session.rollback()  # end the read snapshot: see what the requests committed
        row = session.exec(select(ClueReferral)).one()
        new_clue = session.get(Clue, row.clue_id)
        assert new_clue is not None and new_clue.id != b_clue and new_clue.department_id == b_id
        old = session.get(Clue, b_clue)
        assert old is not None and old.source_count == 1  # never folded into B's open clue

        # journaled on both sides, naming who referred it
        events = {
            e.action: e
            for e in session.exec(
                select(journal.JournalEvent).where(
                    col(journal.JournalEvent.action).in_(["clue.referred_in", "work_order.referred_out"])
                )
            )
        }
        inbound, outbound = events["clue.referred_in"], events["work_order.referred_out"]
        assert inbound.target_id == str(new_clue.id) and inbound.actor == "recv-a"
        assert inbound.payload["from_department_id"] == world.department_id
        assert outbound.target_id == str(receipt["work_order_id"]) and outbound.payload["to_department_id"] == b_id

        # A: the receipt only -- B's clue is neither readable nor changeable
        assert c.get(f"{API}/clues/{new_clue.id}", headers=world.h("recv-a")).status_code == 404
        assert c.get(f"{API}/clues/{new_clue.id}/timeline", headers=world.h("recv-a")).status_code == 404
        change = c.post(
            f"{API}/clues/{new_clue.id}/transitions",
            json={"action": "close", "reason": "试图越权办结"},
            headers=world.h("recv-a"),
        )
        assert change.status_code == 404, change.text
        listed = c.get(f"{API}/clues", headers=world.h("recv-a")).json()["data"]
        assert new_clue.id not in [x["id"] for x in listed]
        mine = c.get(f"{API}/clues/referrals", headers=world.h("recv-a")).json()
        assert [(m["direction"], m["clue_id"], m["to_department"]) for m in mine] == [
            ("out", None, "姑苏区市场监督管理局第二市场监督管理所")
        ]

        # B: the referred clue, with where it came from
        theirs = c.get(f"{API}/clues/referrals", headers=world.h("recv-b")).json()
        assert [(m["direction"], m["clue_id"]) for m in theirs] == [("in", new_clue.id)]
        assert "由姑苏区市场监督管理局第一市场监督管理所移送" in theirs[0]["message"]
        assert c.get(f"{API}/clues/{new_clue.id}", headers=world.h("recv-b")).status_code == 200
        timeline = c.get(f"{API}/clues/{new_clue.id}/timeline", headers=world.h("recv-b")).json()
        assert "clue.referred_in" in str(timeline)

        # the county-wide intake clerk (command centre): no referral, the clue is B's and folds as before
        county = c.post(
            f"{API}/clues/intake", json=work_order(external_no="C-1", **about_b), headers=world.h("clerk")
        ).json()
        assert county["clue"]["department_id"] == b_id and "referral" not in county
        # A's own subject: no referral either
        home = c.post(f"{API}/clues/intake", json=work_order(external_no="A-2"), headers=world.h("recv-a")).json()
        assert home["clue"]["department_id"] == world.department_id and "referral" not in home
        session.rollback()
        assert len(session.exec(select(ClueReferral)).all()) == 1
    world.engine.dispose()
