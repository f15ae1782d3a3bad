"""Lists that scale (issue #19 item 8): keyword search and filters on clues, tasks, cases, complaints and market
subjects, the XLSX export (Chinese headings, numbers and dates as real cells) and the statistics (by status, domain,
department, category and month; overdue), against the workflow world on a real SQLite database through the HTTP
API."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloud.lists import LISTS
from tests.utils.workflow_factories import World, make_world, work_order

API = "/api/v1"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = make_world(Path(tmp_path_factory.mktemp("lists")))
    with w.client:
        c = w.client
        fridge = w.alert()  # a drug-fridge alert → clue (drug)
        w.ids = {"fridge": fridge}  # type: ignore[attr-defined]
        sent = c.post(f"{API}/clues/{fridge}/dispatch", json={"disposal": "inspect"}, headers=w.h("clerk"))
        assert sent.status_code == 200, sent.text
        w.ids["task"] = sent.json()["task"]["id"]  # type: ignore[attr-defined]
        food = work_order(external_no="12315-0099", category="food", kind="report", facts="后厨使用过期原料")
        r = c.post(f"{API}/clues/intake", json=food, headers=w.h("clerk"))
        assert r.status_code == 201, r.text
        w.ids["food"] = r.json()["clue"]["id"]  # type: ignore[attr-defined]
        case = c.post(f"{API}/clues/{w.ids['food']}/dispatch", json={"disposal": "open_case"}, headers=w.h("clerk"))  # type: ignore[attr-defined]
        assert case.status_code == 200, case.text
        yield w
    w.engine.dispose()


def get(world: World, path: str, who: str = "head", **params: Any) -> Any:
    r = world.client.get(f"{API}{path}", params=params, headers=world.h(who))
    assert r.status_code == 200, r.text
    return r


def test_clue_list_searches_by_text_status_domain_department_and_date(world: World) -> None:
    everything = get(world, "/lists/clues").json()
    assert everything["count"] == 2 and [c["heading"] for c in everything["columns"]][:2] == ["线索编号", "线索"]
    assert get(world, "/lists/clues", q="过期").json()["count"] == 1  # the clue carries the facts
    assert get(world, "/lists/clues", q="无此内容").json()["count"] == 0
    assert get(world, "/lists/complaints", q="过期原料").json()["count"] == 1
    drug = get(world, "/lists/clues", domain="drug").json()
    assert drug["count"] == 1 and drug["rows"][0]["id"] == world.ids["fridge"]  # type: ignore[attr-defined]
    assert drug["rows"][0]["category"] == "药品储存" and drug["rows"][0]["state"]
    food = get(world, "/lists/clues", domain="food").json()
    assert food["count"] == 1 and food["rows"][0]["kind"] == "举报"
    assert get(world, "/lists/clues", status="dispatched").json()["count"] >= 1
    assert get(world, "/lists/clues", status="closed").json()["count"] == 0
    assert get(world, "/lists/clues", department_id=world.department_id).json()["count"] == 2
    assert get(world, "/lists/clues", department_id=world.department_id + 99).json()["count"] == 0
    today = dt.datetime.now(dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=8))).date()
    assert get(world, "/lists/clues", since=str(today), until=str(today)).json()["count"] == 2
    assert get(world, "/lists/clues", until=str(today - dt.timedelta(days=1))).json()["count"] == 0
    bad = world.client.get(f"{API}/lists/clues", params={"domain": "space"}, headers=world.h("head"))
    assert bad.status_code == 422 and "领域" in bad.json()["detail"]
    reversed_range = world.client.get(
        f"{API}/lists/clues",
        params={"since": str(today), "until": str(today - dt.timedelta(days=3))},
        headers=world.h("head"),
    )
    assert reversed_range.status_code == 422 and "起始日期" in reversed_range.json()["detail"]
    assert world.client.get(f"{API}/lists/nothing", headers=world.h("head")).status_code == 404


def test_task_and_case_lists_show_people_and_deadlines(world: World) -> None:
    tasks = get(world, "/lists/tasks").json()
    row = tasks["rows"][0]
    assert "、" in row["assignees"] and row["assignees"].isascii() is False  # two inspectors, by name
    assert row["state"] and not row["state"].isascii()
    assert dt.date.fromisoformat(row["due"])
    cases = get(world, "/lists/cases", q="示例").json()
    assert cases["count"] == 1 and cases["rows"][0]["overdue"] == "否"


def test_xlsx_export_has_chinese_headings_and_real_cells(world: World) -> None:
    from openpyxl import load_workbook

    r = get(world, "/lists/tasks/export.xlsx")
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    wb = load_workbook(io.BytesIO(r.content))
    ws = wb["检查任务"]
    headings = [c.value for c in ws[1]]
    assert headings[:4] == ["任务编号", "事项", "检查方式", "状态"]
    due = ws.cell(row=2, column=headings.index("办理期限") + 1)
    created = ws.cell(row=2, column=headings.index("派发时间") + 1)
    assert isinstance(due.value, dt.datetime | dt.date) and due.number_format == "yyyy-mm-dd"
    assert isinstance(created.value, dt.datetime) and created.number_format == "yyyy-mm-dd hh:mm"
    clues = load_workbook(io.BytesIO(get(world, "/lists/clues/export.xlsx", domain="drug").content))["线索"]
    assert clues.max_row == 2 and isinstance(clues.cell(row=2, column=1).value, int)  # 线索编号 as a number
    notes = dict((row[0].value, row[1].value) for row in load_workbook(io.BytesIO(r.content))["导出说明"].iter_rows())
    assert notes["记录数"] == 1 and notes["时区"].startswith("北京时间")


def test_statistics_count_by_status_domain_department_month_and_overdue(world: World) -> None:
    stats = get(world, "/lists/clues/statistics").json()
    assert stats["total"] == 2 and stats["overdue"] == 0
    assert dict(stats["by_domain"]) == {"药品": 1, "食品": 1}
    assert sum(n for _, n in stats["by_status"]) == 2 and all(not s.isascii() for s, _ in stats["by_status"])
    assert len(stats["by_department"]) == 1 and stats["by_department"][0][1] == 2
    month = stats["by_month"][0][0]
    assert month.endswith("月") and stats["by_month"][0][1] == 2
    complaints = get(world, "/lists/complaints/statistics").json()
    assert complaints["total"] == 1 and dict(complaints["by_domain"]) == {"食品": 1}


def test_an_overdue_task_is_counted(world: World) -> None:
    from sqlmodel import Session

    from cloud.workflow.models import InspectionTask

    with Session(world.engine) as session:
        task = session.get(InspectionTask, world.ids["task"])  # type: ignore[attr-defined]
        assert task is not None
        task.due_date = dt.date(2020, 1, 2)
        session.add(task)
        session.commit()
    assert get(world, "/lists/tasks/statistics").json()["overdue"] == 1
    assert get(world, "/lists/tasks").json()["rows"][0]["overdue"] == "是"


def test_xlsx_export_survives_control_characters_in_the_filters(world: World) -> None:
    """Fuzzing found a 500: openpyxl refuses control characters, and the search text goes into the notes sheet."""
    from openpyxl import load_workbook

    for kind in LISTS:  # every list, including one added later
        r = get(world, f"/lists/{kind}/export.xlsx", q="冷\x01库\x1f", status="\x00")
        assert r.status_code in (200, 422), r.text
        if r.status_code == 200:
            notes = dict(
                (row[0].value, row[1].value) for row in load_workbook(io.BytesIO(r.content))["导出说明"].iter_rows()
            )
            assert notes["关键词"] == "冷库"


def test_subject_list_searches_filters_exports_and_counts(world: World) -> None:
    """市场主体 is a list like the others: search by name/USCC/representative, filter by credit-risk class and
    domain (from its sites), an expired licence counts as overdue, export with the USCC as text."""
    from openpyxl import load_workbook
    from sqlmodel import Session

    from cloud.registry.models import Licence
    from cloud.registry.uscc import make

    other = world.add_subject("老街小吃店", "92320508MA1WF0002", grade="A")
    with Session(world.engine) as session:
        session.add(
            Licence(
                licence_no="JY13205080000001", kind="食品经营许可证", subject_id=other, valid_to=dt.date(2021, 5, 31)
            )
        )
        session.add(
            Licence(
                licence_no="药经营苏2026001",
                kind="药品经营许可证",
                subject_id=world.subject_id,
                valid_to=dt.date(2030, 1, 1),
            )
        )
        session.commit()
    every = get(world, "/lists/subjects").json()
    assert every["title"] == "市场主体" and every["count"] == 2
    assert every["statuses"] == {
        "A": "A 级（低风险）",
        "B": "B 级（较低风险）",
        "C": "C 级（较高风险）",
        "D": "D 级（高风险）",
    }
    pharmacy = get(world, "/lists/subjects", q="张三").json()  # the legal representative
    assert pharmacy["count"] == 1
    row = pharmacy["rows"][0]
    assert row["name"] == "示例大药房有限公司" and row["state"] == "C 级（较高风险）" and row["sites"] == 1
    assert row["licence_ends"] == "2030-01-01" and row["overdue"] == "否" and row["in_use"] == "在用"
    assert get(world, "/lists/subjects", q="MA1WF0002").json()["count"] == 1  # by USCC
    assert [r["name"] for r in get(world, "/lists/subjects", status="A").json()["rows"]] == ["老街小吃店"]
    assert [r["name"] for r in get(world, "/lists/subjects", domain="drug").json()["rows"]] == ["示例大药房有限公司"]
    stats = get(world, "/lists/subjects/statistics").json()
    assert stats["total"] == 2 and stats["overdue"] == 1  # 老街小吃店's licence ended on 2021-05-31
    assert dict(stats["by_status"]) == {"C 级（较高风险）": 1, "A 级（低风险）": 1} and stats["by_category"] == []
    wb = load_workbook(io.BytesIO(get(world, "/lists/subjects/export.xlsx", q="小吃").content))
    ws = wb["市场主体"]
    headings = [c.value for c in ws[1]]
    assert headings[:2] == ["市场主体", "统一社会信用代码"] and ws.max_row == 2
    assert ws.cell(row=2, column=2).value == make("92320508MA1WF0002")  # the 18-character code, as text
    assert ws.cell(row=2, column=headings.index("许可证过期") + 1).value == "是"


def test_statistics_count_by_category(world: World) -> None:
    stats = get(world, "/lists/clues/statistics").json()
    assert dict(stats["by_category"]) == {"药品储存": 1, "食品安全": 1}  # CATEGORY_LABELS, never the code
