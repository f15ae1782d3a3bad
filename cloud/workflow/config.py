"""Workflow configuration as validated data: ``cloud/rules/grouping.toml`` and ``cloud/rules/workflow.toml``.

Both are loaded once (``extra="forbid"``; a bad file raises :class:`~cloud.rules.loader.RuleFileError` naming the
file, the key and the reason). ``SENTINEL_WORKFLOW_RULES_DIR`` points at a directory holding a county's own copies.
``SENTINEL_COUNTY_FILE`` names a county's configuration file whose ``[bureau]`` section (agency, document numbering,
contact, review bodies) replaces the packaged placeholders: what a legal document prints comes from there.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator

from cloud.rules.loader import (
    RuleFileError,
    RuleModel,
    load_model,
    read_data_file,
    rules_path,
    validation_to_rule_error,
)

GroupKey = Literal["subject", "site", "category", "device", "rule", "kind"]

__all__ = ["GroupingRules", "WorkflowRules", "grouping_rules", "workflow_rules"]


class GroupingRules(RuleModel):
    version: str
    keys: list[GroupKey] = Field(min_length=1)
    window_hours: float = Field(gt=0, le=24 * 366, description="fold only within this time after the first source")
    max_sources: int = Field(default=500, ge=1)
    across_kinds: bool = True

    @field_validator("keys")
    @classmethod
    def _unique(cls, keys: list[GroupKey]) -> list[GroupKey]:
        if len(set(keys)) != len(keys):
            raise ValueError("duplicate grouping keys")
        return keys


DEFAULT_DOC_INFIX = {"inspection_record": "检", "rectification_order": "责改", "case_approval": "立"}


class Bureau(RuleModel):
    agency: str = Field(min_length=1, max_length=100)
    doc_prefix: str = Field(min_length=1, max_length=20)
    doc_no_pattern: str = Field(
        default="{prefix}{infix}〔{year}〕{seq}号",
        min_length=5,
        max_length=60,
        description="文书编号格式；占位符 {prefix} {infix} {year} {seq}（可写 {seq:03d}）",
    )
    doc_infix: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_DOC_INFIX), description="文书种类简称")
    contact: str = Field(min_length=1, max_length=100)
    reconsideration_body: str | None = None
    court: str | None = None
    default_department: str = ""

    @field_validator("doc_no_pattern")
    @classmethod
    def _pattern(cls, pattern: str) -> str:
        try:
            sample = pattern.format(prefix="甲", infix="乙", year=2026, seq=1)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"bad document-number pattern ({exc}); placeholders: prefix, infix, year, seq") from None
        if "1" not in sample or "2026" not in sample:
            raise ValueError("the document-number pattern must contain {year} and {seq}")
        return pattern

    def doc_no(self, kind: str, year: int, seq: int) -> str:
        return self.doc_no_pattern.format(
            prefix=self.doc_prefix, infix=self.doc_infix.get(kind, ""), year=year, seq=seq
        )


IntakeField = Literal[
    "complainant_name",
    "complainant_phone",
    "complainant_address",
    "complainant_id_no",
    "respondent_name",
    "respondent_address",
    "respondent_uscc",
    "request",
    "facts",
]


class Intake(RuleModel):
    default_severity: Literal["critical", "major", "minor", "warning", "indeterminate"] = "minor"
    default_category: str = "consumer_dispute"
    complaint_required: list[IntakeField]
    report_required: list[IntakeField]
    referral_required: list[IntakeField]


class Analysis(RuleModel):
    analyse_on_create: bool = True
    auto_dispatch: bool = False
    repeat_window_days: int = Field(default=90, ge=1, le=3660)


class Dispatch(RuleModel):
    inspectors_per_task: int = Field(default=2, ge=2, le=10)
    officers_per_case: int = Field(default=2, ge=2, le=10)
    task_due_working_days: dict[str, int]
    default_method: str = "现场检查"
    follow_up_officers: Literal["same", "pick"] = Field(
        default="same", description="复查: same = the ordering officers (when eligible); pick = balanced"
    )


class Risk(RuleModel):
    business_type_by_site_category: dict[str, str] = Field(default_factory=dict)
    recompute_every_hours: float = Field(default=720, gt=0)


class WorkflowRules(RuleModel):
    version: str
    bureau: Bureau
    intake: Intake
    analysis: Analysis
    dispatch: Dispatch
    risk: Risk


@cache
def grouping_rules() -> GroupingRules:
    return load_model(GroupingRules, rules_path("grouping.toml"))


@cache
def workflow_rules() -> WorkflowRules:
    rules = load_model(WorkflowRules, rules_path("workflow.toml"))
    county = os.environ.get("SENTINEL_COUNTY_FILE")
    if county:
        rules = rules.model_copy(update={"bureau": county_bureau(Path(county))})
    return rules


def county_bureau(path: Path) -> Bureau:
    """The ``[bureau]`` section of a county's configuration file (other sections belong to other readers)."""
    data = read_data_file(path)
    section = data.get("bureau")
    if not isinstance(section, dict):
        raise RuleFileError(path, "bureau", "missing [bureau] section (agency, doc_prefix, contact, …)")
    try:
        return Bureau.model_validate(section)
    except ValidationError as exc:
        error = validation_to_rule_error(path, exc)
        raise RuleFileError(path, f"bureau.{error.key}", error.reason) from exc
