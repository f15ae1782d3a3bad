"""No raw code reaches a person's screen (issue #19, "Chinese labels everywhere"): headless Chromium walks every
console page of the seeded demo county (with a complaint dispatched to two named inspectors, checked in, its
checklist submitted with a failed item, and a report carried to a case) and fails when the visible text shows

* a dotted event code (``task.assessed``) or a ``site/sensor.metric`` key (``pharmacy-01/fridge1.temperature``),
* any lowercase ASCII word: an English enum value (``accepted``, ``clue_collection``, ``complaint``), a login name
  (``lisi``), a site or device id (``pharmacy-01``), an analysis fact (``kind=complaint``).

Only what is meant to be shown is allowed (:data:`ALLOWED`): units and the like. Upper-case document numbers,
USCCs and checklist item numbers are meant to be read and are not matched. Every journal action the walk's world
wrote has a label in the one vocabulary (``cloud/rules/labels.toml``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from cloud import journal
from cloud.labels import vocabulary
from tests.cloud.web.county_world import STAFF_PASSWORD, CountyWorld, county_world

pytestmark = [pytest.mark.browser]

#: lowercase words that are meant to be read (units, URL schemes shown as text)
ALLOWED = {"km", "kg", "mm", "rh", "hpa"}
DOTTED = re.compile(r"\b[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\b")
SENSOR_KEY = re.compile(r"\b[a-z][a-z0-9_-]*/[a-z][a-z0-9_.-]*\b")
WORD = re.compile(r"(?<![A-Za-z0-9])[a-z][a-z0-9_-]*[a-z0-9_](?![A-Za-z0-9])")


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """The module's one server grows its worker pool (AnyIO worker threads) while a page loads; the pool belongs to
    the module-scoped server, which stops it at teardown. Any other new thread is still a leak."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
    assert not [t.name for t in leaked if t.name != "AnyIO worker thread"]


@pytest.fixture(scope="module")
def county(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CountyWorld]:
    with county_world(tmp_path_factory.mktemp("raw-codes")) as world:
        yield world


def raw_codes(text: str) -> list[str]:
    found = [*DOTTED.findall(text), *SENSOR_KEY.findall(text)]
    found += [w for w in WORD.findall(text) if w not in ALLOWED]
    return sorted(set(found))


def test_the_detector_catches_the_known_list() -> None:
    shown = (
        "任务状态变更：accepted / checked_in / submitted　task.assessed　agent:edge-pharmacy　clue_collection　"
        "kind=complaint（规则 complaint）；repeats_90d_at_most=0　lisi　pharmacy-01/fridge1.temperature"
    )
    found = raw_codes(shown)
    for code in ("accepted", "checked_in", "submitted", "task.assessed", "agent", "edge-pharmacy", "clue_collection"):
        assert code in found
    assert {"kind", "complaint", "repeats_90d_at_most", "lisi", "pharmacy-01/fridge1.temperature"} <= set(found)
    assert raw_codes("统一社会信用代码 91320508MA1XR6H1P7　姑苏市监责改〔2026〕001号　DR-STO-01　8.0 °C　45 %RH") == []


def visible_text(page: Any) -> str:
    text: str = page.evaluate("() => document.body.innerText")
    # the values of inputs and selected options are read too (placeholder text is what a person sees in a box)
    text += "\n" + page.evaluate(
        "() => [...document.querySelectorAll('input,textarea')].map(e => (e.value || '') + ' ' + (e.placeholder || ''))"
        ".join('\\n')"
    )
    return text


def login(page: Any, base: str, path: str, username: str) -> None:
    page.goto(f"{base}{path}")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(STAFF_PASSWORD)
    page.get_by_role("button", name="登录").click()


def console_pages(world: CountyWorld) -> list[tuple[str, str]]:
    """(hash route, a selector that is there once the page has rendered its data)."""
    ids = world.ids
    return [
        ("#/clues", "#clue-table tbody tr"),
        (f"#/clue/{ids['clue_id']}", "#clue-timeline li"),
        (f"#/clue/{ids['clue2_id']}", "#clue-timeline li"),
        ("#/deadlines", "#deadline-table tbody tr"),
        (f"#/task/{ids['task_id']}", "#task-assignees"),
        (f"#/case/{ids['case_id']}", "#case-state"),
        ("#/subjects", "table tbody tr"),
        ("#/scores", "#score-table tbody tr"),
    ]


def walk(page: Any, base: str, pages: list[tuple[str, str]]) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    for route, ready in pages:
        page.goto(f"{base}/{route}")
        page.wait_for_selector(ready)
        page.wait_for_load_state("networkidle")
        codes = raw_codes(visible_text(page))
        if codes:
            problems[route] = codes
    return problems


def test_no_console_page_shows_a_raw_code(county: CountyWorld, browser: Any) -> None:
    base = county.cloud.base
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    page = context.new_page()
    try:
        login(page, base, "/", "wangqiang")  # 平江所所长: department head, sees every console page
        page.wait_for_selector("nav")
        problems = walk(page, base, console_pages(county))
        assert not problems, f"raw codes on the console's pages: {problems}"
        # the scorecard shows people by name and does not score a person with no work
        page.goto(f"{base}/#/scores")
        rows = page.locator("#score-table tbody tr")
        rows.first.wait_for()
        table = page.locator("#score-table").inner_text()
        assert "李华" in table and "线索归集" in table
        idle = page.locator("#score-table tbody tr", has_text="钱峰")
        assert "无数据" in idle.inner_text() and "25.0" not in idle.inner_text()
    finally:
        context.close()


def test_every_journal_action_of_the_walk_has_a_label(county: CountyWorld) -> None:
    with Session(county.cloud.app.state.engine) as session:
        actions = set(session.exec(select(journal.JournalEvent.action)).all())
    events = vocabulary()["events"]
    assert actions and not {a for a in actions if a not in events}, sorted(a for a in actions if a not in events)


def test_labels_file_is_loaded_once_and_complete() -> None:
    from cloud.labels import fact_text, label_file

    assert label_file() is label_file()
    assert fact_text("kind", "complaint", "complaint") == "线索类型为投诉（规则：投诉）"
    assert fact_text("category", "food_*,drug_*", "drug_storage") == "类别为药品储存（规则：食品类、药品类）"
    assert fact_text("repeats_90d_at_most", "0", "0") == "90 日内同类线索不多于 0（实际 0）"
    assert Path(__file__).exists()
