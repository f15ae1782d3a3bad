"""Administration pages by account role, and the CSV imports and deactivation in the console (issue #19 item 1).

The expectation comes from ``[administration]`` of ``cloud/rules/duties.toml`` (never a hand list): for every page,
every account role not named there is refused each of the page's API actions (403, over real HTTP) and, in headless
Chromium, neither sees the 系统管理 entry nor the page (it reads a refusal instead); every role named there may use
them. In the page: a staff CSV with a bad row is refused whole with the row, the column and the rule's reason shown;
the good file previews and imports with the one-time passwords shown; a site is deactivated with a reason and
shown as such behind the filter.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloud.core.users import Role
from cloud.workflow.duties import admin_areas, duty_rules
from tests.cloud.web.conftest import ADMIN_PASSWORD, PASSWORD, LiveCloud, live_cloud

SAMPLES = Path(__file__).parents[3] / "firmware-config" / "samples"
#: one login per account role that can open the console (device accounts cannot)
LOGINS = {
    Role.ADMIN: "admin",
    Role.SECURITY_ADMIN: "sec",
    Role.AUDITOR: "aud",
    Role.SUPERVISOR: "chief",
    Role.INSPECTOR: "insp",
}
#: a selector each administration page shows once rendered for a role that may use it
PAGE_MARK = {
    "staff": "#staff-create",
    "departments": "form[aria-label=新增部门]",
    "subjects": "#subject-create",
    "sites": "#site-import",
}


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCloud]:
    with live_cloud(tmp_path_factory.mktemp("admin-roles")) as c:
        admin = c.client()
        for code, name in (
            ("gusu-pingjiang", "平江市场监督管理所"),
            ("gusu-canglang", "沧浪市场监督管理所"),
            ("gusu-legal", "法制科"),
        ):
            admin.post("/registry/departments", json={"code": code, "name": name}).raise_for_status()
        c.ids["department"] = admin.get("/registry/departments").json()[0]["id"]
        subject = admin.post(
            "/registry/subjects", json={"name": "苏州仁和大药房有限公司", "uscc": "91320508MA1XR6H1P7"}
        )
        subject.raise_for_status()
        c.ids["subject"] = subject.json()["id"]
        site = {"site_id": "pharmacy-01", "name": "仁和大药房人民路店", "category": "drug"}
        admin.post("/registry/sites", json=site).raise_for_status()
        admin.post("/registry/devices", json={"site_id": "pharmacy-01", "device_id": "fridge1"}).raise_for_status()
        admin.post(
            "/registry/sensors", json={"site_id": "pharmacy-01", "sensor_id": "t1", "device_id": "fridge1"}
        ).raise_for_status()

        def add(client: httpx.Client, username: str, role: str) -> int:
            body = {"username": username, "password": PASSWORD, "full_name": username.upper(), "role": role}
            r = client.post("/users", json=body)
            r.raise_for_status()
            return int(r.json()["id"])

        add(admin, "sec", "security_admin")  # bootstrap: the first security admin is the system admin's to create
        sec = c.client("sec", PASSWORD)
        add(sec, "aud", "auditor")
        sec.close()
        add(admin, "chief", "supervisor")
        add(admin, "insp", "inspector")
        c.users["dummy"] = add(admin, "dummy", "inspector")
        admin.close()
        yield c


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """As in test_console_pages: the module's one server grows its AnyIO worker pool while pages load (the server
    stops it at teardown); any other new thread is a leak."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
    assert not [t.name for t in leaked if t.name != "AnyIO worker thread"]


def password(username: str) -> str:
    return ADMIN_PASSWORD if username == "admin" else PASSWORD


def actions(cloud: LiveCloud) -> dict[str, list[tuple[str, str, dict[str, Any]]]]:
    """Each page's API actions, with bodies the page's roles get past the role check with (and no side effect
    except where noted): an invalid body answers 422 to them and the role check 403 to everyone else."""
    sid, site, dummy = cloud.ids["subject"], "pharmacy-01", cloud.users["dummy"]
    no_file: dict[str, Any] = {"files": {}}
    return {
        "staff": [
            ("PUT", f"/staff/{dummy}", {"json": {"duties": ["inspector"]}}),  # the one write: same duties again
            ("POST", "/registry/staff/import", no_file),
        ],
        "departments": [("POST", "/registry/departments", {"json": {}})],
        "subjects": [
            ("POST", "/registry/subjects", {"json": {}}),
            ("PATCH", f"/registry/subjects/{sid}", {"json": {"risk_grade": "Z"}}),
            ("POST", "/registry/subjects/import", no_file),
            ("POST", f"/registry/subjects/{sid}/deactivate", {"json": {}}),
            ("POST", f"/registry/subjects/{sid}/reactivate", {"json": {}}),
            ("POST", "/registry/licences", {"json": {}}),
        ],
        "sites": [
            ("POST", "/registry/sites", {"json": {}}),
            ("PATCH", f"/registry/sites/{site}", {"json": {"heartbeat_timeout_s": 1}}),
            ("POST", "/registry/sites/import", no_file),
            ("POST", "/registry/sites/positions/import", no_file),
            ("POST", f"/registry/sites/{site}/deactivate", {"json": {}}),
            ("POST", f"/registry/sites/{site}/reactivate", {"json": {}}),
            ("POST", "/registry/points", {"json": {}}),
            ("POST", "/registry/devices", {"json": {}}),
            ("POST", "/registry/sensors", {"json": {}}),
            ("PATCH", f"/registry/sites/{site}/sensors/t1", {"json": {"expected_interval_s": 0}}),
        ],
    }


def test_every_admin_action_is_refused_to_the_roles_duties_toml_does_not_name(cloud: LiveCloud) -> None:
    rules = duty_rules().administration
    table = actions(cloud)
    assert set(table) == set(rules)  # every page of the rules is exercised
    wrong: list[str] = []
    for role, username in LOGINS.items():
        client = cloud.client(username, password(username))
        for area, calls in table.items():
            allowed = role in rules[area].roles
            for method, path, kwargs in calls:
                r = client.request(method, path, **kwargs)
                if (r.status_code == 403) == allowed:
                    wrong.append(f"{role.value} {method} {path}: {r.status_code} {r.text[:120]}")
        client.close()
    assert not wrong, "\n".join(wrong)
    assert {r.value for r in rules["staff"].roles} == {"admin"}  # 三员分立: staff duties are the system admin's


def login(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password(username))
    page.get_by_role("button", name="登录").click()
    page.wait_for_selector("nav a[data-href]")


def new_page(browser: Any) -> tuple[Any, Any]:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    return context, context.new_page()


@pytest.mark.browser
@pytest.mark.slow  # five logins in Chromium, four pages each
def test_the_nav_and_each_page_follow_duties_toml(cloud: LiveCloud, browser: Any) -> None:
    for role, username in LOGINS.items():
        context, page = new_page(browser)
        try:
            login(page, cloud.base, username)
            mine = admin_areas(role.value)
            entry = page.locator("nav a", has_text="系统管理")
            assert entry.count() == (1 if mine else 0), role
            for area in duty_rules().administration:
                page.goto(f"{cloud.base}/#/admin/{area}")
                if area in mine:
                    page.locator(PAGE_MARK[area]).first.wait_for()
                    tabs = page.locator("nav[aria-label=管理分类] a").all_inner_texts()
                    assert len(tabs) == len(mine), (role, tabs)
                else:
                    zh = duty_rules().administration[area].zh
                    page.locator("#admin-refused", has_text=f"“{zh}”").wait_for()
                    assert page.locator("form").count() == 0, (role, area)
        finally:
            context.close()


@pytest.mark.browser
@pytest.mark.slow  # two uploads and a deactivation through the pages
def test_staff_import_shows_the_refused_row_then_imports_and_a_site_is_deactivated(
    cloud: LiveCloud, browser: Any, tmp_path: Path
) -> None:
    rule = duty_rules().administrator_rule
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "登录名,姓名,账号角色,部门编码,执法证号,业务职责\n"
        "zhoujie,周杰,执法检查人员,gusu-pingjiang,32050819000214,检查人员\n"
        "aud,AUD,审计管理员,,,检查人员\n",
        encoding="utf-8",
    )
    context, page = new_page(browser)
    try:
        login(page, cloud.base, "admin")
        page.goto(f"{cloud.base}/#/admin/staff")
        card = page.locator("#staff-import")
        card.wait_for()
        page.locator("#staff-import-file").set_input_files(str(bad))
        page.locator("#staff-import-run").click()
        page.locator("#staff-import-result table").wait_for()
        errors = page.locator("#staff-import-result table").inner_text()
        assert "第 3 行" in errors and "业务职责" in errors and rule.zh in errors
        assert "未写入任何数据" in page.locator("#staff-import-error").inner_text()

        page.locator("#staff-import-file").set_input_files(str(SAMPLES / "staff.csv"))
        page.locator("#staff-import-preview").click()
        page.locator("#staff-import-summary").wait_for()
        assert "预览（未写入）：共 4 行" in page.locator("#staff-import-summary").inner_text()
        page.locator("#staff-import-run").click()
        page.locator("#staff-import-result table[aria-label=初始密码]").wait_for()
        assert "周杰" in page.locator("#staff-import-result table").inner_text()

        page.goto(f"{cloud.base}/#/admin/sites")
        row = page.locator("table[aria-label=场所] tr", has_text="仁和大药房人民路店")
        row.get_by_role("button", name="停用").click()
        page.get_by_label("理由").fill("门店已停业")
        page.locator("#site-status-submit").click()
        page.locator("table[aria-label=场所] tr", has_text="仁和大药房人民路店").wait_for(state="detached")
        page.locator("#sites-show-deactivated").check()
        shown = page.locator("table[aria-label=场所] tr", has_text="仁和大药房人民路店")
        shown.wait_for()
        assert "已停用（门店已停业）" in shown.inner_text()
        shown.get_by_role("button", name="恢复启用").click()
        page.get_by_label("理由").fill("恢复营业")
        page.locator("#site-status-submit").click()
        page.locator("table[aria-label=场所] tr", has_text="在用").wait_for()
    finally:
        context.close()
    admin = cloud.client()
    staff = {s["username"]: s for s in admin.get("/staff").json()}
    admin.close()
    assert staff["zhoujie"]["cert_no"] == "32050819000214"
