"""Price rules (the ``[[price_rules]]`` of the screening pack) over one observation and the shop's history.

:func:`evaluate` is pure: the observation's prices, its goods and time, and the same shop's earlier prices of
the same goods and spec in, :class:`PriceHit` list out. ``spike`` compares with the median of the trailing
window (staples only), ``raise_then_discount`` compares a shown original price (划线价) with the lowest price
of the window before, ``above_marked`` compares the price charged with the marked price.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from statistics import median

from cloud.internet.rules import PriceRule, ScreeningRules, cite, screening_rules

__all__ = ["PriceHit", "PricePoint", "evaluate", "history_days"]


@dataclass(frozen=True, slots=True)
class PricePoint:
    price: Decimal
    captured_at: datetime


@dataclass(frozen=True, slots=True)
class PriceHit:
    rule_id: str
    rule_name: str
    severity: str
    basis: tuple[str, ...]
    citations: tuple[str, ...]
    explanation: str
    matched: str
    details: dict[str, object]

    def evidence(self) -> dict[str, object]:
        return {
            "rule_id": self.rule_id,
            "rule_name": self.rule_name,
            "basis": list(self.basis),
            "citations": list(self.citations),
            "explanation": self.explanation,
            "highlight": self.matched,
            **self.details,
        }


def _yuan(value: Decimal) -> str:
    return f"¥{value.quantize(Decimal('0.01'), ROUND_HALF_UP)}"


def history_days(rules: ScreeningRules | None = None) -> int:
    """How far back :func:`evaluate` needs the shop's history."""
    rules = rules or screening_rules()
    return max((r.window_days or 0 for r in rules.price_rules), default=0)


def _hit(rule: PriceRule, matched: str, details: dict[str, object]) -> PriceHit:
    return PriceHit(
        rule.id,
        rule.name,
        rule.severity,
        tuple(rule.basis),
        tuple(cite(rule.basis)),
        rule.explanation,
        matched,
        details,
    )


def evaluate(
    *,
    goods: str,
    spec: str,
    price: Decimal,
    marked_price: Decimal | None,
    original_price: Decimal | None,
    captured_at: datetime,
    history: list[PricePoint],
    rules: ScreeningRules | None = None,
) -> list[PriceHit]:
    rules = rules or screening_rules()
    what = f"{goods}{(' ' + spec) if spec else ''}"
    hits: list[PriceHit] = []
    for rule in rules.price_rules:
        window = [
            p.price
            for p in history
            if rule.window_days is not None
            and captured_at - timedelta(days=rule.window_days) <= p.captured_at < captured_at
        ]
        if rule.type == "above_marked":
            if marked_price is not None and price > marked_price:
                hits.append(
                    _hit(
                        rule,
                        f"{what}：标价 {_yuan(marked_price)}，结算价 {_yuan(price)}",
                        {"price": str(price), "marked_price": str(marked_price)},
                    )
                )
        elif rule.type == "spike":
            staple = rules.staple_of(goods)
            if staple is None or len(window) < rule.min_baseline:
                continue
            baseline = Decimal(str(median(window)))
            assert rule.threshold_percent is not None
            rise = (price - baseline) / baseline * 100
            if rise >= Decimal(str(rule.threshold_percent)):
                hits.append(
                    _hit(
                        rule,
                        f"{what}：{_yuan(price)}，近{rule.window_days}日基准价 {_yuan(baseline)}，上涨 {rise:.1f}%",
                        {
                            "price": str(price),
                            "baseline": str(baseline),
                            "rise_percent": f"{rise:.1f}",
                            "threshold_percent": rule.threshold_percent,
                            "window_days": rule.window_days,
                            "baseline_points": len(window),
                            "staple": staple,
                        },
                    )
                )
        elif rule.type == "raise_then_discount":
            if original_price is None or original_price <= price or len(window) < rule.min_baseline:
                continue
            lowest = min(window)
            if original_price > lowest:
                hits.append(
                    _hit(
                        rule,
                        f"{what}：标示原价 {_yuan(original_price)}，促销前{rule.window_days}日内最低价 {_yuan(lowest)}",
                        {
                            "price": str(price),
                            "original_price": str(original_price),
                            "lowest_before": str(lowest),
                            "window_days": rule.window_days,
                        },
                    )
                )
    return hits
