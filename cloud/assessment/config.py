"""Rule files of supervision (supervision.toml) and assessment (indicators.toml), validated once at load."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from cloud.rules.loader import RuleModel, load_model, rules_path

Dimension = Literal["clue_collection", "analysis", "dispatch", "execution", "supervision", "compliance", "distinctive"]
DIMENSIONS: tuple[str, ...] = (
    "clue_collection",
    "analysis",
    "dispatch",
    "execution",
    "supervision",
    "compliance",
    "distinctive",
)


class ClockSpec(RuleModel):
    id: str = Field(min_length=1, max_length=64)
    name: str
    target_type: str
    start: str
    due_after_hours: float | None = Field(default=None, gt=0)
    due_date_field: str | None = None
    extend: str | None = None
    extend_match: dict[str, str] = Field(default_factory=dict)
    extend_date_field: str | None = None
    stop: str
    stop_to: list[str] = Field(min_length=1)
    warn_before_hours: float = Field(default=0, ge=0)
    people_field: str | None = None
    skip_channels: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _due(self) -> ClockSpec:
        if (self.due_after_hours is None) == (self.due_date_field is None):
            raise ValueError(f"clock {self.id!r}: give exactly one of due_after_hours / due_date_field")
        return self


class SpotCheckSpec(RuleModel):
    every_hours: float = Field(default=168, gt=0)
    ratio: float = Field(default=0.05, gt=0, le=1)
    minimum: int = Field(default=3, ge=0)


class AttendanceSpec(RuleModel):
    check_in_action: str = "attendance.check_in"
    also_count: list[str] = Field(default_factory=list)
    early_grace_minutes: float = Field(default=30, ge=0)
    late_grace_minutes: float = Field(default=15, ge=0)


class SupervisionRules(RuleModel):
    timezone: str = "Asia/Shanghai"
    clocks: list[ClockSpec]
    spot_check: SpotCheckSpec = Field(default_factory=SpotCheckSpec)
    attendance: AttendanceSpec = Field(default_factory=AttendanceSpec)


class Indicator(RuleModel):
    id: str = Field(min_length=1, max_length=64)
    name: str
    dimension: Dimension
    kind: Literal["count", "sum", "mean", "ratio", "manual"]
    action: str
    where: dict[str, Any] = Field(default_factory=dict)
    actor_not: list[str] = Field(default_factory=list)
    field: str | None = None
    numerator_action: str | None = None
    numerator_where: dict[str, Any] = Field(default_factory=dict)
    numerator_credit: str | None = None
    complement: bool = False
    credit: str = "actor"
    weight: float = Field(gt=0)
    target: float = 1.0
    lower_is_better: bool = False
    zero_at: float | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Indicator:
        if self.kind in ("sum", "mean", "manual") and not self.field:
            raise ValueError(f"indicator {self.id!r}: kind {self.kind} needs `field`")
        if self.kind == "ratio" and not self.numerator_action:
            raise ValueError(f"indicator {self.id!r}: kind ratio needs `numerator_action`")
        if self.lower_is_better and (self.zero_at is None or self.zero_at <= self.target):
            raise ValueError(f"indicator {self.id!r}: lower_is_better needs zero_at > target")
        if not self.lower_is_better and self.kind != "manual" and self.target <= 0:
            raise ValueError(f"indicator {self.id!r}: target must be > 0")
        for part in [*self.credit.split("+"), *(self.numerator_credit or "actor").split("+")]:
            if not (part == "actor" or (part.startswith("payload.") and len(part) > len("payload."))):
                raise ValueError(
                    f"indicator {self.id!r}: credit is 'actor' or 'payload.<field>', or several joined by '+'"
                )
        return self


class ImprovementSpec(RuleModel):
    confirm_task_conclusions: list[str] = Field(default_factory=lambda: ["on_site", "rectify", "case"])
    confirm_actions: list[str] = Field(default_factory=lambda: ["case.registered"])
    min_clues: int = Field(default=5, ge=1)
    min_confirmation_rate: float = Field(default=0.2, ge=0, le=1)
    max_alerts_per_site_day: float = Field(default=3, gt=0)


class IndicatorRules(RuleModel):
    version: str
    dimensions: dict[Dimension, str]
    indicators: list[Indicator] = Field(min_length=1)
    improvement: ImprovementSpec = Field(default_factory=ImprovementSpec)

    @model_validator(mode="after")
    def _complete(self) -> IndicatorRules:
        missing = set(DIMENSIONS) - set(self.dimensions)
        if missing:
            raise ValueError(f"dimensions missing: {sorted(missing)} (the standard lists seven)")
        ids = [i.id for i in self.indicators]
        if len(ids) != len(set(ids)):
            raise ValueError("duplicate indicator ids")
        return self


def load_supervision_rules(directory: Path | None = None) -> SupervisionRules:
    return load_model(SupervisionRules, rules_path("supervision.toml", directory))


def load_indicator_rules(directory: Path | None = None) -> IndicatorRules:
    return load_model(IndicatorRules, rules_path("indicators.toml", directory))


@cache
def packaged_indicator_rules() -> IndicatorRules:
    return load_indicator_rules()
