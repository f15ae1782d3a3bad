"""A seeded demo county with work in every state, built through the cloud's HTTP API, for browser tests that walk
the console's pages (the raw-code walk, the whole-flow test).

The county comes from ``firmware-config/demo/county.toml`` (seeded by :mod:`sentinel_cli.county`, as ``sentinel
demo`` does); the work on top: a 12315 complaint about the pharmacy analysed and dispatched to two named inspectors,
accepted, checked in, its checklist filled (one item failed) and submitted; a second complaint carried to a case.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sentinel_cli import county as county_seed
from sentinel_cli.demo import COUNTY_FILE, Api
from tests.cloud.web.conftest import ADMIN_PASSWORD, LiveCloud, live_cloud

STAFF_PASSWORD = "Gusu-test-pass-9"


@dataclass
class CountyWorld:
    cloud: LiveCloud
    seeded: county_seed.Seeded
    ids: dict[str, Any] = field(default_factory=dict)

    def client(self, username: str = "admin") -> Any:
        return self.cloud.client(username, ADMIN_PASSWORD if username == "admin" else STAFF_PASSWORD)


def complaint(uscc: str, no: str, **overrides: object) -> dict[str, object]:
    order: dict[str, object] = {
        "channel": "hotline_12315",
        "kind": "complaint",
        "external_no": no,
        "category": "drug_storage",
        "complainant_name": "张某",
        "complainant_phone": "13800001234",
        "complainant_address": "苏州市道前街 1 号",
        "respondent_name": "苏州仁和大药房有限公司",
        "respondent_uscc": uscc,
        "respondent_address": "苏州市姑苏区人民路 100 号",
        "request": "要求核查冷藏药品储存条件",
        "facts": "冷藏柜显示 12 ℃",
    }
    return {**order, **overrides}


@contextlib.contextmanager
def county_world(tmp: Path, *, with_work: bool = True, **cloud_settings: Any) -> Iterator[CountyWorld]:
    """The demo county on a live cloud; ``cloud_settings`` override the cloud's settings (e.g. ingest from a broker)."""
    from cloud.workflow.config import workflow_rules

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SENTINEL_COUNTY_FILE", str(COUNTY_FILE))
        mp.setenv("SENTINEL_NOTIFY_MQTT_ENABLED", "false")
        workflow_rules.cache_clear()
        try:
            with live_cloud(tmp, **cloud_settings) as cloud:
                api = Api(cloud.base)
                api.login("admin", ADMIN_PASSWORD)
                world = CountyWorld(cloud, county_seed.seed(api, county_seed.load(COUNTY_FILE), STAFF_PASSWORD))
                if with_work:
                    add_work(world)
                yield world
        finally:
            workflow_rules.cache_clear()


def _ok(r: Any) -> Any:
    assert r.status_code < 300, f"{r.request.method} {r.request.url}: {r.status_code} {r.text}"
    return r.json()


def add_work(world: CountyWorld) -> None:
    admin = world.client()
    subjects = _ok(admin.get("/registry/subjects"))
    subjects = subjects["data"] if isinstance(subjects, dict) else subjects
    renhe = next(s for s in subjects if s["id"] == world.seeded.subjects["renhe"])
    clerk, lihua, zhangmin = world.client("chenli"), world.client("lihua"), world.client("zhangmin")
    intake = _ok(clerk.post("/clues/intake", json=complaint(renhe["uscc"], "12315-0001")))
    clue_id = intake["clue"]["id"] if "clue" in intake else intake["clue_id"]
    sent = _ok(
        clerk.post(
            f"/clues/{clue_id}/dispatch",
            json={"disposal": "inspect", "assignees": [world.seeded.users["lihua"], world.seeded.users["zhangmin"]]},
        )
    )
    task = sent["task"]
    tid = task["id"]
    for who, action, extra in (
        (lihua, "accept", {}),
        (lihua, "check_in", {"check_in": {"lat": 31.3162, "lon": 120.6305, "note": "门店门口"}}),
    ):
        _ok(who.post(f"/tasks/{tid}/transitions", json={"action": action, **extra}))
    items = task["items"]
    for n, code in enumerate(items):
        outcome = "fail" if n == 0 else "pass"
        _ok(lihua.put(f"/tasks/{tid}/results/{code}", json={"outcome": outcome, "note": "冷藏柜实测 12 ℃"}))
    _ok(lihua.post(f"/tasks/{tid}/transitions", json={"action": "submit", "findings": "冷藏柜温度超标"}))
    del zhangmin
    laojie = next(s for s in subjects if s["id"] == world.seeded.subjects["laojie"])
    report = complaint(
        laojie["uscc"],
        "12315-0002",
        kind="report",
        category="food",
        respondent_name=laojie["name"],
        respondent_address=laojie["address"],
        facts="后厨使用过期食品原料",
        request="要求查处",
    )
    second = _ok(clerk.post("/clues/intake", json=report))
    clue2 = second["clue"]["id"] if "clue" in second else second["clue_id"]
    case = _ok(clerk.post(f"/clues/{clue2}/dispatch", json={"disposal": "open_case"}))
    world.ids.update(clue_id=clue_id, task_id=tid, clue2_id=clue2, case_id=(case.get("case") or {}).get("id"))
