"""Rule-pack schema: rule packs are data files (``firmware-config/rulepacks/*.toml``), one engine runs them.

A pack has an id, a category (the alert's domain), optional profiles (e.g. GSP refrigerated / cool /
normal storage) and a list of rules. Each rule reads one or more *points* of a device (``temperature``,
``fault_01``, ``door_zone`` …) and says when an alert is raised and when it clears.

Messages are Chinese templates with ``{label}`` (device label), ``{value}``, ``{limit}``, ``{unit}``,
``{duration}`` placeholders.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from protocols.messages import Identifier, Severity


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Rule(_Strict):
    id: Identifier
    title: str = Field(max_length=64, description="short Chinese name, e.g. 冷藏温度超上限")
    severity: Severity = Severity.MAJOR
    message: str = Field(max_length=300, description="Chinese message template")
    profiles: list[Identifier] = Field(default_factory=list, description="only for these profiles (empty: all)")
    min_duration_s: float = Field(default=0, ge=0, le=86_400, description="condition must hold this long")
    clear_duration_s: float = Field(default=0, ge=0, le=86_400, description="clear condition must hold this long")
    update_interval_s: float = Field(
        default=120, ge=5, le=86_400, description="while open, send an update this often (GSP: ≤ 2 min)"
    )

    def inputs(self) -> list[str]:
        raise NotImplementedError


class ThresholdRule(_Rule):
    kind: Literal["threshold"]
    input: Identifier
    op: Literal["above", "below"]
    limit: float = Field(allow_inf_nan=False)
    inclusive: bool = Field(default=False, description="alarm when the limit is reached (≥ / ≤), e.g. GSP")
    hysteresis: float = Field(default=0.5, ge=0, description="clears at limit ∓ hysteresis")

    def inputs(self) -> list[str]:
        return [self.input]


class RateRule(_Rule):
    kind: Literal["rate_of_change"]
    input: Identifier
    max_per_min: float = Field(gt=0, description="largest allowed change per minute (absolute)")
    direction: Literal["rise", "fall", "both"] = "both"
    window_s: float = Field(default=300, ge=10, le=86_400)
    max_gap_s: float | None = Field(
        default=None,
        gt=0,
        le=86_400,
        description="readings further apart, or a newest reading older than this, are not used for the slope "
        "(default: 2.5 × the input's observed reading interval)",
    )

    def inputs(self) -> list[str]:
        return [self.input]


class StaleRule(_Rule):
    kind: Literal["stale"]
    input: Identifier
    max_age_s: float = Field(gt=0, le=86_400, description="no reading for this long raises")

    def inputs(self) -> list[str]:
        return [self.input]


class FaultRule(_Rule):
    kind: Literal["sensor_fault"]
    input: Identifier
    min: float = Field(allow_inf_nan=False, description="physical lower bound of the sensor")
    max: float = Field(allow_inf_nan=False, description="physical upper bound of the sensor")

    def inputs(self) -> list[str]:
        return [self.input]


class FlagRule(_Rule):
    kind: Literal["flag"]
    input: Identifier = Field(description="a 0/1 point, usually a bit of a status or fault word")
    active: Literal[0, 1] = Field(default=1, description="value that means 'fault present'")

    def inputs(self) -> list[str]:
        return [self.input]


class CodeRule(_Rule):
    kind: Literal["code"]
    input: Identifier = Field(description="an event or fault code register")
    values: list[int] = Field(min_length=1, description="codes that raise this alert")

    def inputs(self) -> list[str]:
        return [self.input]


class Condition(_Strict):
    input: Identifier
    op: Literal["eq", "ne", "gt", "ge", "lt", "le"]
    value: float = Field(allow_inf_nan=False)

    def holds(self, value: float) -> bool:
        match self.op:
            case "eq":
                return value == self.value
            case "ne":
                return value != self.value
            case "gt":
                return value > self.value
            case "ge":
                return value >= self.value
            case "lt":
                return value < self.value
            case _:
                return value <= self.value


class AllOfRule(_Rule):
    kind: Literal["all_of"]
    conditions: list[Condition] = Field(min_length=1, max_length=16)

    def inputs(self) -> list[str]:
        return [c.input for c in self.conditions]


RuleSpec = Annotated[
    ThresholdRule | RateRule | StaleRule | FaultRule | FlagRule | CodeRule | AllOfRule,
    Field(discriminator="kind"),
]


class RulePack(_Strict):
    id: Identifier = Field(description="short pack id, prefixes every rule id on the wire (<pack>.<rule>)")
    title: str = Field(max_length=64)
    category: Identifier = Field(description="alert domain: drug_storage, food_cold_chain, elevator, boiler, power")
    basis: str = Field(default="", max_length=500, description="regulation the limits come from")
    profiles: dict[Identifier, str] = Field(default_factory=dict, description="profile id → Chinese title")
    max_record_interval_s: float | None = Field(
        default=None, gt=0, le=86_400, description="statutory maximum between two readings of a measuring point"
    )
    record_interval_basis: str = Field(default="", max_length=200)
    recorded_only: dict[str, str] = Field(
        default_factory=dict,
        description="codes of the pack's code inputs that deliberately raise nothing (code → why); they are "
        "still recorded with the telemetry",
    )
    rules: list[RuleSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Self:
        ids = [r.id for r in self.rules]
        if len(ids) != len(set(ids)):
            raise ValueError(f"rule ids must be unique within a pack: {ids}")
        for rule in self.rules:
            unknown = [p for p in rule.profiles if p not in self.profiles]
            if unknown:
                raise ValueError(f"rule {rule.id}: unknown profiles {unknown} (declared: {list(self.profiles)})")
        return self

    def rules_for(
        self, profile: str | None
    ) -> list[ThresholdRule | RateRule | StaleRule | FaultRule | FlagRule | CodeRule | AllOfRule]:
        return [r for r in self.rules if not r.profiles or (profile is not None and profile in r.profiles)]
