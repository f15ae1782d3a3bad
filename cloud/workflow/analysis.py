"""Comprehensive analysis (综合研判, standard §8.3): a data-driven disposal decision and risk grading.

* :func:`decide` runs the rule pack ``cloud/rules/analysis.toml`` over a clue's :class:`ClueFacts` and returns a
  :class:`Decision` that carries its explanation: the rule id and name, the reason text and every matched fact.
* :func:`grade_subject` recomputes a subject's risk grade A–D from its :class:`SubjectHistory` with the weights in
  ``cloud/rules/risk.toml`` and returns the score with one reason per contributing factor.

Both are pure functions over data; storing the decision, overrides by supervisors and the schedule belong to the
callers (phase 2).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cloud.rules.loader import RuleModel, load_model, rules_path
from protocols.messages import SEVERITY_RANK, Severity

__all__ = [
    "AnalysisRule",
    "AnalysisRules",
    "Channel",
    "ClueFacts",
    "ClueKind",
    "Decision",
    "Disposal",
    "MatchedFact",
    "RiskAssessment",
    "RiskGrade",
    "RiskReason",
    "RiskRules",
    "SubjectHistory",
    "decide",
    "grade_subject",
    "load_analysis_rules",
    "load_risk_rules",
]


class Disposal(StrEnum):
    HANDLE_DIRECTLY = "handle_directly"  # 直接办理
    INSPECT = "inspect"  # 派发现场检查
    OPEN_CASE = "open_case"  # 登记案源（执法）
    MANUAL_ANALYSIS = "manual_analysis"  # 人工研判
    NO_ACTION = "no_action"  # 不予处理


DISPOSAL_LABELS: dict[Disposal, str] = {
    Disposal.HANDLE_DIRECTLY: "直接办理",
    Disposal.INSPECT: "现场检查",
    Disposal.OPEN_CASE: "登记案源",
    Disposal.MANUAL_ANALYSIS: "人工研判",
    Disposal.NO_ACTION: "不予处理",
}


class ClueKind(StrEnum):
    ALERT = "alert"  # 感知设备告警
    COMPLAINT = "complaint"  # 投诉
    REPORT = "report"  # 举报
    REFERRAL = "referral"  # 上级交办、部门移送
    WALK_IN = "walk_in"  # 来访来信等其他
    FEEDBACK = "feedback"  # 研判、检查、执法、考核中产生的线索


class Channel(StrEnum):
    SENSOR = "sensor"
    VIDEO = "video"
    HOTLINE_12315 = "hotline_12315"
    HOTLINE_12345 = "hotline_12345"
    WALK_IN = "walk_in"
    LETTER = "letter"
    SUPERIOR = "superior"
    INTERNET = "internet"  # 互联网 (complaints and reports received online)
    INTERNET_MONITORING = "internet_monitoring"  # 互联网监测 (online ads and prices screened, cloud.internet)
    ANALYSIS = "analysis"
    INSPECTION = "inspection"
    ENFORCEMENT = "enforcement"
    ASSESSMENT = "assessment"


class RiskGrade(StrEnum):
    A = "A"  # 低风险
    B = "B"  # 一般风险
    C = "C"  # 较高风险
    D = "D"  # 高风险


_GRADE_ORDER = {g: i for i, g in enumerate(RiskGrade)}


class ClueFacts(BaseModel):
    """What analysis knows about a clue (assembled by the caller from the clue and the subject's history)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ClueKind
    channel: Channel
    category: str = Field(min_length=1, max_length=64)
    rule_id: str | None = Field(default=None, max_length=64, description="the device rule of an alert clue")
    severity: Severity = Severity.MINOR
    risk_grade: RiskGrade | None = None
    repeats_90d: int = Field(default=0, ge=0, description="earlier clues, same subject + category, last 90 days")
    sources: int = Field(default=1, ge=1, description="alerts / work orders folded into this clue")
    open_cases: int = Field(default=0, ge=0)


# ---------------------------------------------------------------------------------------------------------
# rule pack
# ---------------------------------------------------------------------------------------------------------
class Condition(RuleModel):
    kind: list[ClueKind] | None = None
    channel: list[Channel] | None = None
    category: list[str] | None = Field(default=None, description="glob patterns")
    rule_id: list[str] | None = Field(default=None, description="glob patterns on the alert's device rule")
    severity_at_least: Severity | None = None
    severity_at_most: Severity | None = None
    risk_grade: list[RiskGrade | Literal["unknown"]] | None = None
    repeats_90d_at_least: int | None = Field(default=None, ge=0)
    repeats_90d_at_most: int | None = Field(default=None, ge=0)
    sources_at_least: int | None = Field(default=None, ge=1)
    open_cases_at_least: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _not_empty(self) -> Condition:
        if not self.model_fields_set:
            raise ValueError("a rule needs at least one condition")
        return self


class AnalysisRule(RuleModel):
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    name: str = Field(min_length=1, max_length=100)
    when: Condition
    disposal: Disposal
    deadline: str | None = None
    reason: str = Field(min_length=1, max_length=300)


class DefaultDecision(RuleModel):
    disposal: Disposal = Disposal.MANUAL_ANALYSIS
    reason: str = Field(min_length=1, max_length=300)


class AnalysisRules(RuleModel):
    version: str = Field(min_length=1, max_length=40)
    default: DefaultDecision
    rules: list[AnalysisRule] = Field(min_length=1)

    @field_validator("rules")
    @classmethod
    def _unique_ids(cls, rules: list[AnalysisRule]) -> list[AnalysisRule]:
        seen: set[str] = set()
        for rule in rules:
            if rule.id in seen:
                raise ValueError(f"duplicate rule id {rule.id!r}")
            seen.add(rule.id)
        return rules


def load_analysis_rules(path: Path | None = None) -> AnalysisRules:
    return load_model(AnalysisRules, path or rules_path("analysis.toml"))


@cache
def _packaged_analysis_rules() -> AnalysisRules:
    return load_analysis_rules()


@dataclass(frozen=True, slots=True)
class MatchedFact:
    condition: str  # e.g. "severity_at_least"
    expected: str  # the rule's value
    actual: str  # the clue's fact


@dataclass(frozen=True, slots=True)
class Decision:
    disposal: Disposal
    rule_id: str  # "default" when no rule matched
    rule_name: str
    reason: str
    matched: tuple[MatchedFact, ...]
    pack_version: str
    deadline: str | None = None

    @property
    def explanation(self) -> str:
        """One line for the clue timeline, in Chinese."""
        from cloud.labels import fact_text  # the one vocabulary (it reads this module's labels)

        facts = "；".join(fact_text(m.condition, m.expected, m.actual) for m in self.matched)
        label = DISPOSAL_LABELS[self.disposal]
        named = f"「{self.rule_name}」"
        rule = f"默认规则{named}" if self.rule_id == "default" else f"规则 {self.rule_id}{named}"
        return f"研判结论：{label}。{rule}：{self.reason}" + (f"。命中事实：{facts}" if facts else "")


def _more_or_equally_severe(a: Severity, b: Severity) -> bool:
    return SEVERITY_RANK[a] <= SEVERITY_RANK[b]


def _match(cond: Condition, facts: ClueFacts) -> tuple[MatchedFact, ...] | None:
    """The matched facts when every condition holds, else ``None``."""
    out: list[MatchedFact] = []

    def check(name: str, ok: bool, expected: object, actual: object) -> bool:
        if ok:
            out.append(MatchedFact(name, str(expected), str(actual)))
        return ok

    def listed(values: Sequence[object]) -> str:
        return ",".join(str(v) for v in values)

    grade = facts.risk_grade.value if facts.risk_grade else "unknown"
    checks = [
        cond.kind is None or check("kind", facts.kind in cond.kind, listed(cond.kind), facts.kind.value),
        cond.channel is None
        or check("channel", facts.channel in cond.channel, listed(cond.channel), facts.channel.value),
        cond.category is None
        or check(
            "category",
            any(fnmatch.fnmatchcase(facts.category, p) for p in cond.category),
            listed(cond.category),
            facts.category,
        ),
        cond.rule_id is None
        or check(
            "rule_id",
            any(fnmatch.fnmatchcase(facts.rule_id or "", p) for p in cond.rule_id),
            listed(cond.rule_id),
            facts.rule_id or "",
        ),
        cond.severity_at_least is None
        or check(
            "severity_at_least",
            _more_or_equally_severe(facts.severity, cond.severity_at_least),
            cond.severity_at_least.value,
            facts.severity.value,
        ),
        cond.severity_at_most is None
        or check(
            "severity_at_most",
            _more_or_equally_severe(cond.severity_at_most, facts.severity),
            cond.severity_at_most.value,
            facts.severity.value,
        ),
        cond.risk_grade is None or check("risk_grade", grade in cond.risk_grade, listed(list(cond.risk_grade)), grade),
        cond.repeats_90d_at_least is None
        or check(
            "repeats_90d_at_least",
            facts.repeats_90d >= cond.repeats_90d_at_least,
            cond.repeats_90d_at_least,
            facts.repeats_90d,
        ),
        cond.repeats_90d_at_most is None
        or check(
            "repeats_90d_at_most",
            facts.repeats_90d <= cond.repeats_90d_at_most,
            cond.repeats_90d_at_most,
            facts.repeats_90d,
        ),
        cond.sources_at_least is None
        or check("sources_at_least", facts.sources >= cond.sources_at_least, cond.sources_at_least, facts.sources),
        cond.open_cases_at_least is None
        or check(
            "open_cases_at_least",
            facts.open_cases >= cond.open_cases_at_least,
            cond.open_cases_at_least,
            facts.open_cases,
        ),
    ]
    # ``all`` over a list (not a generator): every check runs, but the answer is the same either way
    return tuple(out) if all(checks) else None


def decide(facts: ClueFacts, rules: AnalysisRules | None = None) -> Decision:
    """Decide a clue's disposal: the first matching rule of the pack, else the pack's default."""
    pack = rules or _packaged_analysis_rules()
    for rule in pack.rules:
        matched = _match(rule.when, facts)
        if matched is not None:
            return Decision(rule.disposal, rule.id, rule.name, rule.reason, matched, pack.version, rule.deadline)
    return Decision(pack.default.disposal, "default", "默认规则", pack.default.reason, (), pack.version)


# ---------------------------------------------------------------------------------------------------------
# risk grading
# ---------------------------------------------------------------------------------------------------------
class SubjectHistory(BaseModel):
    """Counts and flags over a subject's history, assembled by the caller from the journal and registry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    business_type: str | None = None
    critical_alerts_90d: int = Field(default=0, ge=0)
    major_alerts_90d: int = Field(default=0, ge=0)
    substantiated_complaints_12m: int = Field(default=0, ge=0)
    minor_violations_12m: int = Field(default=0, ge=0)
    general_violations_12m: int = Field(default=0, ge=0)
    serious_violations_12m: int = Field(default=0, ge=0)
    penalties_24m: int = Field(default=0, ge=0)
    overdue_rectifications: int = Field(default=0, ge=0)
    clean_inspections_12m: int = Field(default=0, ge=0)
    serious_dishonesty_list: bool = False
    abnormal_operation_list: bool = False
    licence_expired: bool = False


_COUNT_FIELDS = {n for n, f in SubjectHistory.model_fields.items() if f.annotation is int}
_FLAG_FIELDS = {n for n, f in SubjectHistory.model_fields.items() if f.annotation is bool}


class GradeBand(RuleModel):
    grade: RiskGrade
    max_score: int


class RiskFactor(RuleModel):
    id: str = Field(pattern=r"^[a-z0-9_]{1,40}$")
    field: str
    label: str = Field(min_length=1, max_length=60)
    points: int = Field(ge=-100, le=100)
    cap: int = Field(ge=-1000, le=1000)

    @model_validator(mode="after")
    def _check(self) -> RiskFactor:
        if self.field not in _COUNT_FIELDS:
            raise ValueError(f"field {self.field!r} is not a count of SubjectHistory ({sorted(_COUNT_FIELDS)})")
        if (self.points >= 0) != (self.cap >= 0):
            raise ValueError("points and cap must have the same sign")
        return self


class RiskFloor(RuleModel):
    field: str
    grade: RiskGrade
    label: str = Field(min_length=1, max_length=60)

    @field_validator("field")
    @classmethod
    def _flag(cls, value: str) -> str:
        if value not in _FLAG_FIELDS:
            raise ValueError(f"field {value!r} is not a flag of SubjectHistory ({sorted(_FLAG_FIELDS)})")
        return value


class RiskRules(RuleModel):
    version: str
    grades: list[GradeBand] = Field(min_length=1)
    inherent: dict[str, int] = Field(default_factory=dict)
    factors: list[RiskFactor] = Field(default_factory=list)
    floors: list[RiskFloor] = Field(default_factory=list)

    @field_validator("grades")
    @classmethod
    def _ascending(cls, grades: list[GradeBand]) -> list[GradeBand]:
        if [g.grade for g in grades] != list(RiskGrade):
            raise ValueError("grades must list A, B, C, D in order")
        scores = [g.max_score for g in grades]
        if scores != sorted(scores) or len(set(scores)) != len(scores):
            raise ValueError("max_score must increase from A to D")
        return grades


def load_risk_rules(path: Path | None = None) -> RiskRules:
    return load_model(RiskRules, path or rules_path("risk.toml"))


@cache
def _packaged_risk_rules() -> RiskRules:
    return load_risk_rules()


@dataclass(frozen=True, slots=True)
class RiskReason:
    factor: str
    label: str
    value: int | bool | str
    points: int


@dataclass(frozen=True, slots=True)
class RiskAssessment:
    grade: RiskGrade
    score: int
    reasons: tuple[RiskReason, ...]
    previous: RiskGrade | None
    version: str

    @property
    def changed(self) -> bool:
        return self.previous is not None and self.previous is not self.grade

    @property
    def explanation(self) -> str:
        parts = "；".join(f"{r.label} {r.value}（{r.points:+d}）" for r in self.reasons)
        return f"风险等级 {self.grade.value}（得分 {self.score}）" + (f"：{parts}" if parts else "")


def grade_subject(
    history: SubjectHistory, *, previous: RiskGrade | None = None, rules: RiskRules | None = None
) -> RiskAssessment:
    """Recompute a subject's risk grade from its history, with one reason per contributing factor."""
    pack = rules or _packaged_risk_rules()
    reasons: list[RiskReason] = []
    score = 0
    if history.business_type and (inherent := pack.inherent.get(history.business_type)):
        reasons.append(RiskReason("inherent", "业态固有风险", history.business_type, inherent))
        score += inherent
    for factor in pack.factors:
        value = getattr(history, factor.field)
        if not value:
            continue
        raw = value * factor.points
        points = min(raw, factor.cap) if factor.points >= 0 else max(raw, factor.cap)
        reasons.append(RiskReason(factor.id, factor.label, value, points))
        score += points
    score = max(score, 0)
    grade = next(band.grade for band in pack.grades if score <= band.max_score)
    for floor in pack.floors:
        if getattr(history, floor.field) and _GRADE_ORDER[floor.grade] > _GRADE_ORDER[grade]:
            grade = floor.grade
            reasons.append(RiskReason(floor.field, floor.label, True, 0))
        elif getattr(history, floor.field):
            reasons.append(RiskReason(floor.field, floor.label, True, 0))
    return RiskAssessment(grade, score, tuple(reasons), previous, pack.version)
