"""注销/停用 of market subjects and sites: with a reason, journaled, out of the default lists (a filter shows them),
no new dispatch or clue link (a clear Chinese refusal), history kept, the registry state the ingest hook reads,
and reactivation with a reason."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session

from cloud import journal
from cloud.registry.service import RegistryState, site_state
from tests.utils.workflow_factories import World, make_world, work_order

API = "/api/v1"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path)
    with w.client:
        yield w
    w.engine.dispose()


def _state(world: World) -> RegistryState:
    with Session(world.engine) as session:
        return site_state(session, site_id=world.site_id)


def _reasons(world: World, target_type: str, target_id: str | int) -> list[tuple[str, str]]:
    with Session(world.engine) as session:
        return [
            (e.action, (e.payload or {}).get("reason", ""))
            for e in journal.timeline(session, target_type, target_id)
            if e.action.startswith(f"{target_type}.")
        ]


def test_a_deactivated_site_leaves_the_lists_gets_no_dispatch_and_comes_back(world: World) -> None:
    c, head = world.client, world.h("head")
    clue_id = world.alert()
    url = f"{API}/registry/sites/{world.site_id}"
    assert c.post(f"{url}/deactivate", json={}, headers=head).status_code == 422  # a reason is required
    refused = c.post(f"{url}/deactivate", json={"reason": "停业"}, headers=world.h("insp1"))
    assert refused.status_code == 403 and "场所与设备" in refused.json()["detail"]
    done = c.post(f"{url}/deactivate", json={"reason": "门店已停业"}, headers=head)
    assert done.status_code == 200, done.text
    assert done.json()["deactivation_reason"] == "门店已停业" and done.json()["deactivated_at"]
    assert c.post(f"{url}/deactivate", json={"reason": "再次"}, headers=head).status_code == 409
    assert _state(world) is RegistryState.DEACTIVATED
    listed = [s["site_id"] for s in c.get(f"{API}/registry/sites", headers=head).json()]
    assert world.site_id not in listed
    every = c.get(f"{API}/registry/sites", params={"include_deactivated": "true"}, headers=head).json()
    assert [s["deactivation_reason"] for s in every if s["site_id"] == world.site_id] == ["门店已停业"]
    assert c.get(url, headers=head).status_code == 200  # history kept
    assert c.get(f"{API}/clues/{clue_id}", headers=head).status_code == 200

    sent = c.post(f"{API}/clues/{clue_id}/dispatch", json={}, headers=world.h("clerk"))
    assert sent.status_code == 409, sent.text
    assert sent.json()["code"] == "deactivated"
    assert "场所“示例大药房人民路店”已停用（门店已停业），不能派发" in sent.json()["detail"]

    assert c.post(f"{url}/reactivate", json={"reason": "恢复营业"}, headers=head).status_code == 200
    assert _state(world) is RegistryState.ACTIVE
    assert _reasons(world, "site", world.site_id) == [
        ("site.deactivated", "门店已停业"),
        ("site.reactivated", "恢复营业"),
    ]
    sent = c.post(f"{API}/clues/{clue_id}/dispatch", json={}, headers=world.h("clerk"))
    assert sent.status_code == 200, sent.text


def test_a_deactivated_subject_takes_its_sites_out_and_refuses_links_and_dispatch(world: World) -> None:
    c, head = world.client, world.h("head")
    clue_id = world.alert()
    url = f"{API}/registry/subjects/{world.subject_id}"
    done = c.post(f"{url}/deactivate", json={"reason": "营业执照已注销"}, headers=head)
    assert done.status_code == 200, done.text
    assert _state(world) is RegistryState.DEACTIVATED  # its site's incoming data: see the quarantine hook
    assert world.subject_id not in [s["id"] for s in c.get(f"{API}/registry/subjects", headers=head).json()]
    every = c.get(f"{API}/registry/subjects", params={"include_deactivated": "true"}, headers=head).json()
    assert [s["deactivation_reason"] for s in every if s["id"] == world.subject_id] == ["营业执照已注销"]
    sent = c.post(f"{API}/clues/{clue_id}/dispatch", json={}, headers=world.h("clerk"))
    assert sent.status_code == 409 and "市场主体“示例大药房有限公司”已注销（营业执照已注销）" in sent.json()["detail"]

    other = world.add_subject("另一家药房", "91320508MA1WF0009")
    body = work_order(respondent_uscc=None, respondent_name="不知名药店", external_no="12345-0099")
    order = c.post(f"{API}/clues/intake", json=body, headers=world.h("clerk"))
    assert order.status_code in (200, 201), order.text
    new_clue = order.json()["clue"]["id"]
    c.post(f"{API}/registry/subjects/{other}/deactivate", json={"reason": "已迁出辖区"}, headers=head)
    link = c.post(
        f"{API}/clues/{new_clue}/subject",
        json={"subject_id": other, "reason": "核实为该药店"},
        headers=world.h("clerk"),
    )
    assert link.status_code == 409 and "已注销（已迁出辖区），不能关联新的线索" in link.json()["detail"], link.text

    assert c.post(f"{url}/reactivate", json={"reason": "撤销注销"}, headers=head).status_code == 200
    assert c.post(f"{url}/reactivate", json={"reason": "再次"}, headers=head).status_code == 409
    assert _reasons(world, "subject", world.subject_id) == [
        ("subject.deactivated", "营业执照已注销"),
        ("subject.reactivated", "撤销注销"),
    ]
    assert _state(world) is RegistryState.ACTIVE
