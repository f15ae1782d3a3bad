"""The PC console's pages in headless Chromium on the seeded demo county (issue #19).

No raw code reaches a person's screen ("Chinese labels everywhere"): headless Chromium walks every
console page of the seeded demo county (with a complaint dispatched to two named inspectors, checked in, its
checklist submitted with a failed item, and a report carried to a case) and fails when the visible text shows

* a dotted event code (``task.assessed``) or a ``site/sensor.metric`` key (``pharmacy-01/fridge1.temperature``),
* any lowercase ASCII word: an English enum value (``accepted``, ``clue_collection``, ``complaint``), a login name
  (``lisi``), a site or device id (``pharmacy-01``), an analysis fact (``kind=complaint``).

The administration pages create a person with duties and 执法证号, show the API's Chinese refusals, import subjects
from CSV with the row errors in the page, and the 市场主体 page of an empty county says what to do; the lists search,
export XLSX and count.

The one detector and its allowed words are in tests/utils/raw_codes.py (shared with the phone, map, kiosk, screen and
whole-flow walks). Every journal action the walk's world wrote has a label in the one vocabulary
(``cloud/rules/labels.toml``).
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, col, select

from cloud import journal
from cloud.labels import vocabulary
from cloud.lists import LISTS
from cloud.registry.models import Site
from tests.cloud.web.conftest import ADMIN_PASSWORD, live_cloud
from tests.cloud.web.county_world import STAFF_PASSWORD, CountyWorld, county_world
from tests.utils.quarantine_factories import held_device
from tests.utils.raw_codes import raw_codes, visible_text

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # one seeded county served to Chromium: ~1 min for the module


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
        engine = world.cloud.app.state.engine
        with Session(engine) as session:
            site = session.exec(
                select(Site).where(col(Site.department_id).is_not(None)).order_by(col(Site.site_id))
            ).first()
        assert site is not None
        world.ids["pending_id"] = held_device(
            engine, site_id=site.site_id, device_id="fridge-new", device_type="probe", sensors=["t9"], alert=True
        )
        yield world


def login(page: Any, base: str, path: str, username: str) -> None:
    page.goto(f"{base}{path}")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(ADMIN_PASSWORD if username == "admin" else STAFF_PASSWORD)
    page.get_by_role("button", name="登录").click()
    # the clue board has rendered first (console.js serialises navigations; this keeps each walk step deterministic)
    page.wait_for_function("() => (document.querySelector('#clue-count')?.textContent || '').startsWith('共')")


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
        ("#/devices", "#pending-table tbody tr[data-pending]"),
        (f"#/devices/{ids['pending_id']}", "#held-table tbody tr[data-held]"),
        *[(f"#/list/{k}", "#list-table tbody tr") for k in LISTS],
        *[(f"#/stats/{k}", "#stat-total") for k in LISTS],
    ]


ADMIN_PAGES = [
    ("#/admin/staff", "#staff-create"),
    ("#/admin/departments", "table tbody tr"),
    ("#/admin/subjects", "#subject-create"),
    ("#/admin/sites", "table tbody tr"),
]


def walk(page: Any, base: str, pages: list[tuple[str, str]]) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    for route, ready in pages:
        page.goto(f"{base}/{route}")
        try:
            page.wait_for_selector(ready)
        except Exception as exc:
            raise AssertionError(f"{route} did not render {ready}: {visible_text(page)[-600:]}") from exc
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
        page.reload()
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


def new_page(browser: Any) -> tuple[Any, Any]:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN", accept_downloads=True)
    return context, context.new_page()


def test_admin_pages_show_no_raw_code_and_create_staff(county: CountyWorld, browser: Any) -> None:
    base = county.cloud.base
    context, page = new_page(browser)
    try:
        login(page, base, "/", "admin")
        page.wait_for_selector("nav")
        problems = walk(page, base, ADMIN_PAGES)
        assert not problems, f"raw codes on the administration pages: {problems}"
        page.goto(f"{base}/#/admin/staff")
        form = page.locator("#staff-create")
        form.wait_for()
        form.get_by_label("登录名").fill("xuming")
        form.get_by_label("姓名", exact=True).fill("徐明")
        form.get_by_label("初始密码").fill("short")
        form.get_by_label("部门", exact=True).select_option(label="沧浪市场监督管理所")
        form.get_by_label("执法证号").fill("32050819000199")
        form.get_by_role("button", name="新增").click()
        error = form.locator("[role=alert]")
        error.wait_for()
        page.wait_for_function("() => document.querySelector('#staff-create [role=alert]').textContent.length > 0")
        assert "密码" in error.inner_text() or "password" in error.inner_text()
        form.get_by_label("初始密码").fill("Xu-ming-pass-42")
        form.get_by_role("button", name="新增").click()
        page.locator("table[aria-label=人员] tr", has_text="徐明").wait_for()
        row = page.locator("table[aria-label=人员] tr", has_text="徐明").inner_text()
        assert "沧浪市场监督管理所" in row and "检查人员" in row and "32050819000199" in row
        staff = {s["username"]: s for s in county.client().get("/staff").json()}
        assert staff["xuming"]["duties"] == ["inspector"] and staff["xuming"]["cert_no"] == "32050819000199"
        # deactivate from the editor
        page.locator("table[aria-label=人员] tr", has_text="徐明").get_by_role("button", name="编辑").click()
        page.locator("#staff-toggle").click()
        page.locator("table[aria-label=人员] tr", has_text="已停用").wait_for()
        assert "徐明" in page.locator("table[aria-label=人员] tr", has_text="已停用").inner_text()
    finally:
        context.close()


def test_subject_registration_and_csv_import_show_the_apis_chinese_errors(
    county: CountyWorld, browser: Any, tmp_path: Path
) -> None:
    base = county.cloud.base
    context, page = new_page(browser)
    try:
        login(page, base, "/", "admin")
        page.wait_for_selector("nav")
        page.goto(f"{base}/#/admin/subjects")
        form = page.locator("#subject-create")
        form.wait_for()
        form.get_by_label("企业名称").fill("苏州某某食品有限公司")
        form.get_by_label("统一社会信用代码").fill("91320508MA1XR6H1P8")  # wrong check character
        form.get_by_role("button", name="登记").click()
        page.wait_for_function("() => document.querySelector('#subject-create [role=alert]').textContent.length > 0")
        assert "校验" in form.locator("[role=alert]").inner_text()
        csv_file = tmp_path / "subjects.csv"
        from cloud.registry.uscc import make

        csv_file.write_text(
            f"企业名称,统一社会信用代码,住所\n苏州平江食品店,{make('92320508MA1YLJ0K1')},平江路 1 号\n坏行,123,无\n",
            encoding="utf-8",
        )
        page.locator("#subject-import-file").set_input_files(str(csv_file))
        page.locator("#subject-import").get_by_role("button", name="上传并导入").click()
        result = page.locator("#subject-import-result")
        result.locator("table").wait_for()
        text = result.inner_text()
        assert "导入 1 行" in text and "第 3 行" in text
        bad = tmp_path / "bad.csv"
        bad.write_bytes(b'\xe4\xbc\x81\xe4\xb8\x9a\xe5\x90\x8d\xe7\xa7\xb0,uscc\n"unterminated,x\n')
        page.locator("#subject-import-file").set_input_files(str(bad))
        page.locator("#subject-import").get_by_role("button", name="上传并导入").click()
        page.locator("#subject-import-error").wait_for()
        assert "行" in page.locator("#subject-import-error").inner_text()
    finally:
        context.close()


def test_lists_search_and_export_xlsx_and_count(county: CountyWorld, browser: Any) -> None:
    from openpyxl import load_workbook

    base = county.cloud.base
    context, page = new_page(browser)
    try:
        login(page, base, "/", "wangqiang")
        page.wait_for_selector("nav")
        page.goto(f"{base}/#/list/clues")
        page.locator("#list-table tbody tr").first.wait_for()
        assert "共 2 条" in page.locator("#list-count").inner_text()
        page.get_by_label("关键词").fill("面馆")
        page.locator("#l-search").click()
        page.wait_for_function("() => document.querySelector('#list-count').textContent.startsWith('共 1 条')")
        assert "老街面馆" in page.locator("#list-table").inner_text()
        with page.expect_download() as info:
            page.locator("#list-export").click()
        path = info.value.path()
        ws = load_workbook(io.BytesIO(Path(path).read_bytes()))["线索"]
        assert ws.max_row == 2 and ws.cell(row=1, column=1).value == "线索编号"
        assert "老街面馆" in str(ws.cell(row=2, column=2).value)
        page.goto(f"{base}/#/stats/tasks")
        page.locator("#stat-total").wait_for()
        assert "1 条" in page.locator("#stat-total").inner_text()
        assert "平江市场监督管理所" in page.locator("#stat-department").inner_text()
    finally:
        context.close()


def test_an_empty_county_subjects_page_says_what_to_do(browser: Any, tmp_path: Path) -> None:
    with live_cloud(tmp_path) as cloud:
        context, page = new_page(browser)
        try:
            login(page, cloud.base, "/", "admin")
            page.wait_for_selector("nav")
            page.goto(f"{cloud.base}/#/admin/subjects")
            empty = page.locator("#subjects-empty")
            empty.wait_for()
            assert "还没有登记任何市场主体" in empty.inner_text()
            assert empty.get_by_role("link", name="批量导入 CSV").get_attribute("href") == "#subject-import"
        finally:
            context.close()
