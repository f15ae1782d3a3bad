"""Screening of advertisement text: the one engine over the ``[[ad_rules]]`` of the rule pack.

:func:`screen_ad` is a pure function: text (and the declared goods category) in, a list of :class:`AdHit` out,
each with the rule, the span in the original text, the matched words, the citations and a highlighted excerpt.
Lawful uses are decided by the rule's ``allow`` patterns, registered trademarks and quoted names (see the rule
file's header); :func:`explain_lawful` reports, for the benchmark and the docs, why an occurrence was let through.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cloud.internet.rules import AdRule, GoodsCategory, ScreeningRules, cite, fold, screening_rules

__all__ = ["AdHit", "Exempted", "highlight", "screen_ad"]

CONTEXT_CHARS = 40
_QUOTED = re.compile(r"《[^《》]{1,40}》|「[^「」]{1,40}」|『[^『』]{1,40}』")
_DQUOTED = re.compile(r"[“\"]([^“”\"]{1,30})[”\"]\s*(牌|品牌|商标|®|™)")


@dataclass(frozen=True, slots=True)
class AdHit:
    rule_id: str
    rule_name: str
    severity: str
    start: int
    end: int
    matched: str
    basis: tuple[str, ...]
    citations: tuple[str, ...]
    explanation: str
    highlight: str

    def evidence(self) -> dict[str, object]:
        return {
            "rule_id": self.rule_id,
            "rule_name": self.rule_name,
            "span": [self.start, self.end],
            "matched": self.matched,
            "basis": list(self.basis),
            "citations": list(self.citations),
            "explanation": self.explanation,
            "highlight": self.highlight,
        }


@dataclass(frozen=True, slots=True)
class Exempted:
    rule_id: str
    start: int
    end: int
    matched: str
    reason: str


@dataclass(slots=True)
class Screening:
    hits: list[AdHit] = field(default_factory=list)
    exempted: list[Exempted] = field(default_factory=list)


def highlight(text: str, start: int, end: int, context: int = CONTEXT_CHARS) -> str:
    """``…前文【命中】后文…`` around ``text[start:end]``."""
    left = max(0, start - context)
    right = min(len(text), end + context)
    return (
        ("…" if left > 0 else "")
        + text[left:start]
        + "【"
        + text[start:end]
        + "】"
        + text[end:right]
        + ("…" if right < len(text) else "")
    )


def _applies(rule: AdRule, goods: GoodsCategory, folded: str) -> bool:
    if rule.goods is None or goods in rule.goods:
        return True
    return any(m.search(folded) for m in rule.marker_re)


def _covered(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    return any(s <= start and end <= e for s, e in spans)


def _name_spans(rules: ScreeningRules, folded: str) -> list[tuple[int, int, str]]:
    spans: list[tuple[int, int, str]] = []
    for mark in rules.names.trademarks:
        needle = fold(mark)
        for m in re.finditer(re.escape(needle), folded):
            spans.append((m.start(), m.end(), f"注册商标“{mark}”"))
    for m in _QUOTED.finditer(folded):
        spans.append((m.start(), m.end(), f"引号内的名称{m.group(0)}"))
    for m in _DQUOTED.finditer(folded):
        spans.append((m.start(1), m.end(1), f"品牌名称“{m.group(1)}”"))
    return spans


def _screen_terms(rule: AdRule, text: str, folded: str, names: list[tuple[int, int, str]], out: Screening) -> None:
    allowed = [(m.start(), m.end()) for pattern in rule.allow_re for m in pattern.finditer(folded)]
    for m in rule.term_re.finditer(folded):
        start, end = m.start(), m.end()
        if _covered(allowed, start, end):
            out.exempted.append(Exempted(rule.id, start, end, text[start:end], "合法用法（规则例外）"))
            continue
        if rule.exempt_names:
            name = next((n for s, e, n in names if s <= start and end <= e), None)
            if name is not None:
                out.exempted.append(Exempted(rule.id, start, end, text[start:end], name))
                continue
        out.hits.append(_hit(rule, text, start, end))


def _hit(rule: AdRule, text: str, start: int, end: int) -> AdHit:
    return AdHit(
        rule_id=rule.id,
        rule_name=rule.name,
        severity=rule.severity,
        start=start,
        end=end,
        matched=text[start:end],
        basis=tuple(rule.basis),
        citations=tuple(cite(rule.basis)),
        explanation=rule.explanation,
        highlight=highlight(text, start, end),
    )


def screen(
    text: str, goods: GoodsCategory | str = GoodsCategory.ORDINARY, rules: ScreeningRules | None = None
) -> Screening:
    """Every hit and every exempted occurrence of the ad rules in ``text``."""
    rules = rules or screening_rules()
    goods = GoodsCategory(goods)
    folded = fold(text)
    names = _name_spans(rules, folded)
    out = Screening()
    for rule in rules.ad_rules:
        if not _applies(rule, goods, folded):
            continue
        if rule.type == "terms":
            _screen_terms(rule, text, folded, names, out)
        elif rule.require_re is not None and not rule.require_re.search(folded):
            marker = next((m for p in rule.marker_re if (m := p.search(folded))), None)
            start, end = (marker.start(), marker.end()) if marker else (0, len(text))
            out.hits.append(_hit(rule, text, start, end))
    return out


def screen_ad(
    text: str, goods: GoodsCategory | str = GoodsCategory.ORDINARY, rules: ScreeningRules | None = None
) -> list[AdHit]:
    """The hits of the ad rules in ``text`` (ordered by rule, then position)."""
    return screen(text, goods, rules).hits
