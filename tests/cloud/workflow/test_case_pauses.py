"""Pauses of a case clock through the API (检测、检验、检疫、鉴定期间不计入): an appraisal pause of 5 working days
across a weekend moves the verification deadline by exactly 5 working days; only the clock's approver may pause;
overlapping pauses, kinds the deadline does not allow and an end before the start are refused; the clue's
timeline shows the pause events."""

from __future__ import annotations

import datetime as dt
from typing import Any

from cloud.workflow.calendar import default_calendar
from cloud.workflow.deadlines import compute_deadline
from cloud.workflow.paperwork import today
from tests.utils.workflow_factories import USCC, World

API = "/api/v1"


def _working_days_after(day: dt.date, count: int) -> list[dt.date]:
    cal, out = default_calendar(), []
    while len(out) < count:
        day += dt.timedelta(days=1)
        if cal.is_working_day(day):
            out.append(day)
    return out


def _dates() -> tuple[dt.date, dt.date, dt.date]:
    """(trigger, pause start, pause end): 5 working days of pause with a weekend inside, ended by today, starting
    on the 4th working day of the 15-working-day verification period."""
    cal = default_calendar()
    for back in range(20, 60):
        trigger = today() - dt.timedelta(days=back)
        if not cal.is_working_day(trigger):
            continue
        days = _working_days_after(trigger, 8)
        start, end = days[3], days[7]
        weekend = any((start + dt.timedelta(days=i)).weekday() >= 5 for i in range((end - start).days))
        if end <= today() and weekend:
            return trigger, start, end
    raise AssertionError("no suitable dates")


def _case(world: World, received_on: dt.date) -> tuple[int, int]:
    c = world.client
    report = {
        "channel": "hotline_12315",
        "kind": "report",
        "anonymous": True,
        "received_at": f"{received_on.isoformat()}T10:00:00+08:00",
        "category": "drug_storage",
        "respondent_name": "示例大药房有限公司",
        "respondent_uscc": USCC,
        "facts": "举报该药店销售的中药饮片疑似掺假，需送检鉴定",
    }
    resp = c.post(f"{API}/clues/intake", json=report, headers=world.h("clerk"))
    assert resp.status_code == 201, resp.text
    cid = resp.json()["clue"]["id"]
    sent = c.post(f"{API}/clues/{cid}/dispatch", json={}, headers=world.h("clerk"))
    assert sent.status_code == 200, sent.text
    return cid, sent.json()["case"]["id"]


def _verify(case: dict[str, Any]) -> dict[str, Any]:
    return next(k for k in case["clocks"] if k["clock"] == "verify")  # type: ignore[no-any-return]


def test_appraisal_pause_moves_verify_deadline(world: World) -> None:
    c = world.client
    trigger, start, end = _dates()
    cid, case_id = _case(world, trigger)
    cal = default_calendar()
    original = compute_deadline("report_verify", trigger).due
    before = c.get(f"{API}/cases/{case_id}", headers=world.h("head")).json()
    assert before["verify_due"] == original.isoformat() and _verify(before)["paused_days"] == 0
    assert start < original  # the pause lies inside the period

    body = {"clock": "verify", "kind": "appraisal", "reason": "送检中药饮片真伪鉴定", "start": start.isoformat()}
    # only the approver of the clock (bureau head) may pause it
    wrong = c.post(f"{API}/cases/{case_id}/pauses", json=body, headers=world.h("insp1"))
    assert wrong.status_code == 403, wrong.text
    opened = c.post(f"{API}/cases/{case_id}/pauses", json=body, headers=world.h("head"))
    assert opened.status_code == 201, opened.text
    pause = opened.json()["pause"]
    assert pause["end"] is None and pause["kind"] == "appraisal"
    verify = _verify(opened.json())
    assert verify["suspended"] and verify["status"] == "suspended"

    # a second pause while one is open overlaps
    again = c.post(f"{API}/cases/{case_id}/pauses", json={**body, "kind": "testing"}, headers=world.h("head"))
    assert again.status_code == 409 and again.json()["code"] == "pause_overlap"

    # end before start: refused; wrong role: refused
    url = f"{API}/cases/{case_id}/pauses/{pause['id']}/end"
    early = c.post(url, json={"end": (start - dt.timedelta(days=1)).isoformat()}, headers=world.h("head"))
    assert early.status_code == 422 and early.json()["code"] == "pause_end_before_start"
    assert c.post(url, json={"end": end.isoformat()}, headers=world.h("insp1")).status_code == 403

    ended = c.post(url, json={"end": end.isoformat()}, headers=world.h("head"))
    assert ended.status_code == 200, ended.text
    assert c.post(url, json={"end": end.isoformat()}, headers=world.h("head")).status_code == 409

    # 5 working days paused (a weekend inside does not count): the deadline moves by exactly 5 working days
    assert (end - start).days > 4
    expected = cal.add_working_days(original, 5).value
    assert _working_days_after(original, 5)[-1] == expected
    shown = c.get(f"{API}/cases/{case_id}", headers=world.h("head")).json()
    verify = _verify(shown)
    assert shown["verify_due"] == expected.isoformat() and verify["due"] == expected.isoformat()
    assert verify["paused_days"] == 5 and not verify["suspended"]
    assert shown["verify_pauses"][0]["end"] == end.isoformat()

    # a later pause overlapping the ended one: refused; one after it is fine
    overlap = c.post(
        f"{API}/cases/{case_id}/pauses",
        json={**body, "start": (end - dt.timedelta(days=1)).isoformat()},
        headers=world.h("head"),
    )
    assert overlap.status_code == 409 and overlap.json()["code"] == "pause_overlap"

    actions = [e["action"] for e in c.get(f"{API}/clues/{cid}/timeline", headers=world.h("head")).json()]
    assert "case.paused" in actions and "case.pause_ended" in actions
    assert actions.index("case.paused") < actions.index("case.pause_ended")


def test_pause_kind_not_allowed_by_the_deadline(world: World) -> None:
    trigger, start, _ = _dates()
    _, case_id = _case(world, trigger)
    resp = world.client.post(
        f"{API}/cases/{case_id}/pauses",
        json={"clock": "verify", "kind": "hearing", "reason": "当事人申请听证", "start": start.isoformat()},
        headers=world.h("head"),
    )
    assert resp.status_code == 409 and resp.json()["code"] == "pause_not_allowed"
    detail = resp.json()["detail"]
    assert "不因" in detail and "not allowed" in detail
    missing = world.client.post(f"{API}/cases/{case_id}/pauses/99/end", json={}, headers=world.h("head"))
    assert missing.status_code == 404
