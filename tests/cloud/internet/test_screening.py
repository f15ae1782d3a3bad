"""The screening engine and rule pack: statutory terms, lawful exceptions, the labelled corpus, load errors."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path

import pytest

from cloud.internet.pricing import PricePoint, evaluate
from cloud.internet.rules import RULES_FILE, load_screening_rules, screening_rules
from cloud.internet.screening import screen, screen_ad
from cloud.rules.loader import RULES_DIR, RuleFileError

CORPUS = Path(__file__).with_name("ad_corpus.toml")


def _ids(text: str, goods: str = "ordinary") -> set[str]:
    return {h.rule_id for h in screen_ad(text, goods)}


@pytest.mark.parametrize("term", ["国家级", "最高级", "最佳"])  # the three terms 广告法 §9(三) names
def test_the_terms_named_in_article_9_are_hits(term: str) -> None:
    hits = screen_ad(f"本店商品{term}品质。")
    assert hits and hits[0].matched == term and "《广告法》第九条第（三）项" in hits[0].citations


def test_span_and_highlight_index_the_original_text() -> None:
    text = "ＮＯ．１品牌，品质最佳"  # full-width: matched after NFKC folding, spans still index the original
    hits = sorted(screen_ad(text), key=lambda h: h.start)
    assert [text[h.start : h.end] for h in hits] == ["ＮＯ．１", "最佳"]
    assert hits[1].highlight.endswith("【最佳】")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("第一次购买立减", "合法用法"),
        ("“第一坊”牌酱菜", "第一坊"),
        ("《最佳拍档》同款", "最佳拍档"),
        ("「顶级」系列书名", "引号内的名称"),
        ("“顶级厨房”品牌锅具", "顶级厨房"),
    ],
)
def test_lawful_uses_are_exempted_with_a_reason(text: str, reason: str) -> None:
    result = screen(text)
    assert result.hits == [] and result.exempted and reason in result.exempted[0].reason


def test_emphasis_quotes_and_a_bare_registered_mark_are_not_names() -> None:
    assert _ids("我们是“最好”的选择") == {"AD9-superlative"}
    assert _ids("星辰®顶级版") == {"AD9-state-level"}


def test_medical_terms_depend_on_the_goods_category() -> None:
    assert _ids("治疗失眠", "food") == {"AD17-medical"}
    assert _ids("治疗失眠", "health_food") == {"AD18-health-food", "AD46-no-approval"}
    assert _ids("治疗失眠 苏食健广审（文）第250101-00012号", "health_food") == {"AD18-health-food"}
    # a drug may name what it treats; it may not assert a cure, and needs its approval number
    assert _ids("用于治疗感冒 苏药广审（文）第250615-01234号", "drug") == set()
    assert _ids("用于治疗感冒", "drug") == {"AD46-no-approval"}
    # a drug approval number marks a drug ad whatever the declared category
    assert "AD46-no-approval" in _ids("感冒片 国药准字H32020001")


def test_corpus_precision_and_false_positive_rate() -> None:
    corpus = tomllib.loads(CORPUS.read_text(encoding="utf-8"))["sentences"]
    assert len(corpus) >= 60
    assert sum(1 for s in corpus if s["expect"]) >= 25 and sum(1 for s in corpus if not s["expect"]) >= 25
    tp = fp = fn = flagged = lawful = 0
    for s in corpus:
        expect, got = set(s["expect"]), _ids(s["text"], s.get("goods", "ordinary"))
        tp, fp, fn = tp + len(got & expect), fp + len(got - expect), fn + len(expect - got)
        if not expect:
            lawful += 1
            flagged += bool(got)
    assert tp / (tp + fp) >= 0.95 and tp / (tp + fn) >= 0.9
    assert flagged / lawful <= 0.05


def test_every_basis_is_in_the_law_library_and_bad_files_name_the_key(tmp_path: Path) -> None:
    assert screening_rules().ad_rules and screening_rules().price_rules
    text = (RULES_DIR / RULES_FILE).read_text(encoding="utf-8")
    bad = tmp_path / RULES_FILE
    bad.write_text(text.replace('basis = ["advertising_law:17"]', 'basis = ["advertising_law:99"]'), encoding="utf-8")
    with pytest.raises(RuleFileError, match=r"ad_rules\[3\]\.basis\[0\].*not in the law library"):
        load_screening_rules(bad)
    bad.write_text(text.replace('"最好(在|于', '"最好((在|于', 1), encoding="utf-8")
    with pytest.raises(RuleFileError, match=r"ad_rules\[0\]\.allow.*bad regular expression"):
        load_screening_rules(bad)


def test_price_rules_pure() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 11, 20, tzinfo=UTC)
    hist = [PricePoint(Decimal("10"), now - timedelta(days=d)) for d in (1, 2, 3)]
    kwargs = {"spec": "", "marked_price": None, "original_price": None, "captured_at": now, "history": hist}
    assert [h.rule_id for h in evaluate(goods="鸡蛋", price=Decimal("20"), **kwargs)] == ["PR-spike"]  # type: ignore[arg-type]
    assert evaluate(goods="鸡蛋", price=Decimal("10.5"), **kwargs) == []  # type: ignore[arg-type]
    assert evaluate(goods="鸡蛋", price=Decimal("20"), **{**kwargs, "history": hist[:1]}) == []  # type: ignore[arg-type]
    hit = evaluate(goods="抽纸", price=Decimal("9"), **{**kwargs, "marked_price": Decimal("8")})  # type: ignore[arg-type]
    assert [h.rule_id for h in hit] == ["PR-above-marked"] and "《价格法》第十三条" in hit[0].citations
