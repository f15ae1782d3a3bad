"""Documents a legal office would sign (issue #19): the text of the generated PDFs, read back with pypdf.

The drug-fridge inspection of the demo county: DR-STO-01 fails on site. The 责令改正通知书 must state the violation
in the words of a legal document (not the checklist item's title), cite the violated articles by the law's full title
(GSP 2016 第八十三条 on storing drugs at the temperature on their packaging, 药品管理法 2019 第五十九条 on storage,
第一百二十六条 on ordering correction: numbers written here from the regulations, not read from the rules file), name
the party and its address from the registry, carry the county's issuer and document number, and the 现场检查笔录 the
officers' real names and 执法证号. Missing registry data refuses generation with a Chinese message.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import pypdf
import pytest
from sqlmodel import Session, select

from cloud.workflow import paperwork
from cloud.workflow.config import workflow_rules
from cloud.workflow.models import InspectionTask, StaffProfile
from tests.utils.workflow_factories import World, make_world

API = "/api/v1"
COUNTY = Path(__file__).parents[3] / "firmware-config" / "demo" / "county.toml"


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setenv("SENTINEL_COUNTY_FILE", str(COUNTY))
    workflow_rules.cache_clear()
    w = make_world(tmp_path)
    with w.client:
        yield w
    w.engine.dispose()
    workflow_rules.cache_clear()


def _pdf_text(pdf: bytes) -> str:
    """The document's text without white space (a line wrap may fall on a space and swallow it)."""
    return _bare("".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages))


def _bare(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _inspected(world: World) -> tuple[int, str]:
    """Alert → clue → dispatch → accept → check in → DR-STO-01 fails, the others pass; returns (task id, lead)."""
    c = world.client
    clue_id = world.alert()
    task = c.post(f"{API}/clues/{clue_id}/dispatch", json={}, headers=world.h("clerk")).json()["task"]
    lead = next(n for n in ("insp1", "insp2", "insp3") if world.user_ids[n] == task["assignees"][0])
    tid = task["id"]
    for action, body in (("accept", {}), ("check_in", {"check_in": {"lat": 31.3, "lon": 120.6}})):
        r = c.post(f"{API}/tasks/{tid}/transitions", json={"action": action, **body}, headers=world.h(lead))
        assert r.status_code == 200, r.text
    for code in task["items"]:
        failed = code == "DR-STO-01"
        r = c.put(
            f"{API}/tasks/{tid}/results/{code}",
            json={"outcome": "fail" if failed else "pass", "note": "药品冷藏柜 1 号显示 12.0 ℃" if failed else ""},
            headers=world.h(lead),
        )
        assert r.status_code == 200, r.text
    return tid, lead


def _submit(world: World, tid: int, lead: str) -> object:
    return world.client.post(
        f"{API}/tasks/{tid}/transitions", json={"action": "submit", "findings": ""}, headers=world.h(lead)
    )


def test_rectification_order_and_record_read_as_legal_documents(world: World) -> None:
    tid, lead = _inspected(world)
    submitted = _submit(world, tid, lead)
    assert submitted.status_code == 200, submitted.text  # type: ignore[attr-defined]
    docs = {d["kind"]: d for d in submitted.json()["documents"]}  # type: ignore[attr-defined]
    year = paperwork.today().year

    def text_of(kind: str) -> str:
        pdf = world.client.get(f"{API}/documents/{docs[kind]['id']}/pdf", headers=world.h("head")).content
        return _pdf_text(pdf)

    order = text_of("rectification_order")
    # issuer and number from the county's configuration
    assert "苏州市姑苏区市场监督管理局" in order and "某某" not in order and "执法人员：" in order
    assert f"姑苏市监责改〔{year}〕001号" in order
    # party and address from the registry
    assert "示例大药房有限公司：" in order
    assert _bare("位于苏州市姑苏区人民路 100 号的经营场所") in order
    assert "未登记" not in order
    # the violation as a legal document states it, with what was found, and the violated articles in full
    assert (
        _bare(
            "1. 药品储存温度不符合药品包装标示的贮藏要求（现场检查发现：药品冷藏柜 1 号显示 12.0 ℃），"
            "违反了《药品经营质量管理规范》第八十三条、《中华人民共和国药品管理法》第五十九条的规定。"
        )
        in order
    )
    assert "依据《中华人民共和国药品管理法》第一百二十六条的规定，现责令你（单位）于" in order
    assert "药品储存温湿度符合要求" not in order  # the checklist title is not a violation
    # the remedy, not the generic checking instruction
    assert "（1）立即将超温储存的药品隔离存放并进行质量评估" in order
    assert "向苏州市姑苏区人民政府申请行政复议" in order and "向苏州市姑苏区人民法院提起行政诉讼" in order

    record = text_of("inspection_record")
    assert f"姑苏市监检〔{year}〕001号" in record
    for name, cert in (("李四", "32050001"), ("王五", "32050002"), ("赵六", "32050003")):
        if world.user_ids[f"insp{cert[-1]}"] in submitted.json()["assignees"]:  # type: ignore[attr-defined]
            assert name in record and cert in record
            # the officers who hand the order over identify themselves on it (行政处罚法 第五十五条: 出示执法证件)
            assert f"{name}（执法证号{cert}）" in order
    assert "待补录" not in record and "系统管理员" not in record


def test_no_document_without_a_registered_party(world: World) -> None:
    tid, lead = _inspected(world)
    with Session(world.engine) as session:
        task = session.get(InspectionTask, tid)
        assert task is not None
        task.subject_id = None
        session.add(task)
        from cloud.registry.models import Site

        site = session.get(Site, world.site_id)
        assert site is not None
        site.subject_id = None
        session.add(site)
        session.commit()
    refused = _submit(world, tid, lead)
    assert refused.status_code == 422  # type: ignore[attr-defined]
    body = refused.json()  # type: ignore[attr-defined]
    assert body["code"] == "party_missing"
    assert "无法生成文书" in body["detail"] and "未关联市场主体" in body["detail"]
    # nothing half-done: the task is still checked in and no document was stored
    task_now = world.client.get(f"{API}/tasks/{tid}", headers=world.h("head")).json()
    assert task_now["state"] == "checked_in" and not task_now.get("documents")


def test_no_document_without_the_officers_certificate_numbers(world: World) -> None:
    tid, lead = _inspected(world)
    with Session(world.engine) as session:
        profile = session.exec(select(StaffProfile).where(StaffProfile.user_id == world.user_ids[lead])).one()
        profile.cert_no = None
        session.add(profile)
        session.commit()
    refused = _submit(world, tid, lead)
    assert refused.status_code == 422  # type: ignore[attr-defined]
    assert refused.json()["code"] == "cert_missing"  # type: ignore[attr-defined]
    assert "未登记执法证号" in refused.json()["detail"]  # type: ignore[attr-defined]
