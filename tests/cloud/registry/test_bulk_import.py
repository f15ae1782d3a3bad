"""All-or-nothing CSV imports of staff and of sites with devices, over real HTTP (uvicorn on 127.0.0.1).

One cloud for the module, seeded with the demo county's departments and one subject. Proves: a good file previews
(dry run writes nothing) and imports; the imported account logs in with its one-time password; re-importing the
same file changes nothing; a file with bad rows is refused whole (422) with every error naming line and column in
Chinese -- an administrator row with a business duty with the reason of duties.toml's rule; a malformed file is
refused naming line and column; only the roles of ``[administration]`` may import.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloud.workflow.duties import duty_rules
from tests.cloud.web.conftest import LiveCloud, live_cloud

SAMPLES = Path(__file__).parents[3] / "firmware-config" / "samples"
PASSWORD = "Passw0rd!long"
RENHE = "91320508MA1XR6H1P7"  # the demo county's pharmacy (valid GB 32100 check character)


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCloud]:
    with live_cloud(tmp_path_factory.mktemp("bulk-import")) as c:
        admin = c.client()
        for code, name in (
            ("gusu-pingjiang", "平江市场监督管理所"),
            ("gusu-canglang", "沧浪市场监督管理所"),
            ("gusu-legal", "法制科"),
        ):
            admin.post("/registry/departments", json={"code": code, "name": name}).raise_for_status()
        admin.post("/registry/subjects", json={"name": "苏州仁和大药房有限公司", "uscc": RENHE}).raise_for_status()
        admin.post(
            "/users", json={"username": "chief", "password": PASSWORD, "full_name": "周科长", "role": "supervisor"}
        ).raise_for_status()
        admin.close()
        yield c


@pytest.fixture(scope="module")
def admin(cloud: LiveCloud) -> Iterator[httpx.Client]:
    c = cloud.client()
    yield c
    c.close()


def upload(client: httpx.Client, path: str, data: bytes | str, **params: Any) -> httpx.Response:
    body = data.encode("utf-8") if isinstance(data, str) else data
    return client.post(path, files={"file": ("import.csv", body, "text/csv")}, params=params)


def test_staff_file_previews_imports_logs_in_and_reimports_unchanged(cloud: LiveCloud, admin: httpx.Client) -> None:
    data = (SAMPLES / "staff.csv").read_bytes()
    preview = upload(admin, "/registry/staff/import", data, dry_run="true")
    assert preview.status_code == 200, preview.text
    assert preview.json()["imported"] is False and preview.json()["counts"]["user"]["created"] == 4
    assert preview.json()["initial_passwords"] == []
    assert "zhoujie" not in {s["username"] for s in admin.get("/staff").json()}  # the dry run wrote nothing

    done = upload(admin, "/registry/staff/import", data.decode().encode("gb18030"))  # GBK from Excel as well
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["imported"] is True and body["counts"]["staff"]["created"] == 4
    staff = {s["username"]: s for s in admin.get("/staff").json()}
    assert staff["zhoujie"]["duties"] == ["enforcement_officer", "inspector"]
    assert staff["zhoujie"]["cert_no"] == "32050819000214" and staff["zhoujie"]["name"] == "周杰"
    assert staff["mashan"]["duties"] == ["legal_reviewer"]
    departments = {d["code"]: d["id"] for d in admin.get("/registry/departments").json()}
    assert staff["xulan"]["department_id"] == departments["gusu-canglang"]
    once = {p["username"]: p["password"] for p in body["initial_passwords"]}
    assert set(once) == {"zhoujie", "xulan", "heping", "mashan"}
    person = cloud.client("zhoujie", once["zhoujie"])  # the one-time password works
    assert person.get("/workflow/me").json()["duties"] == ["enforcement_officer", "inspector"]
    person.close()

    again = upload(admin, "/registry/staff/import", data)
    assert again.status_code == 200, again.text
    counts = again.json()["counts"]
    assert counts["user"] == {"created": 0, "updated": 0, "unchanged": 4}
    assert counts["staff"] == {"created": 0, "updated": 0, "unchanged": 4}
    assert again.json()["initial_passwords"] == []

    changed = data.decode().replace("32050819000223", "32050819000299")
    update = upload(admin, "/registry/staff/import", changed).json()
    assert update["counts"]["staff"]["updated"] == 1
    assert {s["username"]: s for s in admin.get("/staff").json()}["xulan"]["cert_no"] == "32050819000299"


def test_a_staff_file_with_bad_rows_is_refused_whole(admin: httpx.Client) -> None:
    rule = duty_rules().administrator_rule
    data = (
        "登录名,姓名,账号角色,部门编码,执法证号,业务职责\n"
        "goodone,好人,执法检查人员,gusu-pingjiang,32050819000401,检查人员\n"
        "auditor2,审计员,审计管理员,,,检查人员\n"  # an administrator with a business duty
        "nodep,无部门,执法检查人员,nowhere,,检查人员\n"
        "badduty,乱职责,执法检查人员,,,飞行员\n"
        "toomuch,越权,执法检查人员,,,部门负责人\n"  # bureau_head is not grantable to an inspector account
        ",无名,执法检查人员,,,\n"
        "newsec,新安全员,安全管理员,,,\n"  # privileged roles are the security admin's to grant
    )
    resp = upload(admin, "/registry/staff/import", data)
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["imported"] is False and "未写入任何数据" in body["detail"]
    errors = {(e["line"], e["column"]): e["reason"] for e in body["errors"]}
    assert rule.zh in errors[(3, "业务职责")] and rule.id in errors[(3, "业务职责")]
    assert "部门编码 nowhere 不存在" in errors[(4, "部门编码")]
    assert "未知的业务职责“飞行员”" in errors[(5, "业务职责")]
    assert duty_rules().grant_rule.zh in errors[(6, "业务职责")]
    assert errors[(7, "登录名")] == "登录名为空"
    assert "安全管理员" in errors[(8, "账号角色")]
    assert sorted(line for line, _ in errors) == [3, 4, 5, 6, 7, 8]
    assert "goodone" not in {s["username"] for s in admin.get("/staff").json()}  # all or nothing


def test_sites_with_devices_points_and_sensors_import_and_reimport_unchanged(admin: httpx.Client) -> None:
    data = (SAMPLES / "sites_devices.csv").read_bytes()
    preview = upload(admin, "/registry/sites/import", data, dry_run="true")
    assert preview.status_code == 200, preview.text
    assert preview.json()["counts"]["site"]["created"] == 2
    assert admin.get("/registry/sites/pharmacy-02").status_code == 404

    done = upload(admin, "/registry/sites/import", data)
    assert done.status_code == 200, done.text
    counts = done.json()["counts"]
    assert counts["site"]["created"] == 2 and counts["device"]["created"] == 3
    assert counts["sensor"]["created"] == 4 and counts["point"]["created"] == 2
    site = admin.get("/registry/sites/pharmacy-02").json()
    assert site["name"] == "仁和大药房观前店" and site["category"] == "drug"
    subjects = admin.get("/registry/subjects", params={"q": RENHE}).json()
    assert site["subject_id"] == subjects[0]["id"]
    sensors = {s["sensor_id"]: s for s in admin.get("/registry/sites/pharmacy-02/sensors").json()}
    points = {p["id"]: p for p in admin.get("/registry/sites/pharmacy-02/points").json()}
    fridge = points[sensors["fridge2.temperature"]["measuring_point_id"]]
    assert fridge["location"] == "冷藏柜 2 号中层" and fridge["profile"] == "drug_cold"
    assert (fridge["temp_min"], fridge["temp_max"]) == (2.0, 8.0)
    assert sensors["fridge2.humidity"]["measuring_point_id"] == fridge["id"]
    assert sensors["fridge2.humidity"]["quantity"] == "humidity"
    assert sensors["store2.temperature"]["device_id"] == "store2"

    again = upload(admin, "/registry/sites/import", data)
    assert again.status_code == 200, again.text
    for entity, per in again.json()["counts"].items():
        assert per["created"] == per["updated"] == 0, (entity, per)


def test_a_sites_file_with_bad_rows_is_refused_whole_naming_line_and_column(admin: httpx.Client) -> None:
    data = (
        "场所编号,场所名称,监管领域,市场主体统一社会信用代码,设备编号,传感器编号,测量量,测点位置,温度下限,温度上限\n"
        "shop-ok,好场所,食品,,d1,d1.t,温度,,,\n"
        "shop-bad,坏场所,化工,,,,,,,\n"
        "shop-3,无主体,食品,91320508MA1XR6H1P8,,,,,,\n"  # wrong check character
        "shop-4,倒置,药品,,d4,d4.t,温度,冷柜,8,2\n"
        "Shop 5,空格编号,食品,,,,,,,\n"
        "shop-6,,食品,,,,,,,\n"
        "shop-ok,另一个名字,食品,,,,,,,\n"
        "shop-7,温度,食品,,d7,d7.t,气压,,,\n"
        "shop-8,数字,食品,,,,,冷柜,abc,\n"
    )
    resp = upload(admin, "/registry/sites/import", data)
    assert resp.status_code == 422, resp.text
    errors = {(e["line"], e["column"]): e["reason"] for e in resp.json()["errors"]}
    assert "监管领域应为" in errors[(3, "监管领域")]
    assert "校验码" in errors[(4, "市场主体统一社会信用代码")]
    assert "下限高于上限" in errors[(5, "温度下限")]
    assert (6, "场所编号") in errors
    assert "须填写场所名称" in errors[(7, "场所名称")]
    assert "第 2 行" in errors[(8, "场所名称")]
    assert "测量量应为" in errors[(9, "测量量")]
    assert "应为数字" in errors[(10, "温度下限")]
    assert admin.get("/registry/sites/shop-ok").status_code == 404  # all or nothing


def test_a_malformed_file_is_refused_naming_line_and_column(admin: httpx.Client) -> None:
    resp = upload(admin, "/registry/sites/import", '场所编号,场所名称\nok-1,好\nok-2,"未闭合\n')
    assert resp.status_code == 422 and "第 3 行" in resp.json()["detail"] and "引号未闭合" in resp.json()["detail"]
    resp = upload(admin, "/registry/staff/import", "姓名,执法证号\n某人,1\n")
    assert resp.status_code == 422 and "缺少必需的列：登录名" in resp.json()["detail"]
    resp = upload(admin, "/registry/staff/import", "登录名,姓名,手机号\nx1,某人,138\n")
    assert resp.status_code == 422 and "无法识别的列：手机号" in resp.json()["detail"]


def test_only_the_roles_of_the_administration_rules_may_import(cloud: LiveCloud) -> None:
    areas = duty_rules().administration
    supervisor = cloud.client("chief", PASSWORD)
    for area, path, sample in (
        ("staff", "/registry/staff/import", "staff.csv"),
        ("sites", "/registry/sites/import", "sites_devices.csv"),
    ):
        resp = upload(supervisor, path, (SAMPLES / sample).read_bytes(), dry_run="true")
        if "supervisor" in areas[area].roles:
            assert resp.status_code == 200, (area, resp.text)
        else:
            assert resp.status_code == 403 and areas[area].zh in resp.json()["detail"], (area, resp.text)
    supervisor.close()
