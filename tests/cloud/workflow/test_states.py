from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.workflow.states import (
    CASE_MACHINE,
    CLUE_MACHINE,
    MACHINES,
    TASK_MACHINE,
    CaseAction,
    CaseState,
    ClueAction,
    ClueState,
    Role,
    TaskAction,
    TaskState,
    TransitionError,
    transition,
)


def test_clue_happy_path_to_closed() -> None:
    state = ClueState.NEW
    state = transition(state, ClueAction.TRIAGE, Role.SYSTEM)
    state = transition(state, ClueAction.ANALYSE, Role.SYSTEM)
    state = transition(state, ClueAction.DISPATCH, Role.ANALYST)
    state = transition(state, ClueAction.START, Role.INSPECTOR)
    state = transition(state, "close", "system", reason="现场检查合格，告警原因为冰箱门未关")
    assert state is ClueState.CLOSED


def test_invalid_transition_has_chinese_and_english_reason() -> None:
    with pytest.raises(TransitionError) as info:
        transition(ClueState.CLOSED, ClueAction.DISPATCH, Role.DISPATCHER)
    err = info.value
    assert err.code == "invalid_transition"
    assert "已办结" in err.reason_zh and "派发" in err.reason_zh
    assert "closed" in err.reason_en and "dispatch" in err.reason_en
    assert err.machine == "clue" and err.current == "closed"


def test_role_and_reason_are_enforced() -> None:
    with pytest.raises(TransitionError) as info:
        transition(ClueState.TRIAGED, ClueAction.DISPATCH, Role.INSPECTOR)
    assert info.value.code == "role_not_allowed"
    with pytest.raises(TransitionError) as info:
        transition(ClueState.TRIAGED, ClueAction.DISMISS, Role.ANALYST, reason="  ")
    assert info.value.code == "reason_required"
    assert transition(ClueState.TRIAGED, ClueAction.DISMISS, Role.ANALYST, reason="重复举报") is ClueState.NO_ACTION


def test_unknown_values_are_refused() -> None:
    for args, code in [
        (("nonsense", "triage", "system"), "unknown_state"),
        (("new", "fly", "system"), "invalid_transition"),
        (("new", "triage", "janitor"), "role_not_allowed"),
    ]:
        with pytest.raises(TransitionError) as info:
            transition(*args)
        assert info.value.code == code


def test_closed_clue_only_reopens_by_a_head() -> None:
    assert CLUE_MACHINE.allowed_actions(ClueState.CLOSED) == [ClueAction.REOPEN]
    assert CLUE_MACHINE.allowed_actions(ClueState.MERGED) == []
    assert transition("closed", "reopen", "bureau_head", reason="投诉人申诉") is ClueState.TRIAGED


def test_case_full_procedure_and_approval_roles() -> None:
    steps = [
        (CaseAction.APPROVE_OPENING, Role.BUREAU_HEAD),
        (CaseAction.START_INVESTIGATION, Role.ENFORCEMENT_OFFICER),
        (CaseAction.NOTIFY, Role.ENFORCEMENT_OFFICER),
        (CaseAction.SUBMIT_LEGAL_REVIEW, Role.ENFORCEMENT_OFFICER),
        (CaseAction.PASS_REVIEW, Role.LEGAL_REVIEWER),
        (CaseAction.DECIDE, Role.BUREAU_HEAD),
        (CaseAction.SERVE, Role.ENFORCEMENT_OFFICER),
        (CaseAction.RECORD_PAYMENT, Role.SYSTEM),
        (CaseAction.CLOSE, Role.DEPARTMENT_HEAD),
    ]
    state = CASE_MACHINE.initial
    for action, role in steps:
        reason = "意见" if action is CaseAction.PASS_REVIEW else None
        state = CASE_MACHINE.transition(state, action, role, reason=reason)
    assert state is CaseState.CLOSED
    with pytest.raises(TransitionError) as info:
        CASE_MACHINE.transition(CaseState.REGISTERED, CaseAction.APPROVE_OPENING, Role.ENFORCEMENT_OFFICER)
    assert info.value.code == "role_not_allowed" and "部门负责人" in info.value.reason_zh
    with pytest.raises(TransitionError):
        CASE_MACHINE.transition(CaseState.INVESTIGATING, CaseAction.DECIDE, Role.BUREAU_HEAD)  # skips review
    with pytest.raises(TransitionError):
        CASE_MACHINE.transition(CaseState.INVESTIGATING, CaseAction.SUBMIT_LEGAL_REVIEW, Role.ENFORCEMENT_OFFICER)
    with pytest.raises(TransitionError):  # no decision straight after the notice
        CASE_MACHINE.transition(CaseState.NOTIFIED, CaseAction.DECIDE, Role.BUREAU_HEAD)


def test_task_states() -> None:
    state = TASK_MACHINE.initial
    for action in (TaskAction.ACCEPT, TaskAction.CHECK_IN, TaskAction.SUBMIT):
        state = TASK_MACHINE.transition(state, action, Role.INSPECTOR)
    assert state is TaskState.SUBMITTED
    assert TASK_MACHINE.transition(state, TaskAction.CLOSE, Role.DEPARTMENT_HEAD) is TaskState.CLOSED
    with pytest.raises(TransitionError):
        TASK_MACHINE.transition(TaskState.ASSIGNED, TaskAction.SUBMIT, Role.INSPECTOR)  # no check-in


def test_every_state_is_reachable_and_labelled() -> None:
    for machine in MACHINES.values():
        reachable = {machine.initial}
        frontier = [machine.initial]
        while frontier:
            current = frontier.pop()
            for action in machine.allowed_actions(current):
                tr = machine.find(current, action)
                assert tr is not None
                if tr.target not in reachable:
                    reachable.add(tr.target)
                    frontier.append(tr.target)
        assert reachable == set(machine.all_states()), machine.name
        assert "stateDiagram-v2" in machine.to_mermaid()


@settings(max_examples=200, deadline=None)
@given(
    state=st.sampled_from(list(ClueState)),
    action=st.sampled_from(list(ClueAction)),
    role=st.sampled_from(list(Role)),
)
def test_transition_agrees_with_the_table(state: ClueState, action: ClueAction, role: Role) -> None:
    tr = CLUE_MACHINE.find(state, action)
    try:
        result = transition(state, action, role, reason="理由")
    except TransitionError as exc:
        assert tr is None or role not in tr.roles
        assert exc.reason_zh and exc.reason_en
    else:
        assert tr is not None and role in tr.roles and result is tr.target


def test_docs_show_the_current_diagrams() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[3] / "docs" / "workflow.md").read_text(encoding="utf-8")
    for machine in MACHINES.values():
        assert machine.to_mermaid() in doc, f"docs/workflow.md is out of date for the {machine.name} machine"
