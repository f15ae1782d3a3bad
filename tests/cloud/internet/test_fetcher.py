"""The page fetcher against a local shop web server (no internet): captures, screening, clues, refused items."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select

from cloud.core.db import utcnow
from cloud.evidence import EvidenceStore
from cloud.internet.fetchers import SourceConfig, load_sources, run_source
from cloud.internet.models import AdObservation, ScreeningHit
from cloud.rules.loader import RuleFileError
from cloud.workflow.clues import Clue
from tests.cloud.internet.shop_server import shop_server
from tests.utils.workflow_factories import World

SOURCES = """
[[sources]]
name = "bing"
url = "{base}/shop/bing"
format = "html"
platform = "示例商城"

[sources.ads]
select = "div.ad"
fields = {{ text = ".text", image_ref = "img@src", url = "a.link@href" }}
defaults = {{ goods_category = "food" }}

[sources.prices]
select = "li.goods"
fields = {{ goods = ".name", spec = ".spec", price = ".price", marked_price = ".marked" }}

[[sources]]
name = "ding"
url = "{base}/api/shop/ding"
format = "json"
platform = "示例药网"
shop = "丁药房"

[sources.ads]
select = "data.items"
fields = {{ text = "title", goods_category = "kind" }}
"""


def _sources(tmp_path: Path, base: str) -> Path:
    path = tmp_path / "internet_sources.toml"
    path.write_text(SOURCES.format(base=base), encoding="utf-8")
    return path


def test_html_shop_page_turns_an_unlawful_ad_and_a_price_spike_into_two_clues(world: World, tmp_path: Path) -> None:
    # the shop's rice cost about 40 yuan over the last week (recorded earlier by the monitoring)
    for days, price in ((6, "40.00"), (4, "41.00"), (2, "40.50")):
        r = world.client.post(
            "/api/v1/internet/prices",
            headers=world.h("monitor"),
            json={
                "platform": "示例商城",
                "shop": "丙粮油店",
                "goods": "东北大米",
                "spec": "5kg/袋",
                "price": price,
                "captured_at": (utcnow() - timedelta(days=days)).isoformat(),
            },
        )
        assert r.status_code == 201
    evidence = EvidenceStore(world.settings.data_dir / "evidence")
    with shop_server() as base:
        sources = load_sources(_sources(tmp_path, base))
        source = sources.source("bing").model_copy(update={"shop": "丙粮油店"})
        run = run_source(world.engine, source, store=evidence)
        again = run_source(world.engine, source, store=evidence)
    assert run.status == "partial" and run.ads == 3 and run.prices == 2 and run.hits == 3
    assert [e["field"] for e in run.errors] == ["price"]  # 鸡蛋 "面议": refused with the reason, not dropped silently
    with Session(world.engine) as session:
        clues = session.exec(select(Clue).where(Clue.channel == "internet_monitoring")).all()
        assert sorted(c.category for c in clues) == ["online_advertising", "online_price"]
        hits = session.exec(select(ScreeningHit)).all()
        # the first run's three hits, and the second run's price (still 68 against a ~40 baseline)
        assert sorted(h.rule_id for h in hits) == ["AD17-medical", "AD9-superlative", "PR-spike", "PR-spike"]
        ad_hits = [h for h in hits if h.observation_kind == "ad"]
        assert {h.evidence["text"] for h in ad_hits} == {"富硒大米，长期食用可降血糖，品质最佳！"}
        assert all(h.evidence["url"] == f"{base}/item/8" for h in ad_hits)
        assert "【降血糖】" in next(h.evidence["highlight"] for h in ad_hits if h.rule_id == "AD17-medical")
        # every observation keeps the captured page
        assert run.capture_sha256 and evidence.get(run.capture_sha256) is not None
        ads = session.exec(select(AdObservation)).all()
        assert {a.capture_sha256 for a in ads} == {run.capture_sha256}
        assert any(a.image_ref == f"{base}/img/1.png" for a in ads)
    # the same page again: the ads are only seen again; the still-high price folds into the same clue
    assert again.ads == 0 and again.duplicates == 3 and again.prices == 2
    with Session(world.engine) as session:
        assert len(session.exec(select(Clue)).all()) == 2


def test_json_page_drug_ad_without_approval_number(world: World, tmp_path: Path) -> None:
    with shop_server() as base:
        source = load_sources(_sources(tmp_path, base)).source("ding")
        run = run_source(world.engine, source, store=None)
    assert run.status == "ok" and run.ads == 2
    with Session(world.engine) as session:
        hits = session.exec(select(ScreeningHit)).all()
        assert sorted(h.rule_id for h in hits) == ["AD16-assertion", "AD46-no-approval"]
        clues = session.exec(select(Clue)).all()
        assert len(clues) == 1 and clues[0].subject_name == "丁药房"


def test_unreachable_or_bad_page_is_a_failed_run_with_the_reason(world: World, tmp_path: Path) -> None:
    with shop_server() as base:
        source = SourceConfig(
            name="gone",
            url=f"{base}/nothing",
            platform="示例商城",
            shop="x",
            ads={"select": "div.ad", "fields": {"text": ".text"}},
        )
        run = run_source(world.engine, source, store=None)
    assert run.status == "failed" and "404" in run.errors[0]["reason"]
    r = world.client.get("/api/v1/internet/runs", headers=world.h("head"))
    assert r.json()[0]["status"] == "failed"


def test_sources_file_is_validated(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text('[[sources]]\nname = "x"\nurl = "ftp://a"\nplatform = "p"\n', encoding="utf-8")
    with pytest.raises(RuleFileError, match=r"sources\[0\]\.url"):
        load_sources(path)
    path.write_text(
        '[[sources]]\nname = "x"\nurl = "http://127.0.0.1/"\nplatform = "p"\n'
        '[sources.ads]\nselect = "div > p"\nfields = { text = ".t" }\n',
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="unsupported selector"):
        load_sources(path)


def test_run_through_the_api(world: World, tmp_path: Path) -> None:
    with shop_server() as base:
        world.settings.internet_sources_file = _sources(tmp_path, base)
        r = world.client.get("/api/v1/internet/sources", headers=world.h("head"))
        assert [s["name"] for s in r.json()] == ["bing", "ding"]
        r = world.client.post("/api/v1/internet/sources/ding/run", headers=world.h("monitor"))
        assert r.status_code == 200, r.text
        assert r.json()["hits"] == 2
        assert world.client.post("/api/v1/internet/sources/none/run", headers=world.h("monitor")).status_code == 404


def test_the_sample_sources_file_loads() -> None:
    sample = Path(__file__).resolve().parents[3] / "firmware-config" / "samples" / "internet_sources.toml"
    assert [s.name for s in load_sources(sample).sources] == ["demo-grain-shop", "demo-pharmacy-api"]


def test_scheduler_runs_only_due_sources(world: World, tmp_path: Path) -> None:
    from cloud.internet.fetchers import run_due

    with shop_server() as base:
        path = tmp_path / "scheduled.toml"
        text = SOURCES.format(base=base).replace('platform = "示例药网"', 'platform = "示例药网"\ninterval_min = 60')
        path.write_text(text, encoding="utf-8")
        now = utcnow()
        first = run_due(world.engine, path, None, now)
        assert [r.source for r in first] == ["ding"]  # "bing" has no interval: run on demand only
        assert run_due(world.engine, path, None, now + timedelta(minutes=59)) == []
        assert [r.source for r in run_due(world.engine, path, None, now + timedelta(minutes=61))] == ["ding"]
    assert run_due(world.engine, tmp_path / "absent.toml", None) == []
