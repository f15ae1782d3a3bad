"""The screening rule pack ``cloud/rules/internet_screening.toml``: models, loading and cross-checks.

Every rule cites its legal basis as law-library references (``laws.toml``); :func:`load_screening_rules` checks
each one resolves and compiles every regular expression once, so a bad file fails at load with
:class:`~cloud.rules.loader.RuleFileError` naming the file, the key and the reason.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum
from functools import cache, cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from cloud.rules.library import LawLibrary, parse_ref
from cloud.rules.loader import RuleFileError, RuleModel, load_model, rules_path

__all__ = [
    "AdRule",
    "GoodsCategory",
    "PriceRule",
    "ScreeningRules",
    "Staple",
    "fold",
    "load_screening_rules",
    "screening_rules",
]

RULES_FILE = "internet_screening.toml"
_ID = r"^[A-Za-z0-9_.-]{1,32}$"
Severity = Literal["critical", "major", "minor", "warning"]


class GoodsCategory(StrEnum):
    ORDINARY = "ordinary"  # 普通商品
    FOOD = "food"  # 食品
    HEALTH_FOOD = "health_food"  # 保健食品
    COSMETICS = "cosmetics"  # 化妆品
    DRUG = "drug"  # 药品
    MEDICAL_DEVICE = "medical_device"  # 医疗器械
    MEDICAL_SERVICE = "medical_service"  # 医疗服务


GOODS_LABELS: dict[str, str] = {
    "ordinary": "普通商品",
    "food": "食品",
    "health_food": "保健食品",
    "cosmetics": "化妆品",
    "drug": "药品",
    "medical_device": "医疗器械",
    "medical_service": "医疗服务",
}


def fold(text: str) -> str:
    """The form rules match on: NFKC (full-width → half-width) and lower case. Same length as the input for
    the CJK and ASCII text of ads, so spans found in the folded text index the original."""
    folded = unicodedata.normalize("NFKC", text).lower()
    if len(folded) == len(text):
        return folded
    lowered = text.lower()
    return lowered if len(lowered) == len(text) else text


def _compile(patterns: list[str]) -> list[str]:
    for p in patterns:
        try:
            re.compile(p)
        except re.error as exc:
            raise ValueError(f"bad regular expression {p!r}: {exc}") from None
    return patterns


class _Rule(RuleModel):
    id: str = Field(pattern=_ID)
    name: str = Field(min_length=2, max_length=100)
    basis: list[str] = Field(min_length=1, description="law-library references")
    severity: Severity
    explanation: str = Field(min_length=2, max_length=200)

    @field_validator("basis")
    @classmethod
    def _refs(cls, refs: list[str]) -> list[str]:
        for ref in refs:
            parse_ref(ref)
        return refs


class AdRule(_Rule):
    type: Literal["terms", "missing"]
    goods: list[GoodsCategory] | None = None
    markers: list[str] = Field(default_factory=list)
    terms: list[str] = Field(default_factory=list)
    patterns: list[str] = Field(default_factory=list)
    allow: list[str] = Field(default_factory=list)
    exempt_names: bool = False
    require: str | None = None

    @field_validator("markers", "patterns", "allow")
    @classmethod
    def _regexes(cls, value: list[str]) -> list[str]:
        return _compile(value)

    @model_validator(mode="after")
    def _shape(self) -> AdRule:
        if self.type == "terms" and not (self.terms or self.patterns):
            raise ValueError("a 'terms' rule needs terms or patterns")
        if self.type == "missing":
            if not self.require:
                raise ValueError("a 'missing' rule needs `require`")
            _compile([self.require])
        return self

    @cached_property
    def term_re(self) -> re.Pattern[str]:
        alts = [re.escape(fold(t)) for t in sorted(self.terms, key=len, reverse=True)] + list(self.patterns)
        return re.compile("|".join(alts))

    @cached_property
    def allow_re(self) -> list[re.Pattern[str]]:
        return [re.compile(p) for p in self.allow]

    @cached_property
    def marker_re(self) -> list[re.Pattern[str]]:
        return [re.compile(p) for p in self.markers]

    @cached_property
    def require_re(self) -> re.Pattern[str] | None:
        return re.compile(self.require) if self.require else None


class PriceRule(_Rule):
    type: Literal["spike", "raise_then_discount", "above_marked"]
    threshold_percent: float | None = Field(default=None, gt=0, le=1000)
    window_days: int | None = Field(default=None, ge=1, le=366)
    min_baseline: int = Field(default=1, ge=1, le=1000)

    @model_validator(mode="after")
    def _params(self) -> PriceRule:
        if self.type == "spike" and (self.threshold_percent is None or self.window_days is None):
            raise ValueError("a 'spike' rule needs threshold_percent and window_days")
        if self.type == "raise_then_discount" and self.window_days is None:
            raise ValueError("a 'raise_then_discount' rule needs window_days")
        return self


class Staple(RuleModel):
    name: str = Field(min_length=1, max_length=40)
    patterns: list[str] = Field(min_length=1)


class Names(RuleModel):
    trademarks: list[str] = Field(default_factory=list)


class ScreeningRules(RuleModel):
    version: str = Field(min_length=1, max_length=32)
    names: Names = Field(default_factory=Names)
    ad_rules: list[AdRule] = Field(default_factory=list)
    price_rules: list[PriceRule] = Field(default_factory=list)
    staples: list[Staple] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> ScreeningRules:
        ids = [r.id for r in self.ad_rules] + [r.id for r in self.price_rules]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"duplicate rule ids {dupes}")
        return self

    def staple_of(self, goods: str) -> str | None:
        """The staple group a goods name belongs to (None: not a watched staple)."""
        name = fold(goods)
        for staple in self.staples:
            if any(fold(p) in name for p in staple.patterns):
                return staple.name
        return None

    def rule(self, rule_id: str) -> AdRule | PriceRule:
        found: list[AdRule | PriceRule] = [r for r in self.ad_rules if r.id == rule_id]
        found += [r for r in self.price_rules if r.id == rule_id]
        if not found:
            raise KeyError(rule_id)
        return found[0]


def load_screening_rules(path: Path | None = None, laws: LawLibrary | None = None) -> ScreeningRules:
    """Load and validate the rule pack; every ``basis`` must be an article of the law library."""
    from cloud.rules.library import packaged_catalogue

    path = path or rules_path(RULES_FILE)
    rules = load_model(ScreeningRules, path)
    library = laws or packaged_catalogue().laws
    for section, items in (("ad_rules", rules.ad_rules), ("price_rules", rules.price_rules)):
        for i, rule in enumerate(items):
            for j, ref in enumerate(rule.basis):
                try:
                    library.article(parse_ref(ref))
                except KeyError:
                    raise RuleFileError(
                        path, f"{section}[{i}].basis[{j}]", f"{ref!r} is not in the law library"
                    ) from None
    return rules


@cache
def screening_rules() -> ScreeningRules:
    return load_screening_rules()


def cite(refs: list[str]) -> list[str]:
    """Printed citations of ``refs``, e.g. ``《广告法》第九条第（三）项``."""
    from cloud.rules.library import packaged_catalogue

    laws = packaged_catalogue().laws
    return [laws.cite(ref) for ref in refs]
