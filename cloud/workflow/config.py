"""Workflow configuration as validated data: ``cloud/rules/grouping.toml`` and ``cloud/rules/workflow.toml``.

Both are loaded once (``extra="forbid"``; a bad file raises :class:`~cloud.rules.loader.RuleFileError` naming the
file, the key and the reason). ``SENTINEL_WORKFLOW_RULES_DIR`` points at a directory holding a county's own copies.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from cloud.rules.loader import RuleModel, load_model, rules_path

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


class Bureau(RuleModel):
    agency: str = Field(min_length=1, max_length=100)
    doc_prefix: str = Field(min_length=1, max_length=20)
    contact: str = Field(min_length=1, max_length=100)
    reconsideration_body: str | None = None
    court: str | None = None
    default_department: str = ""


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


def _dir() -> Path | None:
    value = os.environ.get("SENTINEL_WORKFLOW_RULES_DIR")
    return Path(value) if value else None


@cache
def grouping_rules() -> GroupingRules:
    return load_model(GroupingRules, rules_path("grouping.toml", _dir()))


@cache
def workflow_rules() -> WorkflowRules:
    return load_model(WorkflowRules, rules_path("workflow.toml", _dir()))
