"""The user-facing vocabulary (界面用语): one map from every stored code to the Chinese a person reads.

The data lives in ``cloud/rules/labels.toml`` (journal events, analysis conditions, grades, outcomes, clock status,
machine actors) and beside the enums it names (workflow states and actions, clue categories, severities, kinds,
channels, duties, account roles, disposals, conclusions, assessment dimensions); :func:`vocabulary` puts them
together once. The console reads it from ``GET /console/labels``; Python callers use :func:`term` and the helpers.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import Field

from cloud.rules.loader import RuleModel, load_model, rules_path

#: a site's domain (``Site.category``) as a person reads it
DOMAIN_LABELS = {"food": "食品", "drug": "药品", "special_equipment": "特种设备"}


class LabelFile(RuleModel):
    version: str = Field(min_length=1, max_length=40)
    events: dict[str, str]
    conditions: dict[str, str]
    category_patterns: dict[str, str]
    grades: dict[str, str]
    outcomes: dict[str, str]
    clock_status: dict[str, str]
    actors: dict[str, str]
    approval_states: dict[str, str] = Field(default_factory=dict)
    quarantine_reasons: dict[str, str] = Field(default_factory=dict)
    quarantine_kinds: dict[str, str] = Field(default_factory=dict)
    device_types: dict[str, str] = Field(default_factory=dict)


@cache
def label_file() -> LabelFile:
    return load_model(LabelFile, rules_path("labels.toml"))


@cache
def vocabulary() -> dict[str, Any]:
    """Every label map, keyed by what it names (``events``, ``states`` → machine → state, ``categories`` …)."""
    from cloud.assessment.config import packaged_indicator_rules
    from cloud.core.users import ROLE_LABELS as ACCOUNT_ROLE_LABELS
    from cloud.workflow.analysis import DISPOSAL_LABELS
    from cloud.workflow.clues import CATEGORY_LABELS, KIND_LABELS, SEVERITY_LABELS
    from cloud.workflow.inspection import CONCLUSION_LABELS
    from cloud.workflow.intake import CHANNEL_LABELS
    from cloud.workflow.states import MACHINES, ROLE_LABELS

    data = label_file()
    return {
        "domains": dict(DOMAIN_LABELS),
        "categories": dict(CATEGORY_LABELS),
        "severities": dict(SEVERITY_LABELS),
        "kinds": dict(KIND_LABELS),
        "channels": {"sensor": "感知设备", "video": "视频监控", **CHANNEL_LABELS},
        "duties": {str(k): v for k, v in ROLE_LABELS.items()},
        "roles": {str(k): v for k, v in ACCOUNT_ROLE_LABELS.items()},
        "states": {name: {str(s): m.state_labels[s] for s in m.states} for name, m in MACHINES.items()},
        "actions": {name: {str(a): m.action_labels[a] for a in m.actions} for name, m in MACHINES.items()},
        "disposals": {str(k): v for k, v in DISPOSAL_LABELS.items()},
        "conclusions": dict(CONCLUSION_LABELS),
        "dimensions": dict(packaged_indicator_rules().dimensions),
        "events": dict(data.events),
        "conditions": dict(data.conditions),
        "grades": dict(data.grades),
        "outcomes": dict(data.outcomes),
        "clock_status": dict(data.clock_status),
        "actors": dict(data.actors),
        "approval_states": dict(data.approval_states),
        "quarantine_reasons": dict(data.quarantine_reasons),
        "quarantine_kinds": dict(data.quarantine_kinds),
        "device_types": dict(data.device_types),
    }


def term(kind: str, code: str | None) -> str:
    """The label of ``code`` in map ``kind``; the code itself when it has none (and ``—`` for nothing)."""
    if code is None or code == "":
        return "—"
    found = vocabulary().get(kind, {}).get(code)
    return found if isinstance(found, str) else code


def value_text(condition: str, value: str) -> str:
    """An analysis fact's value in words: ``complaint`` → 投诉, ``food_*,drug_*`` → 食品类、药品类, ``C`` → C 级…"""
    vocab = vocabulary()
    maps: dict[str, dict[str, str]] = {
        "kind": vocab["kinds"],
        "channel": vocab["channels"],
        "category": {**vocab["categories"], **label_file().category_patterns},
        "severity_at_least": vocab["severities"],
        "severity_at_most": vocab["severities"],
        "risk_grade": vocab["grades"],
    }
    table = maps.get(condition)
    if table is None:
        return value
    words = [table.get(part.strip(), part.strip()) for part in value.split(",") if part.strip()]
    unique = list(dict.fromkeys(words))
    return "、".join(unique)


def fact_text(condition: str, expected: str, actual: str) -> str:
    """``kind=complaint（规则 complaint）`` in words: ``线索类型为投诉（规则：投诉）``."""
    name = label_file().conditions.get(condition, condition)
    if condition.endswith(("_at_least", "_at_most")):
        return f"{name} {value_text(condition, expected)}（实际 {value_text(condition, actual)}）"
    return f"{name}为{value_text(condition, actual)}（规则：{value_text(condition, expected)}）"


def actor_text(actor: str) -> str | None:
    """A machine actor's label (系统, 自助终端, 边缘设备 …); ``None`` for a person (look up their name)."""
    actors = label_file().actors
    if actor in actors:
        return actors[actor]
    for prefix, text in actors.items():
        if prefix.endswith(":") and actor.startswith(prefix):
            return text
    return None
