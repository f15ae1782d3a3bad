"""Random inspection draw (双随机、一公开): subjects by risk-grade ratio, inspectors with recusal, reproducibly.

The algorithm (``ms-draw-v1``) is specified so that anyone can re-run it from the published record:

1. Subjects are grouped by risk grade; from a grade with ``n`` subjects ``ceil(n × ratio)`` (or ``floor``) are
   drawn: those with the smallest ``SHA-256("{seed}|subject|{subject_id}")`` (hex, compared as text).
2. Drawn subjects are processed in grade order (A→D) then by that hash. For each, the eligible inspectors are the
   directory minus globally excluded ones minus those recused for the subject; they are ordered by how many
   subjects they already got in this draw, then by ``SHA-256("{seed}|inspector|{subject_id}|{inspector_id}")``,
   and the first ``inspectors_per_subject`` are assigned (random, and balanced across inspectors).
3. ``inputs_hash`` = SHA-256 of the canonical JSON of every input (seed, ratios, subjects, inspectors,
   recusals, exclusions), ``result_hash`` of the canonical JSON of the assignments, ``record_hash`` of both.

Input order never matters (everything is sorted by id first); the same inputs and seed give the same list.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from cloud.rules.loader import RuleModel, load_model, rules_path
from cloud.workflow.analysis import RiskGrade

__all__ = [
    "ALGORITHM",
    "Assignment",
    "DrawError",
    "DrawInspector",
    "DrawRecord",
    "DrawRules",
    "DrawSubject",
    "draw",
    "load_draw_rules",
    "new_seed",
    "verify_draw",
]

ALGORITHM = "ms-draw-v1"


class DrawRules(RuleModel):
    version: str
    inspectors_per_subject: int = Field(default=2, ge=2, le=10)
    rounding: Literal["ceil", "floor"] = "ceil"
    ratios: dict[RiskGrade, float]

    @field_validator("ratios")
    @classmethod
    def _ratios(cls, ratios: dict[RiskGrade, float]) -> dict[RiskGrade, float]:
        missing = set(RiskGrade) - set(ratios)
        if missing:
            raise ValueError(f"ratio missing for grade(s) {sorted(missing)}")
        bad = {g.value: r for g, r in ratios.items() if not 0.0 <= r <= 1.0}
        if bad:
            raise ValueError(f"ratios must be within 0..1: {bad}")
        return ratios


def load_draw_rules(path: Path | None = None) -> DrawRules:
    return load_model(DrawRules, path or rules_path("draw.toml"))


@cache
def _packaged_rules() -> DrawRules:
    return load_draw_rules()


class DrawError(ValueError):
    """The draw cannot be made (duplicate ids, too few eligible inspectors for a subject...)."""


@dataclass(frozen=True, slots=True)
class DrawSubject:
    subject_id: str
    risk_grade: RiskGrade
    name: str = ""


@dataclass(frozen=True, slots=True)
class DrawInspector:
    inspector_id: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class Assignment:
    subject_id: str
    risk_grade: RiskGrade
    inspector_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DrawRecord:
    """What is stored and published for a draw; enough to reproduce and verify it."""

    plan_id: str
    algorithm: str
    seed: str
    rules_version: str
    ratios: dict[str, float]
    inspectors_per_subject: int
    population: dict[str, int]  # subjects per grade
    drawn: dict[str, int]  # drawn per grade
    assignments: tuple[Assignment, ...]
    inputs_hash: str
    result_hash: str
    record_hash: str


def new_seed() -> str:
    """A fresh 128-bit seed (hex) from the OS CSPRNG; record it with the plan before drawing."""
    return secrets.token_hex(16)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _canonical(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _unique(ids: Iterable[str], what: str) -> None:
    seen: set[str] = set()
    for item in ids:
        if item in seen:
            raise DrawError(f"重复的{what}编号 {item!r} / duplicate {what} id {item!r}")
        seen.add(item)


def draw(
    plan_id: str,
    seed: str,
    subjects: Iterable[DrawSubject],
    inspectors: Iterable[DrawInspector],
    *,
    recusals: Mapping[str, Iterable[str]] | None = None,
    excluded: Iterable[str] = (),
    rules: DrawRules | None = None,
) -> DrawRecord:
    """Draw subjects and inspectors for ``plan_id`` from ``seed``; see the module doc for the algorithm.

    ``recusals`` maps a subject id to the inspector ids that must not inspect it (利害关系回避);
    ``excluded`` lists inspectors unavailable for the whole plan.
    """
    if len(seed) < 16:
        raise DrawError("seed too short (≥16 characters) / 随机种子过短")
    pack = rules or _packaged_rules()
    subs = sorted(subjects, key=lambda s: s.subject_id)
    insp = sorted(inspectors, key=lambda i: i.inspector_id)
    _unique((s.subject_id for s in subs), "主体 subject")
    _unique((i.inspector_id for i in insp), "检查人员 inspector")
    rec = {sid: sorted(set(ids)) for sid, ids in sorted((recusals or {}).items())}
    excl = sorted(set(excluded))
    per = pack.inspectors_per_subject

    chosen: list[tuple[RiskGrade, str, DrawSubject]] = []
    population: dict[str, int] = {}
    drawn: dict[str, int] = {}
    for grade in RiskGrade:
        group = [s for s in subs if s.risk_grade is grade]
        exact = len(group) * pack.ratios[grade]
        count = math.ceil(exact - 1e-9) if pack.rounding == "ceil" else math.floor(exact + 1e-9)
        count = min(count, len(group))
        ranked = sorted(group, key=lambda s: _sha(f"{seed}|subject|{s.subject_id}"))[:count]
        chosen.extend((grade, _sha(f"{seed}|subject|{s.subject_id}"), s) for s in ranked)
        population[grade.value] = len(group)
        drawn[grade.value] = count

    load = {i.inspector_id: 0 for i in insp}
    assignments: list[Assignment] = []
    for grade, _key, subject in chosen:
        barred = set(excl) | set(rec.get(subject.subject_id, ()))
        eligible = [i.inspector_id for i in insp if i.inspector_id not in barred]
        if len(eligible) < per:
            raise DrawError(
                f"主体 {subject.subject_id} 可选检查人员不足 {per} 名（回避后剩 {len(eligible)} 名） / subject "
                f"{subject.subject_id}: only {len(eligible)} eligible inspector(s) after recusal, need {per}"
            )
        eligible.sort(key=lambda iid: (load[iid], _sha(f"{seed}|inspector|{subject.subject_id}|{iid}")))
        team = tuple(sorted(eligible[:per]))
        for iid in team:
            load[iid] += 1
        assignments.append(Assignment(subject.subject_id, grade, team))

    inputs = {
        "algorithm": ALGORITHM,
        "plan_id": plan_id,
        "seed": seed,
        "rules_version": pack.version,
        "ratios": {g.value: pack.ratios[g] for g in RiskGrade},
        "rounding": pack.rounding,
        "inspectors_per_subject": per,
        "subjects": [[s.subject_id, s.risk_grade.value] for s in subs],
        "inspectors": [i.inspector_id for i in insp],
        "recusals": rec,
        "excluded": excl,
    }
    result = [[a.subject_id, a.risk_grade.value, list(a.inspector_ids)] for a in assignments]
    inputs_hash = _sha(_canonical(inputs))
    result_hash = _sha(_canonical(result))
    return DrawRecord(
        plan_id=plan_id,
        algorithm=ALGORITHM,
        seed=seed,
        rules_version=pack.version,
        ratios={g.value: pack.ratios[g] for g in RiskGrade},
        inspectors_per_subject=per,
        population=population,
        drawn=drawn,
        assignments=tuple(assignments),
        inputs_hash=inputs_hash,
        result_hash=result_hash,
        record_hash=_sha(f"{inputs_hash}:{result_hash}"),
    )


def verify_draw(
    record: DrawRecord,
    subjects: Iterable[DrawSubject],
    inspectors: Iterable[DrawInspector],
    *,
    recusals: Mapping[str, Iterable[str]] | None = None,
    excluded: Iterable[str] = (),
    rules: DrawRules | None = None,
) -> bool:
    """True when re-running the draw from the record's seed and these inputs gives exactly the record."""
    again = draw(record.plan_id, record.seed, subjects, inspectors, recusals=recusals, excluded=excluded, rules=rules)
    recomputed_result = _sha(
        _canonical([[a.subject_id, a.risk_grade.value, list(a.inspector_ids)] for a in record.assignments])
    )
    return (
        again.inputs_hash == record.inputs_hash
        and again.result_hash == record.result_hash == recomputed_result
        and again.record_hash == record.record_hash
    )
