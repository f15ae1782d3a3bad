from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.rules.loader import RuleFileError
from cloud.workflow.analysis import RiskGrade
from cloud.workflow.draw import (
    DrawError,
    DrawInspector,
    DrawRules,
    DrawSubject,
    draw,
    load_draw_rules,
    new_seed,
    verify_draw,
)

SEED = "0123456789abcdef0123456789abcdef"
GRADES = list(RiskGrade)


def directory(n_subjects: int = 400, n_inspectors: int = 12) -> tuple[list[DrawSubject], list[DrawInspector]]:
    subjects = [DrawSubject(f"s{i:04d}", GRADES[i % 4]) for i in range(n_subjects)]
    inspectors = [DrawInspector(f"i{j:02d}") for j in range(n_inspectors)]
    return subjects, inspectors


def test_sampling_ratios_per_grade() -> None:
    subjects, inspectors = directory()
    record = draw("plan-2026-12", SEED, subjects, inspectors)
    # 100 subjects per grade, ratios 1 % / 2 % / 10 % / 30 %
    assert record.population == {"A": 100, "B": 100, "C": 100, "D": 100}
    assert record.drawn == {"A": 1, "B": 2, "C": 10, "D": 30}
    assert len(record.assignments) == 43
    assert all(len(a.inspector_ids) == 2 and len(set(a.inspector_ids)) == 2 for a in record.assignments)
    loads = [sum(i.inspector_id in a.inspector_ids for a in record.assignments) for i in inspectors]
    assert max(loads) - min(loads) <= 1  # balanced


def test_same_seed_same_list_regardless_of_input_order() -> None:
    subjects, inspectors = directory()
    first = draw("p", SEED, subjects, inspectors)
    shuffled_s, shuffled_i = subjects[:], inspectors[:]
    random.Random(7).shuffle(shuffled_s)
    random.Random(8).shuffle(shuffled_i)
    second = draw("p", SEED, shuffled_s, shuffled_i)
    assert first == second
    other = draw("p", new_seed(), subjects, inspectors)
    assert other.assignments != first.assignments and other.inputs_hash != first.inputs_hash


def test_verification_detects_tampering() -> None:
    subjects, inspectors = directory()
    record = draw("p", SEED, subjects, inspectors, recusals={"s0003": ["i01"]})
    assert verify_draw(record, subjects, inspectors, recusals={"s0003": ["i01"]})
    assert not verify_draw(record, subjects, inspectors)  # recusals changed
    swapped = dataclasses.replace(
        record,
        assignments=(dataclasses.replace(record.assignments[0], inspector_ids=("i98", "i99")), *record.assignments[1:]),
    )
    assert not verify_draw(swapped, subjects, inspectors, recusals={"s0003": ["i01"]})


def test_too_few_eligible_inspectors_is_an_error() -> None:
    subjects = [DrawSubject("s1", RiskGrade.D)]
    inspectors = [DrawInspector("a"), DrawInspector("b"), DrawInspector("c")]
    with pytest.raises(DrawError, match="s1"):
        draw("p", SEED, subjects, inspectors, recusals={"s1": ["a"]}, excluded=["b"])
    with pytest.raises(DrawError, match="duplicate"):
        draw("p", SEED, subjects * 2, inspectors)


def test_rules_file_validation(tmp_path: Path) -> None:
    assert load_draw_rules().inspectors_per_subject >= 2
    path = tmp_path / "draw.toml"
    path.write_text('version = "t"\ninspectors_per_subject = 1\n[ratios]\nA = 0.1\nB = 0.1\nC = 0.1\nD = 0.1\n')
    with pytest.raises(RuleFileError) as info:
        load_draw_rules(path)
    assert info.value.key == "inspectors_per_subject"


@settings(max_examples=80, deadline=None)
@given(
    n_subjects=st.integers(1, 40),
    n_inspectors=st.integers(4, 10),
    seed=st.text(alphabet="0123456789abcdef", min_size=16, max_size=32),
    data=st.data(),
)
def test_never_picks_a_recused_or_excluded_inspector(
    n_subjects: int, n_inspectors: int, seed: str, data: st.DataObject
) -> None:
    subjects, inspectors = directory(n_subjects, n_inspectors)
    ids = [i.inspector_id for i in inspectors]
    excluded = data.draw(st.lists(st.sampled_from(ids), max_size=1, unique=True))
    recusals = {
        s.subject_id: data.draw(st.lists(st.sampled_from(ids), max_size=n_inspectors - 3, unique=True))
        for s in subjects
    }
    rules = DrawRules(version="t", ratios=dict.fromkeys(RiskGrade, 1.0))
    record = draw("p", seed, subjects, inspectors, recusals=recusals, excluded=excluded, rules=rules)
    assert len(record.assignments) == n_subjects
    for a in record.assignments:
        assert not set(a.inspector_ids) & (set(recusals[a.subject_id]) | set(excluded))
        assert len(a.inspector_ids) == 2
    assert record == draw("p", seed, subjects, inspectors, recusals=recusals, excluded=excluded, rules=rules)
