"""The demo county is seeded through the cloud's real HTTP API (issue #19): several departments, ≥6 staff with
distinct duties and 执法证号, subjects whose USCCs the registry accepts, the demo sites with devices; dispatch picks
the jurisdiction's inspectors, skips the recused one and never the system administrator; the county's [bureau]
section numbers the documents."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import Session

from cloud.workflow import staffing
from cloud.workflow.config import workflow_rules
from cloud.workflow.service import Invalid
from cloud.workflow.states import Role as Duty
from sentinel_cli import county as county_seed
from sentinel_cli.demo import COUNTY_FILE, Api, staff_lines
from tests.cloud.web.conftest import ADMIN_PASSWORD, LiveCloud, live_cloud


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveCloud, county_seed.Seeded]]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SENTINEL_COUNTY_FILE", str(COUNTY_FILE))
        workflow_rules.cache_clear()
        with live_cloud(tmp_path_factory.mktemp("county")) as cloud:
            api = Api(cloud.base)
            api.login("admin", ADMIN_PASSWORD)
            yield cloud, county_seed.seed(api, county_seed.load(COUNTY_FILE), "Gusu-test-pass-9")
    workflow_rules.cache_clear()


def test_demo_county_is_a_realistic_county(seeded: tuple[LiveCloud, county_seed.Seeded]) -> None:
    cloud, out = seeded
    assert len(out.departments) >= 3
    admin = cloud.client()
    staff = {s["username"]: s for s in admin.get("/staff").json()}
    people = [s for name, s in staff.items() if name != "admin"]
    assert len(people) >= 6
    assert len({tuple(s["duties"]) for s in people}) >= 5, "distinct duties"
    assert all(s["cert_no"] and s["department_id"] for s in people)
    assert {"inspector", "dispatcher", "department_head", "legal_reviewer", "bureau_head"} <= {
        d for s in people for d in s["duties"]
    }
    subjects = admin.get("/registry/subjects").json()
    subjects = subjects["data"] if isinstance(subjects, dict) else subjects
    assert len(subjects) == 3 and all(len(s["uscc"]) == 18 for s in subjects)
    site = admin.get("/registry/sites/pharmacy-01").json()
    assert site["subject_id"] == out.subjects["renhe"] and site["address"]
    devices = admin.get("/registry/sites/pharmacy-01/devices").json()
    assert {d["name"] for d in devices} == {"药品冷藏柜 1 号", "常温库"}
    # a staff login works with the printed password
    cloud.client("lihua", "Gusu-test-pass-9").get("/workflow/me").raise_for_status()
    admin.close()


def test_dispatch_candidates_follow_jurisdiction_recusal_and_never_the_admin(
    seeded: tuple[LiveCloud, county_seed.Seeded],
) -> None:
    cloud, out = seeded
    with Session(cloud.app.state.engine) as session:
        picked = staffing.pick(
            session,
            duty=Duty.INSPECTOR,
            count=2,
            department_id=out.departments["gusu-pingjiang"],
            subject_id=out.subjects["renhe"],
        )
        # 钱峰 is recused for the pharmacy; 刘洋/赵婷 belong to another 所; admin is not staff
        assert {m.actor.name for m in picked} == {"李华", "张敏"}
        with pytest.raises(Invalid, match="系统管理员不参与派发"):
            staffing.pick(
                session,
                duty=Duty.INSPECTOR,
                count=2,
                department_id=out.departments["gusu-pingjiang"],
                subject_id=out.subjects["renhe"],
                explicit=[1, out.users["lihua"]],
            )
        assert "admin" not in {a.username for a in staffing.directory(session, Duty.INSPECTOR)}


def test_the_countys_bureau_numbers_and_signs_documents(seeded: tuple[LiveCloud, county_seed.Seeded]) -> None:
    bureau = workflow_rules().bureau
    assert bureau.agency == "苏州市姑苏区市场监督管理局"
    assert bureau.doc_no("rectification_order", 2026, 1) == "姑苏市监责改〔2026〕001号"
    assert bureau.doc_no("inspection_record", 2026, 12) == "姑苏市监检〔2026〕012号"


def test_the_banner_names_duties_in_the_consoles_words(seeded: tuple[LiveCloud, county_seed.Seeded]) -> None:
    """The demo banner lists every seeded login with post and duties as a person reads them (受理员、研判员 …, from
    the cloud's label vocabulary over HTTP), not the duty codes (``intake_clerk``) a stranger cannot read."""
    cloud, _ = seeded
    api = Api(cloud.base)
    api.login("admin", ADMIN_PASSWORD)
    staff = county_seed.load(COUNTY_FILE)["staff"]
    lines = staff_lines(staff, api.get("/api/v1/console/labels")["duties"])
    assert len(lines) == len(staff)
    codes = {d for person in staff for d in person["duties"]}
    assert not [line for line in lines if any(code in line for code in codes)], lines
    chenli = next(line for line in lines if line.startswith("chenli"))
    assert "陈丽" in chenli and "指挥中心受理调度员" in chenli
    assert {"受理员", "研判员", "指挥调度员"} <= set(chenli.split("（")[1].rstrip("）").split("、"))
