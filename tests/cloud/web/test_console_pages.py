"""The PC console's pages in headless Chromium on the seeded demo county (issue #19).

No raw code reaches a person's screen ("Chinese labels everywhere"): headless Chromium walks every
console page of the seeded demo county (with a complaint dispatched to two named inspectors, checked in, its
checklist submitted with a failed item, and a report carried to a case) and fails when the visible text shows

* a dotted event code (``task.assessed``) or a ``site/sensor.metric`` key (``pharmacy-01/fridge1.temperature``),
* any lowercase ASCII word: an English enum value (``accepted``, ``clue_collection``, ``complaint``), a login name
  (``lisi``), a site or device id (``pharmacy-01``), an analysis fact (``kind=complaint``).

The other pages a person reads are walked too, after a drug-fridge alarm (a minor rate-of-change alert, then the
critical 9.3 ℃ one) joined the pharmacy's clue: the phone (notifications, task list, task detail; the notification
says 紧急 with the place, address, value and limit), the map, the kiosk (form, receipt, progress lookup), the big
screen and the board, whose live alert list and toast name the place (场所·设备), not the site id. A kiosk report about
the same pharmacy is suggested on its clue page and merged into the fridge clue; one's own dispatch brings no "new
activity" toast.

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

pytestmark = [pytest.mark.browser, pytest.mark.slow]  # one seeded county served to Chromium: ~2 min for the module


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
            assert "还没有在册的市场主体" in empty.inner_text()
            assert empty.get_by_role("link", name="批量导入 CSV").get_attribute("href") == "#subject-import"
        finally:
            context.close()


# ---------------------------------------------------------------- every other page a person reads (issue #19 item 6)
# These run after the console walk above (file order): their alerts and clues would change its counts.
FRIDGE = "仁和大药房人民路店·药品冷藏柜 1 号温度"
STORE = "仁和大药房人民路店·常温库湿度"


def raise_alert(county: CountyWorld, device: str, sensor: str, rule: str, severity: str, value: float, limit: float,
                unit: str, message: str) -> int:  # fmt: skip
    """An alert of the pharmacy's agent, as the ingest applies it; returns its clue."""
    from cloud.alerts import AlertSignal, apply_signal
    from cloud.core.db import utcnow, writer
    from protocols import AlertPhase

    now = utcnow()
    with Session(writer(county.cloud.app.state.engine)) as session:
        clue = apply_signal(
            session,
            AlertSignal(
                site_id="pharmacy-01", device_id=device, rule_id=rule, phase=AlertPhase.RAISE, severity=severity,
                category="drug_storage", message=message, ts=now, started_at=now, agent_id="edge-pharmacy",
                sensor_id=sensor, value=value, limit=limit, unit=unit,
            ),
        )  # fmt: skip
        session.commit()
    from cloud.workflow.clues import ClueSource

    with Session(county.cloud.app.state.engine) as session:
        source = session.exec(select(ClueSource).order_by(ClueSource.id.desc())).first()  # type: ignore[union-attr]
        assert source is not None, clue
        return source.clue_id


@pytest.fixture(scope="module")
def fridge_clue(county: CountyWorld) -> int:
    """The headline: a minor rate-of-change alert, then the critical 9.3 ℃ alarm (limit 8 ℃) on the same fridge."""
    raise_alert(county, "fridge1", "fridge1.temperature", "temp_rate", "minor", 6.1, 2.0, "°C", "温度上升过快")
    return raise_alert(county, "fridge1", "fridge1.temperature", "temp_high", "critical", 9.3, 8.0, "°C",
                       "药品冷藏柜 1 号温度 9.3 ℃，超过冷藏上限 8 ℃")  # fmt: skip


def record_toasts(page: Any) -> None:
    """Every toast the page shows, kept in ``window.__toasts`` (a toast removes itself after a few seconds)."""
    page.evaluate(
        """() => { window.__toasts = [];
          new MutationObserver((ms) => { for (const m of ms) for (const n of m.addedNodes)
            if (n.classList && n.classList.contains('toast')) window.__toasts.push(n.textContent); })
          .observe(document.body, { childList: true, subtree: true }); }"""
    )


def test_the_live_feed_names_the_place_on_the_board_and_the_big_screen(county: CountyWorld, browser: Any) -> None:
    base = county.cloud.base
    context, board = new_page(browser)
    try:
        login(board, base, "/", "wangqiang")
        board.get_by_text("实时：已连接").wait_for()
        record_toasts(board)
        screen = context.new_page()
        screen.set_viewport_size({"width": 1920, "height": 1080})
        screen.goto(f"{base}/screen/")  # the same login (token of this browser context)
        screen.wait_for_function("() => document.querySelector('#root')?.dataset.ready === '1'")
        screen.get_by_text("实时：已连接").wait_for()
        raise_alert(
            county, "store1", "store1.humidity", "rh_high", "major", 81, 75, "%RH", "常温库湿度 81 %RH，超过上限 75 %RH"
        )
        item = board.locator("#live-list li", has_text=STORE)
        item.wait_for()
        board.wait_for_function("() => window.__toasts.some((t) => t.startsWith('新告警：'))")
        toasts = board.evaluate("() => window.__toasts")
        assert any(t.startswith(f"新告警：{STORE}") for t in toasts), toasts
        assert "pharmacy-01" not in item.inner_text() and "重要" in item.inner_text()
        screen.locator("#feed li", has_text=STORE).wait_for()
        assert "pharmacy-01" not in screen.inner_text("#feed")
        # opened afterwards, the board lists the alerts that are open (not "no alert since the page opened")
        board.reload()
        board.locator("#live-list li", has_text=STORE).wait_for()
        assert not raw_codes(board.inner_text("#live-list")), board.inner_text("#live-list")
        for where, page in (("线索看板", board), ("态势大屏", screen)):
            assert not raw_codes(visible_text(page)), (where, raw_codes(visible_text(page)))
    finally:
        context.close()


def test_the_phone_shows_the_urgent_notification_with_its_body(
    county: CountyWorld, fridge_clue: int, browser: Any
) -> None:
    """李华 (on duty at 平江所, a designated contact of the pharmacy) reads the drug-fridge alarm on the phone:
    紧急 (the clue's severity once the 9.3 ℃ alarm joined the minor one), the place, the address, the value and the
    limit; and the phone's pages show no raw code."""
    from cloud.notify.models import Incident

    def upgraded() -> bool:
        with Session(county.cloud.app.state.engine) as session:
            found = session.exec(select(Incident).where(Incident.clue_id == fridge_clue)).first()
            return found is not None and found.severity == "critical"

    from tests.cloud.web.conftest import poll

    poll(upgraded, 30, "the fridge notification upgraded to critical")
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", is_mobile=True)
    try:
        page = context.new_page()
        page.goto(f"{base_of(county)}/m/#/notices")
        page.get_by_label("用户名").fill("lihua")
        page.get_by_label("密码").fill(STAFF_PASSWORD)
        page.get_by_role("button", name="登录").click()
        note = page.locator("article.item", has_text=FRIDGE).first
        note.wait_for()
        text = note.inner_text()
        assert "紧急" in text and "次要" not in text, text
        assert "仁和大药房人民路店（地址：苏州市姑苏区人民路 1188 号）" in text, text
        assert "药品冷藏柜 1 号温度 9.3 ℃，限值 8 ℃" in text and "处置期限" in text, text
        assert (
            note.get_by_role("link", name="查看线索 →")
            .get_attribute("href", timeout=5000)
            .endswith(f"/#/clue/{fridge_clue}")
        )
        problems = {}
        for route, ready in (
            ("#/notices", "article.item"),
            ("#/tasks", "a.item"),
            (f"#/task/{county.ids['task_id']}", "#task-state"),
        ):
            page.goto(f"{base_of(county)}/m/{route}")
            page.wait_for_selector(ready)
            page.wait_for_load_state("networkidle")
            if codes := raw_codes(visible_text(page)):
                problems[route] = codes
        assert not problems, f"raw codes on the phone: {problems}"
    finally:
        context.close()


def base_of(county: CountyWorld) -> str:
    return county.cloud.base


def test_map_and_kiosk_pages_show_no_raw_code(county: CountyWorld, fridge_clue: int, browser: Any) -> None:
    base = county.cloud.base
    context, page = new_page(browser)
    problems: dict[str, list[str]] = {}

    def check(where: str) -> None:
        page.wait_for_load_state("networkidle")
        if codes := raw_codes(visible_text(page)):
            problems[where] = codes

    try:
        login(page, base, "/", "wangqiang")
        page.goto(f"{base}/map/")
        page.wait_for_function("() => document.querySelector('#map-root')?.dataset.ready === '1'")
        check("/map/")
        kiosk = context.new_page()
        kiosk.set_viewport_size({"width": 1080, "height": 1400})
        page = kiosk
        kiosk.goto(f"{base}/kiosk/")
        kiosk.get_by_role("button", name="提交").wait_for()
        check("/kiosk/ 表单")
        kiosk.get_by_label("类型").select_option("report")
        kiosk.get_by_label("匿名举报（仅举报可匿名）").check()
        kiosk.get_by_label("问题类别").select_option("consumer_dispute")
        kiosk.get_by_label("被投诉（举报）经营者名称").fill("苏州仁和大药房有限公司")
        kiosk.get_by_label("经营者地址").fill("苏州市姑苏区人民路 1188 号")
        kiosk.get_by_label("您的诉求").fill("要求核查")
        kiosk.get_by_label("事实经过").fill("药店冷藏柜不制冷，冷藏药品放在常温货架上出售")
        kiosk.get_by_role("button", name="提交").click()
        kiosk.locator("#receipt-no").wait_for()
        check("/kiosk/ 回执")
        code = kiosk.locator("#verify-code").inner_text().strip()
        kiosk.get_by_role("button", name="查询办理进度").click()
        kiosk.get_by_label("查询码（6 位数字）").fill(code)
        kiosk.get_by_role("button", name="查询", exact=True).click()
        kiosk.locator("#p-stage").wait_for()
        check("/kiosk/ 办理进度")
        assert not problems, f"raw codes on the map and kiosk pages: {problems}"
    finally:
        context.close()


def test_a_report_about_the_fridge_pharmacy_is_suggested_and_merged(
    county: CountyWorld, fridge_clue: int, browser: Any
) -> None:
    """The kiosk report above names the same pharmacy as the open fridge clue: its page suggests the fridge clue
    (同一市场主体) with 并入该线索; the merge is journaled and the report's clue is merged into it."""
    from cloud.workflow.clues import Clue

    base = county.cloud.base
    with Session(county.cloud.app.state.engine) as session:
        report = session.exec(
            select(Clue).where(Clue.kind == "report", Clue.channel == "walk_in").order_by(Clue.id.desc())  # type: ignore[union-attr]
        ).first()
    assert report is not None and report.id != fridge_clue
    context, page = new_page(browser)
    try:
        login(page, base, "/", "chenli")  # 陈丽: intake clerk and dispatcher, may merge
        page.goto(f"{base}/#/clue/{report.id}")
        card = page.locator("#similar-clues")
        card.wait_for()
        suggestion = card.locator("li", has=page.locator(f"[data-merge-into='{fridge_clue}']"))
        suggestion.wait_for(timeout=10_000)
        assert "同一市场主体" in suggestion.inner_text(), card.inner_text()
        suggestion.get_by_role("button", name="并入该线索").click()
        page.wait_for_url(f"**/#/clue/{fridge_clue}")
        page.locator("#clue-timeline li").first.wait_for()
        with Session(county.cloud.app.state.engine) as session:
            merged = session.get(Clue, report.id)
            assert merged is not None and merged.state == "merged" and merged.merged_into_id == fridge_clue
            absorbed = session.exec(
                select(journal.JournalEvent).where(
                    journal.JournalEvent.action == "clue.absorbed", journal.JournalEvent.target_id == str(fridge_clue)
                )
            ).all()
        assert [e.payload["merged_clue"] for e in absorbed] == [report.id]
        page.reload()  # the fridge clue's journal shows the merge, in words
        page.locator("#clue-timeline li", has_text="并入线索").wait_for()
        assert "陈丽" in page.locator("#clue-timeline li", has_text="并入线索").inner_text()
    finally:
        context.close()


def test_ones_own_dispatch_brings_no_new_activity_toast(county: CountyWorld, browser: Any) -> None:
    """The issue's bullet: after dispatching from the clue page, the page said "该线索有新动态，刷新查看" about the
    dispatcher's own action. The page waits until the live feed has brought the dispatch's own event."""
    base = county.cloud.base
    laojie = county.seeded.subjects["laojie"]
    with Session(county.cloud.app.state.engine) as session:
        from cloud.registry.models import MarketSubject

        subject = session.get(MarketSubject, laojie)
        assert subject is not None
    from tests.cloud.web.county_world import complaint

    order = complaint(
        subject.uscc, "12315-0009", category="consumer_dispute", respondent_name=subject.name,
        respondent_address=subject.address, facts="面馆拒绝退还预付卡余额", request="要求退款",
    )  # fmt: skip
    r = county.client("chenli").post("/clues/intake", json=order)
    assert r.status_code < 300, r.text
    clue_id = r.json()["clue"]["id"] if "clue" in r.json() else r.json()["clue_id"]
    context, page = new_page(browser)
    try:
        login(page, base, "/", "chenli")
        page.goto(f"{base}/#/clue/{clue_id}")
        page.locator("#dispatch-people input[name=assignee]").first.wait_for()
        page.get_by_text("实时：已连接").wait_for()
        record_toasts(page)
        page.locator("#dispatch-disposal").select_option("inspect")
        page.locator("#dispatch-button").click()
        page.locator("#clue-state").filter(has_text="已派发").wait_for()
        with Session(county.cloud.app.state.engine) as session:
            created = session.exec(
                select(journal.JournalEvent).where(journal.JournalEvent.action == "task.created")
                .order_by(journal.JournalEvent.id.desc())  # type: ignore[union-attr]
            ).first()  # fmt: skip
        assert created is not None and created.payload["clue_id"] == clue_id
        page.wait_for_function(f"() => Number(document.body.dataset.liveEvent || 0) >= {created.id}")
        toasts = page.evaluate("() => window.__toasts")
        assert any(t.startswith("已派发检查任务") for t in toasts), toasts
        assert not [t for t in toasts if "新动态" in t], toasts
    finally:
        context.close()
    with Session(county.cloud.app.state.engine) as session:  # the later walks' journal is labelled too
        actions = set(session.exec(select(journal.JournalEvent.action)).all())
    events = vocabulary()["events"]
    assert not {a for a in actions if a not in events}, sorted(a for a in actions if a not in events)
