"""Department scoping (404 outside the jurisdiction) and server-side masking of complainant data, with the
journaled reveal."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlmodel import Session, select

from cloud.core.db import session_scope, utcnow
from cloud.core.users import Role
from cloud.journal import JournalEvent
from cloud.registry.models import Department, MarketSubject, Site
from cloud.registry.uscc import make
from cloud.security.masking import mask_id, mask_name, mask_phone, redact
from cloud.workflow.clues import Clue
from cloud.workflow.models import WorkOrder
from tests.cloud.security.conftest import add_user, bearer, engine_of, login

PHONE, ID_NO, NAME = "13812341234", "110101199003071234", "王小明"


def seed(client: TestClient) -> dict[str, int]:
    now = utcnow()
    with session_scope(engine_of(client), write=True) as session:
        d1, d2 = Department(code="sq01", name="城东所"), Department(code="sq02", name="城西所")
        session.add_all([d1, d2])
        session.flush()
        assert d1.id is not None and d2.id is not None
        s1 = MarketSubject(name="东药房", uscc=make("91320500MA1XXXX1A"), department_id=d1.id)
        s2 = MarketSubject(name="西药房", uscc=make("91320500MA1XXXX2A"), department_id=d2.id)
        session.add_all([s1, s2])
        session.flush()
        session.add_all(
            [
                Site(site_id="east-01", name="东药房", subject_id=s1.id),
                Site(site_id="west-01", name="西药房", department_id=d2.id),
            ]
        )
        clues = []
        for dept, site in ((d1.id, "east-01"), (d2.id, "west-01")):
            clue = Clue(
                site_id=site,
                category="drug_storage",
                severity="major",
                title="投诉",
                kind="complaint",
                channel="hotline_12345",
                first_seen_at=now,
                last_seen_at=now,
                department_id=dept,
            )
            session.add(clue)
            session.flush()
            clues.append(clue)
        order = WorkOrder(
            channel="hotline_12345",
            kind="complaint",
            received_at=now,
            category="drug_storage",
            complainant_name=NAME,
            complainant_phone=PHONE,
            complainant_id_no=ID_NO,
            complainant_address="城东区幸福路88号3单元",
            clue_id=clues[1].id,
        )
        session.add(order)
        session.flush()
        return {
            "d1": d1.id,
            "d2": d2.id,
            "east_clue": clues[0].id or 0,
            "west_clue": clues[1].id or 0,
            "order": order.id or 0,
            "s1": s1.id or 0,
            "s2": s2.id or 0,
        }


def test_inspector_sees_only_their_jurisdiction(client: TestClient) -> None:
    ids = seed(client)
    add_user(client, "east-insp", Role.INSPECTOR, department="sq01")
    add_user(client, "sup", Role.SUPERVISOR)
    insp = bearer(login(client, "east-insp")["access_token"])
    sup = bearer(login(client, "sup")["access_token"])
    assert client.get(f"/api/v1/clues/{ids['east_clue']}", headers=insp).status_code == 200
    other = client.get(f"/api/v1/clues/{ids['west_clue']}", headers=insp)
    assert other.status_code == 404, other.text
    assert client.get(f"/api/v1/clues/{ids['west_clue']}/timeline", headers=insp).status_code == 404
    assert [c["id"] for c in client.get("/api/v1/clues", headers=insp).json()["data"]] == [ids["east_clue"]]
    assert {c["id"] for c in client.get("/api/v1/clues", headers=sup).json()["data"]} == {
        ids["east_clue"],
        ids["west_clue"],
    }
    assert client.get(f"/api/v1/clues/{ids['west_clue']}", headers=sup).status_code == 200
    # registry: subjects and sites of the other department are invisible as well
    assert client.get(f"/api/v1/registry/subjects/{ids['s2']}", headers=insp).status_code == 404
    assert client.get("/api/v1/registry/sites/west-01", headers=insp).status_code == 404
    assert client.get("/api/v1/registry/sites/east-01", headers=insp).status_code == 200  # via its subject
    assert [s["site_id"] for s in client.get("/api/v1/registry/sites", headers=insp).json()] == ["east-01"]
    assert [s["name"] for s in client.get("/api/v1/registry/subjects", headers=insp).json()] == ["东药房"]


def test_masks() -> None:
    assert mask_phone(PHONE) == "138****1234"
    assert mask_phone("+86 138-1234-1234") == "138****1234"
    assert mask_id(ID_NO) == "110101********1234"
    assert mask_name(NAME) == "王**"
    assert redact({"a": [{"complainant_phone": PHONE, "phone": "x"}]}) == {
        "a": [{"complainant_phone": "138****1234", "phone": "x"}]
    }


def test_complainant_data_masked_everywhere_and_reveal_is_journaled(client: TestClient) -> None:
    ids = seed(client)
    add_user(client, "sup", Role.SUPERVISOR)
    add_user(client, "west-insp", Role.INSPECTOR, department="sq02")
    sup = bearer(login(client, "sup")["access_token"])
    insp = bearer(login(client, "west-insp")["access_token"])
    order = client.get(f"/api/v1/clues/work-orders/{ids['order']}", headers=sup).json()
    assert order["complainant_phone"] == "138****1234"
    assert order["complainant_id_no"] == "110101********1234"
    assert order["complainant_name"] == "王**"
    for path in (f"/api/v1/clues/{ids['west_clue']}", f"/api/v1/clues/{ids['west_clue']}/timeline"):
        text = client.get(path, headers=sup).text
        assert PHONE not in text and ID_NO not in text and NAME not in text
    # the journaled reveal: allowed roles with a reason; others refused (and that is journaled too)
    clear = client.get(f"/api/v1/pii/work-orders/{ids['order']}", params={"reason": "回访投诉人"}, headers=sup)
    assert clear.status_code == 200 and clear.json()["complainant_phone"] == PHONE
    denied = client.get(f"/api/v1/pii/work-orders/{ids['order']}", params={"reason": "好奇"}, headers=insp)
    assert denied.status_code == 403
    with Session(engine_of(client)) as session:
        events = session.exec(select(JournalEvent).where(JournalEvent.action == "pii.revealed")).all()
    assert [(e.actor, e.outcome, e.payload["reason"]) for e in events] == [
        ("sup", "ok", "回访投诉人"),
        ("west-insp", "denied", "好奇"),
    ]
