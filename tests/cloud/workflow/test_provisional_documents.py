"""A due date computed on a calendar year without official holiday data (2027 here: the fallback table) is printed
"预计，以官方公布为准" in every generated document that carries it; a date on the official 2026 calendar is not.

Hand-computed: a fine served on Mon 28 Dec 2026 is due 15 days later, Tue 12 Jan 2027 (a 2027 date: provisional);
served Mon 2 Nov 2026 it is due Tue 17 Nov 2026 (official). A complaint accepted on 28 Dec 2026 has its 45-working-day
mediation period end in 2027 (provisional). The PDFs are read back with pypdf.
"""

from __future__ import annotations

import datetime as dt
import io
import re

import pypdf
import pytest

from cloud.workflow import paperwork
from tests.utils.workflow_factories import World

API = "/api/v1"
MARK = "预计，以官方公布为准"


def _pdf_text(world: World, doc_id: int) -> str:
    pdf = world.client.get(f"{API}/documents/{doc_id}/pdf", headers=world.h("head")).content
    return re.sub(r"\s+", "", "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages))


def test_due_dates_on_a_provisional_year_are_marked_in_documents(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    day = [dt.date(2026, 11, 2)]
    monkeypatch.setattr(paperwork, "today", lambda: day[0])
    official = world.on_the_spot_case()
    assert official["payment_due"] == "2026-11-17"
    doc = next(d for d in official["documents"] if d["kind"] == "on_the_spot_decision")
    text = _pdf_text(world, doc["id"])
    assert "2026-11-17" in text and MARK not in text

    day[0] = dt.date(2026, 12, 28)
    provisional = world.on_the_spot_case()
    assert provisional["payment_due"] == "2027-01-12"
    doc = next(d for d in provisional["documents"] if d["kind"] == "on_the_spot_decision")
    assert f"2027-01-12（{MARK}）" in _pdf_text(world, doc["id"])

    intake = world.client.post(
        f"{API}/clues/intake",
        json={
            "channel": "hotline_12315",
            "kind": "complaint",
            "external_no": "12315-1130-1",
            "received_at": "2026-11-30T10:00:00+08:00",
            "category": "consumer_dispute",
            "complainant_name": "陈某",
            "complainant_phone": "13800001111",
            "complainant_address": "苏州市姑苏区某路 1 号",
            "respondent_name": "示例大药房有限公司",
            "respondent_address": "苏州市姑苏区人民路 100 号",
            "request": "退还货款 128 元",
            "facts": "购买的血压计无法开机，商家拒绝退货",
        },
        headers=world.h("clerk"),
    )
    assert intake.status_code == 201, intake.text
    accepted = world.client.post(
        f"{API}/work-orders/{intake.json()['work_order_id']}/acceptance",
        json={"decision": "accepted"},
        headers=world.h("clerk"),
    )
    assert accepted.status_code == 200, accepted.text
    due = accepted.json()["mediation_due"]
    assert due.startswith("2027-")
    text = _pdf_text(world, accepted.json()["result"]["document_id"])
    assert f"{due}（{MARK}）" in text
    assert "2026-11-30（" not in text  # the receipt date is a fact, not a computed due date
