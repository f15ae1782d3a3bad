"""Internet monitoring through the API on a real app + SQLite: observations → screening → clues → analysis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select

from cloud.workflow.clues import Clue, ClueSource
from cloud.workflow.models import AnalysisDecision
from tests.utils.workflow_factories import World

NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def _ad(world: World, text: str, *, shop: str = "示例生鲜旗舰店", at: datetime = NOW, **extra: object) -> dict:
    body = {
        "platform": "示例商城",
        "shop": shop,
        "url": "https://shop.example/item/1",
        "text": text,
        "captured_at": at.isoformat(),
        **extra,
    }
    r = world.client.post("/api/v1/internet/ads", json=body, headers=world.h("monitor"))
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_unlawful_ad_becomes_an_internet_monitoring_clue_with_evidence(world: World) -> None:
    out = _ad(world, "本店大米品质最佳，长期食用可降血糖。", goods_category="food")
    assert [h["rule_id"] for h in out["hits"]] == ["AD17-medical", "AD9-superlative"]  # most severe first
    assert len(out["clue_ids"]) == 1  # two hits on one shop: one clue
    clue_id = out["clue_ids"][0]
    clue = world.client.get(f"/api/v1/clues/{clue_id}", headers=world.h("head")).json()
    clue = clue.get("clue", clue)
    assert clue["channel"] == "internet_monitoring" and clue["category"] == "online_advertising"
    assert clue["source_count"] == 2 and clue["severity"] == "major"
    hits = world.client.get("/api/v1/internet/hits", params={"clue_id": clue_id}, headers=world.h("head")).json()
    medical = next(h for h in hits if h["rule_id"] == "AD17-medical")
    assert medical["matched"] == "降血糖"
    text = "本店大米品质最佳，长期食用可降血糖。"
    assert text[medical["span_start"] : medical["span_end"]] == "降血糖"
    assert "【降血糖】" in medical["evidence"]["highlight"]
    assert medical["evidence"]["citations"] == ["《广告法》第十七条"]
    # the capture is in the evidence store
    sha = medical["evidence"]["capture_sha256"]
    r = world.client.get(f"/api/v1/evidence/{sha}", headers=world.h("head"))
    assert r.status_code == 200 and "降血糖".encode() in r.content
    # and the clue went through analysis like any other (a major ad violation: case source)
    with Session(world.engine) as session:
        decision = session.exec(select(AnalysisDecision).where(AnalysisDecision.clue_id == clue_id)).first()
        assert decision is not None and decision.rule_id == "A04i"


def test_lawful_ad_makes_no_clue_and_same_ad_again_is_only_counted(world: World) -> None:
    lawful = _ad(world, "开封后最好冷藏保存，第一次购买立减5元。", goods_category="food")
    assert lawful["hits"] == [] and lawful["clue_ids"] == []
    first = _ad(world, "全网最低价！")
    again = _ad(world, "全网最低价！", at=NOW + timedelta(hours=1))
    assert again["duplicate"] is True and again["hits"] == []
    with Session(world.engine) as session:
        assert session.exec(select(Clue)).all().__len__() == 1
        assert first["clue_ids"]


def test_repeated_hits_on_one_shop_fold_into_one_clue(world: World) -> None:
    a = _ad(world, "顶级工艺，尊享体验。", shop="甲店")
    b = _ad(world, "行业销量第一。", shop="甲店", at=NOW + timedelta(hours=2))
    c = _ad(world, "行业销量第一。", shop="乙店", at=NOW + timedelta(hours=2))
    assert a["clue_ids"] == b["clue_ids"] != c["clue_ids"]
    with Session(world.engine) as session:
        clue = session.get(Clue, a["clue_ids"][0])
        assert clue is not None and clue.source_count == 2 and clue.subject_name == "甲店"
        sources = session.exec(select(ClueSource).where(ClueSource.clue_id == clue.id)).all()
        assert {s.channel for s in sources} == {"internet_monitoring"}


def test_shop_of_a_registered_subject_resolves_to_it(world: World) -> None:
    out = _ad(world, "药到病除，无副作用。", shop="示例大药房有限公司", goods_category="ordinary")
    with Session(world.engine) as session:
        clue = session.get(Clue, out["clue_ids"][0])
        assert clue is not None and clue.subject_id == world.subject_id and clue.site_id == world.site_id


def test_price_spike_and_above_marked(world: World) -> None:
    h = world.h("monitor")
    base = {"platform": "示例商城", "shop": "丙粮油店", "goods": "东北大米", "spec": "5kg/袋"}
    for days, price in ((6, "40.00"), (4, "41.00"), (2, "40.50")):
        r = world.client.post(
            "/api/v1/internet/prices",
            headers=h,
            json={**base, "price": price, "captured_at": (NOW - timedelta(days=days)).isoformat()},
        )
        assert r.status_code == 201 and r.json()["hits"] == [], r.text
    r = world.client.post(
        "/api/v1/internet/prices", headers=h, json={**base, "price": "68.00", "captured_at": NOW.isoformat()}
    )
    spike = r.json()
    assert [x["rule_id"] for x in spike["hits"]] == ["PR-spike"]
    ev = spike["hits"][0]["evidence"]
    assert ev["baseline"] == "40.50" and ev["rise_percent"] == "67.9"
    # not a staple: the same rise is not a spike
    other = {**base, "goods": "进口红酒", "spec": "750ml"}
    for days, price in ((6, "100"), (3, "100")):
        world.client.post(
            "/api/v1/internet/prices",
            headers=h,
            json={**other, "price": price, "captured_at": (NOW - timedelta(days=days)).isoformat()},
        )
    r = world.client.post(
        "/api/v1/internet/prices", headers=h, json={**other, "price": "200", "captured_at": NOW.isoformat()}
    )
    assert r.json()["hits"] == []
    r = world.client.post(
        "/api/v1/internet/prices",
        headers=h,
        json={**base, "goods": "花生油", "price": "80.00", "marked_price": "75.00", "captured_at": NOW.isoformat()},
    )
    assert [x["rule_id"] for x in r.json()["hits"]] == ["PR-above-marked"]
    with Session(world.engine) as session:
        clue = session.get(Clue, spike["clue_ids"][0])
        assert clue is not None and clue.category == "online_price" and clue.channel == "internet_monitoring"
        decision = session.exec(select(AnalysisDecision).where(AnalysisDecision.clue_id == clue.id)).first()
        assert decision is not None and decision.rule_id == "A04p"


def test_raise_then_discount_uses_the_lowest_price_of_the_seven_days_before(world: World) -> None:
    """规范促销行为暂行规定: the baseline of a discount is the lowest price within the 7 days before it."""
    h = world.h("monitor")
    base = {"platform": "示例商城", "shop": "丁电器", "goods": "电热水壶", "spec": "1.7L"}
    world.client.post(
        "/api/v1/internet/prices",
        headers=h,
        json={**base, "price": "59", "captured_at": (NOW - timedelta(days=8)).isoformat()},
    )
    world.client.post(
        "/api/v1/internet/prices",
        headers=h,
        json={**base, "price": "99", "captured_at": (NOW - timedelta(days=6)).isoformat()},
    )
    r = world.client.post(
        "/api/v1/internet/prices",
        headers=h,
        json={**base, "price": "79", "original_price": "99", "captured_at": NOW.isoformat()},
    )
    assert r.json()["hits"] == []  # 59 was 8 days before: outside the 7 days
    world.client.post(
        "/api/v1/internet/prices",
        headers=h,
        json={**base, "price": "69", "captured_at": (NOW - timedelta(days=3)).isoformat()},
    )
    r = world.client.post(
        "/api/v1/internet/prices",
        headers=h,
        json={**base, "price": "79", "original_price": "99", "captured_at": (NOW + timedelta(minutes=1)).isoformat()},
    )
    hits = r.json()["hits"]
    assert [x["rule_id"] for x in hits] == ["PR-raise-discount"] and hits[0]["evidence"]["lowest_before"] == "69.00"


def test_bad_bodies_are_refused_with_reasons(world: World) -> None:
    h = world.h("monitor")
    r = world.client.post(
        "/api/v1/internet/prices",
        headers=h,
        json={"platform": "p", "shop": "s", "goods": "米", "price": "1.234", "captured_at": NOW.isoformat()},
    )
    assert r.status_code == 422
    r = world.client.post(
        "/api/v1/internet/ads",
        headers=h,
        json={"platform": "p", "shop": "s", "text": "x", "captured_at": "2026-11-20T10:00:00"},
    )
    assert r.status_code == 422  # no time zone
    r = world.client.post(
        "/api/v1/internet/ads",
        headers=world.h("insp1"),
        json={"platform": "p", "shop": "s", "text": "x", "captured_at": NOW.isoformat()},
    )
    assert r.status_code == 403


def test_csv_import_reports_row_and_column_errors(world: World) -> None:
    csv_text = (
        "平台,店铺,商品,规格,售价,标价,采集时间\n"
        "示例商城,戊超市,鸡蛋,30枚,¥25.00,,2026-11-14 09:00\n"
        "示例商城,戊超市,鸡蛋,30枚,abc,,2026-11-15 09:00\n"
        "示例商城,戊超市,鸡蛋,30枚,26.00,,not-a-time\n"
        "示例商城,戊超市,鸡蛋,30枚,25.50,,2026-11-16 09:00\n"
        "示例商城,戊超市,鸡蛋,30枚,45.00,,2026-11-18 09:00\n"
    )
    r = world.client.post(
        "/api/v1/internet/import",
        params={"kind": "prices"},
        headers=world.h("monitor"),
        files={"file": ("prices.csv", csv_text.encode(), "text/csv")},
    )
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["rows"] == 5 and report["recorded"] == 3 and report["hits"] == 1
    assert [(e["line"], e["column"]) for e in report["errors"]] == [(3, "售价"), (4, "采集时间")]
    r = world.client.post(
        "/api/v1/internet/import",
        params={"kind": "prices"},
        headers=world.h("monitor"),
        files={"file": ("prices.csv", csv_text.encode(), "text/csv")},
    )
    assert r.json()["duplicates"] == 3 and r.json()["recorded"] == 0
    r = world.client.post(
        "/api/v1/internet/import",
        params={"kind": "ads"},
        headers=world.h("monitor"),
        files={"file": ("ads.csv", "平台,店铺\n示例商城,x\n".encode(), "text/csv")},
    )
    assert r.status_code == 422 and "广告内容" in r.json()["detail"]


def test_rules_endpoint_cites_every_rule(world: World) -> None:
    rules = world.client.get("/api/v1/internet/rules", headers=world.h("head")).json()
    assert all(r["citations"] for r in rules["ad_rules"] + rules["price_rules"])
