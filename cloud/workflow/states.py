"""State machines of the supervision workflow as data: clues, inspection tasks, enforcement cases.

Each machine is a table of :class:`Transition` rows (from-states, action, to-state, allowed roles, whether a
reason is required). :meth:`StateMachine.transition` is pure: it returns the new state or raises a
:class:`TransitionError` whose ``code`` tells the API layer how to answer (``invalid_transition`` → 409,
``role_not_allowed`` → 403, ``reason_required`` → 422) and whose message is Chinese + English.

Recording who/when/why and making concurrent transitions exclusive is the caller's job (phase 2: a
compare-and-set on the stored state inside the transaction that appends the journal event).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar

__all__ = [
    "CASE_MACHINE",
    "CLUE_MACHINE",
    "TASK_MACHINE",
    "CaseAction",
    "CaseState",
    "ClueAction",
    "ClueState",
    "Role",
    "StateMachine",
    "TaskAction",
    "TaskState",
    "Transition",
    "TransitionError",
    "transition",
]


class Role(StrEnum):
    SYSTEM = "system"  # 系统（自动研判、告警转线索、期限到期）
    INTAKE_CLERK = "intake_clerk"  # 受理员
    ANALYST = "analyst"  # 研判员
    DISPATCHER = "dispatcher"  # 指挥调度员
    INSPECTOR = "inspector"  # 检查人员
    ENFORCEMENT_OFFICER = "enforcement_officer"  # 执法办案人员
    DEPARTMENT_HEAD = "department_head"  # 科室（承办机构）负责人
    LEGAL_REVIEWER = "legal_reviewer"  # 法制审核人员
    BUREAU_HEAD = "bureau_head"  # 市场监督管理部门负责人
    SUPERVISOR = "supervisor"  # 督查考核人员


ROLE_LABELS: dict[Role, str] = {
    Role.SYSTEM: "系统",
    Role.INTAKE_CLERK: "受理员",
    Role.ANALYST: "研判员",
    Role.DISPATCHER: "指挥调度员",
    Role.INSPECTOR: "检查人员",
    Role.ENFORCEMENT_OFFICER: "执法办案人员",
    Role.DEPARTMENT_HEAD: "承办机构负责人",
    Role.LEGAL_REVIEWER: "法制审核人员",
    Role.BUREAU_HEAD: "部门负责人",
    Role.SUPERVISOR: "督查人员",
}

S = TypeVar("S", bound=StrEnum)
A = TypeVar("A", bound=StrEnum)

ErrorCode = Literal["invalid_transition", "role_not_allowed", "reason_required", "unknown_state"]


class TransitionError(ValueError):
    """A refused state change; ``code`` classifies it, ``reason_zh``/``reason_en`` explain it."""

    def __init__(
        self, code: ErrorCode, reason_zh: str, reason_en: str, *, machine: str, current: str, action: str, role: str
    ) -> None:
        self.code = code
        self.reason_zh = reason_zh
        self.reason_en = reason_en
        self.machine = machine
        self.current = current
        self.action = action
        self.role = role
        super().__init__(f"{reason_zh} / {reason_en}")


@dataclass(frozen=True, slots=True)
class Transition(Generic[S, A]):
    sources: frozenset[S]
    action: A
    target: S
    roles: frozenset[Role]
    requires_reason: bool = False


def _t(sources: Iterable[S], action: A, target: S, roles: Iterable[Role], *, reason: bool = False) -> Transition[S, A]:
    return Transition(frozenset(sources), action, target, frozenset(roles), reason)


class StateMachine(Generic[S, A]):
    """A finite state machine given as data."""

    def __init__(
        self,
        name: str,
        label: str,
        states: type[S],
        actions: type[A],
        initial: S,
        terminal: Iterable[S],
        state_labels: dict[S, str],
        action_labels: dict[A, str],
        transitions: Iterable[Transition[S, A]],
    ) -> None:
        self.name = name
        self.label = label
        self.states = states
        self.actions = actions
        self.initial = initial
        self.terminal = frozenset(terminal)  # finished states (only a reopen may leave them)
        self.state_labels = state_labels
        self.action_labels = action_labels
        self.transitions: tuple[Transition[S, A], ...] = tuple(transitions)
        self._index: dict[tuple[S, A], Transition[S, A]] = {}
        for tr in self.transitions:
            for source in tr.sources:
                if (source, tr.action) in self._index:
                    raise ValueError(f"{name}: duplicate transition {source}--{tr.action}")
                self._index[(source, tr.action)] = tr
        missing = set(states) - set(state_labels)
        if missing or set(actions) - set(action_labels):
            raise ValueError(f"{name}: labels missing for {missing or set(actions) - set(action_labels)}")

    def all_states(self) -> list[S]:
        return list(self.states)

    def state_label(self, state: S) -> str:
        return self.state_labels[state]

    def allowed_actions(self, current: S, role: Role | None = None) -> list[A]:
        """Actions possible from ``current`` (for ``role`` if given), in table order."""
        return [tr.action for tr in self.transitions if current in tr.sources and (role is None or role in tr.roles)]

    def find(self, current: S, action: A) -> Transition[S, A] | None:
        return self._index.get((current, action))

    def transition(self, current: S | str, action: A | str, role: Role | str, *, reason: str | None = None) -> S:
        """The state after ``action`` by ``role`` from ``current``, or :class:`TransitionError`."""
        ctx = {"machine": self.name, "current": str(current), "action": str(action), "role": str(role)}
        try:
            state = self.states(current)
        except ValueError:
            raise TransitionError(
                "unknown_state", f"未知状态“{current}”", f"unknown {self.name} state {current!r}", **ctx
            ) from None
        try:
            act = self.actions(action)
        except ValueError:
            raise TransitionError(
                "invalid_transition",
                f"未知操作“{action}”",
                f"unknown {self.name} action {action!r}",
                **ctx,
            ) from None
        try:
            who = Role(role)
        except ValueError:
            raise TransitionError("role_not_allowed", f"未知角色“{role}”", f"unknown role {role!r}", **ctx) from None
        tr = self._index.get((state, act))
        if tr is None:
            allowed = "、".join(self.action_labels[a] for a in self.allowed_actions(state)) or "无"
            raise TransitionError(
                "invalid_transition",
                f"{self.label}处于“{self.state_labels[state]}”状态，不能执行“{self.action_labels[act]}”"
                f"（可执行：{allowed}）",
                f"{self.name} in state {state.value!r} does not allow {act.value!r} "
                f"(allowed: {[a.value for a in self.allowed_actions(state)]})",
                **ctx,
            )
        if who not in tr.roles:
            roles_zh = "、".join(ROLE_LABELS[r] for r in sorted(tr.roles))
            raise TransitionError(
                "role_not_allowed",
                f"“{self.action_labels[act]}”须由{roles_zh}执行，当前角色为{ROLE_LABELS[who]}",
                f"{act.value!r} needs one of {sorted(r.value for r in tr.roles)}, not {who.value!r}",
                **ctx,
            )
        if tr.requires_reason and not (reason and reason.strip()):
            raise TransitionError(
                "reason_required",
                f"“{self.action_labels[act]}”必须填写理由",
                f"{act.value!r} requires a reason",
                **ctx,
            )
        return tr.target

    def to_mermaid(self) -> str:
        """A mermaid ``stateDiagram-v2`` of the machine (used in docs/workflow.md)."""
        lines = ["stateDiagram-v2", f"    [*] --> {self.initial.value}"]
        for tr in self.transitions:
            roles = ",".join(sorted(r.value for r in tr.roles))
            mark = " (reason)" if tr.requires_reason else ""
            for source in sorted(tr.sources):
                lines.append(f"    {source.value} --> {tr.target.value}: {tr.action.value} [{roles}]{mark}")
        for state in sorted(self.terminal):
            lines.append(f"    {state.value} --> [*]")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------
# Clues (线索)
# ---------------------------------------------------------------------------------------------------------
class ClueState(StrEnum):
    NEW = "new"
    TRIAGED = "triaged"
    ANALYSING = "analysing"
    DISPATCHED = "dispatched"
    HANDLED_DIRECTLY = "handled_directly"
    IN_EXECUTION = "in_execution"
    CLOSED = "closed"
    NO_ACTION = "no_action"
    MERGED = "merged"


class ClueAction(StrEnum):
    TRIAGE = "triage"
    ANALYSE = "analyse"
    DISPATCH = "dispatch"
    HANDLE_DIRECTLY = "handle_directly"
    DISMISS = "dismiss"
    MERGE = "merge"
    START = "start"
    RECALL = "recall"
    CLOSE = "close"
    REOPEN = "reopen"


_R = Role
_CLUE_TRIAGERS = {_R.SYSTEM, _R.INTAKE_CLERK, _R.ANALYST, _R.DISPATCHER}
_CLUE_DECIDERS = {_R.SYSTEM, _R.ANALYST, _R.DISPATCHER}
_CS = ClueState
_CA = ClueAction

CLUE_MACHINE: StateMachine[ClueState, ClueAction] = StateMachine(
    name="clue",
    label="线索",
    states=ClueState,
    actions=ClueAction,
    initial=_CS.NEW,
    terminal={_CS.CLOSED, _CS.NO_ACTION, _CS.MERGED},
    state_labels={
        _CS.NEW: "新建",
        _CS.TRIAGED: "已分拣",
        _CS.ANALYSING: "研判中",
        _CS.DISPATCHED: "已派发",
        _CS.HANDLED_DIRECTLY: "直接办理",
        _CS.IN_EXECUTION: "执行中",
        _CS.CLOSED: "已办结",
        _CS.NO_ACTION: "不予处理",
        _CS.MERGED: "已合并",
    },
    action_labels={
        _CA.TRIAGE: "分拣",
        _CA.ANALYSE: "提交研判",
        _CA.DISPATCH: "派发",
        _CA.HANDLE_DIRECTLY: "直接办理",
        _CA.DISMISS: "不予处理",
        _CA.MERGE: "合并",
        _CA.START: "开始执行",
        _CA.RECALL: "撤回派发",
        _CA.CLOSE: "办结",
        _CA.REOPEN: "重新打开",
    },
    transitions=[
        _t([_CS.NEW], _CA.TRIAGE, _CS.TRIAGED, _CLUE_TRIAGERS),
        _t([_CS.NEW, _CS.TRIAGED], _CA.MERGE, _CS.MERGED, _CLUE_TRIAGERS),
        _t([_CS.TRIAGED], _CA.ANALYSE, _CS.ANALYSING, _CLUE_TRIAGERS),
        _t([_CS.TRIAGED, _CS.ANALYSING], _CA.DISPATCH, _CS.DISPATCHED, _CLUE_DECIDERS),
        _t([_CS.TRIAGED, _CS.ANALYSING], _CA.HANDLE_DIRECTLY, _CS.HANDLED_DIRECTLY, _CLUE_DECIDERS | {_R.INTAKE_CLERK}),
        _t([_CS.TRIAGED, _CS.ANALYSING], _CA.DISMISS, _CS.NO_ACTION, _CLUE_DECIDERS, reason=True),
        _t([_CS.DISPATCHED], _CA.START, _CS.IN_EXECUTION, {_R.SYSTEM, _R.INSPECTOR, _R.ENFORCEMENT_OFFICER}),
        _t([_CS.DISPATCHED], _CA.RECALL, _CS.ANALYSING, {_R.DISPATCHER, _R.DEPARTMENT_HEAD}, reason=True),
        _t(
            [_CS.IN_EXECUTION, _CS.HANDLED_DIRECTLY],
            _CA.CLOSE,
            _CS.CLOSED,
            {_R.SYSTEM, _R.INTAKE_CLERK, _R.DISPATCHER, _R.DEPARTMENT_HEAD},
            reason=True,  # the result (办理结果) is the reason and is mandatory
        ),
        _t([_CS.CLOSED, _CS.NO_ACTION], _CA.REOPEN, _CS.TRIAGED, {_R.DEPARTMENT_HEAD, _R.BUREAU_HEAD}, reason=True),
    ],
)


def transition(
    current: ClueState | str, action: ClueAction | str, role: Role | str, *, reason: str | None = None
) -> ClueState:
    """The clue state after ``action`` by ``role``; raises :class:`TransitionError` when refused."""
    return CLUE_MACHINE.transition(current, action, role, reason=reason)


# ---------------------------------------------------------------------------------------------------------
# Inspection tasks (检查任务)
# ---------------------------------------------------------------------------------------------------------
class TaskState(StrEnum):
    ASSIGNED = "assigned"
    ACCEPTED = "accepted"
    CHECKED_IN = "checked_in"
    SUBMITTED = "submitted"
    CLOSED = "closed"
    DECLINED = "declined"
    CANCELLED = "cancelled"


class TaskAction(StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"
    REASSIGN = "reassign"
    CHECK_IN = "check_in"
    SUBMIT = "submit"
    RETURN = "return"
    CLOSE = "close"
    CANCEL = "cancel"


_TS = TaskState
_TA = TaskAction

TASK_MACHINE: StateMachine[TaskState, TaskAction] = StateMachine(
    name="task",
    label="检查任务",
    states=TaskState,
    actions=TaskAction,
    initial=_TS.ASSIGNED,
    terminal={_TS.CLOSED, _TS.CANCELLED},
    state_labels={
        _TS.ASSIGNED: "已派发",
        _TS.ACCEPTED: "已接收",
        _TS.CHECKED_IN: "已到场",
        _TS.SUBMITTED: "已提交",
        _TS.CLOSED: "已完结",
        _TS.DECLINED: "已退回（待重派）",
        _TS.CANCELLED: "已撤销",
    },
    action_labels={
        _TA.ACCEPT: "接收",
        _TA.DECLINE: "退回",
        _TA.REASSIGN: "重新派发",
        _TA.CHECK_IN: "现场签到",
        _TA.SUBMIT: "提交结果",
        _TA.RETURN: "退回补充",
        _TA.CLOSE: "审核完结",
        _TA.CANCEL: "撤销任务",
    },
    transitions=[
        _t([_TS.ASSIGNED], _TA.ACCEPT, _TS.ACCEPTED, {_R.INSPECTOR}),
        _t([_TS.ASSIGNED, _TS.ACCEPTED], _TA.DECLINE, _TS.DECLINED, {_R.INSPECTOR}, reason=True),
        _t([_TS.DECLINED], _TA.REASSIGN, _TS.ASSIGNED, {_R.DISPATCHER, _R.DEPARTMENT_HEAD, _R.SYSTEM}),
        _t([_TS.ACCEPTED], _TA.CHECK_IN, _TS.CHECKED_IN, {_R.INSPECTOR}),
        _t([_TS.CHECKED_IN], _TA.SUBMIT, _TS.SUBMITTED, {_R.INSPECTOR}),
        _t([_TS.SUBMITTED], _TA.RETURN, _TS.CHECKED_IN, {_R.DEPARTMENT_HEAD}, reason=True),
        _t([_TS.SUBMITTED], _TA.CLOSE, _TS.CLOSED, {_R.DEPARTMENT_HEAD, _R.SYSTEM}),
        _t(
            [_TS.ASSIGNED, _TS.ACCEPTED, _TS.CHECKED_IN, _TS.DECLINED],
            _TA.CANCEL,
            _TS.CANCELLED,
            {_R.DISPATCHER, _R.DEPARTMENT_HEAD},
            reason=True,
        ),
    ],
)


# ---------------------------------------------------------------------------------------------------------
# Enforcement cases (执法案件)
# ---------------------------------------------------------------------------------------------------------
class CaseState(StrEnum):
    """Ordinary procedure (一般程序) of the 《行政处罚法》 and the simplified one (简易程序, ``on_the_spot``)."""

    REGISTERED = "registered"  # 案源登记 / 立案申请
    APPROVED = "approved"  # 已立案（负责人批准）
    NOT_OPENED = "not_opened"  # 不予立案
    INVESTIGATING = "investigating"  # 调查取证
    NOTIFIED = "notified"  # 已告知：陈述、申辩、听证申请期
    HEARING = "hearing"  # 听证程序（通知、举行、笔录）
    LEGAL_REVIEW = "legal_review"  # 法制审核中
    REVIEWED = "reviewed"  # 法制审核通过
    DISCUSSED = "discussed"  # 负责人集体讨论决定
    DECIDED = "decided"  # 已作出处罚决定（待送达）
    SERVED = "served"  # 决定书已送达：执行（缴款期限、加处罚款）
    PAID = "paid"  # 罚没款（含加处罚款）已缴清
    CLOSED = "closed"  # 结案
    TERMINATED = "terminated"  # 终止调查 / 撤销立案


class CaseAction(StrEnum):
    APPROVE_OPENING = "approve_opening"
    REFUSE_OPENING = "refuse_opening"
    START_INVESTIGATION = "start_investigation"
    NOTIFY = "notify"
    REQUEST_HEARING = "request_hearing"
    SUBMIT_LEGAL_REVIEW = "submit_legal_review"
    PASS_REVIEW = "pass_review"
    RETURN_FOR_INVESTIGATION = "return_for_investigation"
    COLLECTIVE_DISCUSSION = "collective_discussion"
    DECIDE = "decide"
    SERVE = "serve"
    RECORD_PAYMENT = "record_payment"
    CLOSE = "close"
    TERMINATE = "terminate"
    ON_THE_SPOT = "on_the_spot"


_KS = CaseState
_KA = CaseAction
_OPEN_STEPS = [
    _KS.APPROVED,
    _KS.INVESTIGATING,
    _KS.NOTIFIED,
    _KS.HEARING,
    _KS.LEGAL_REVIEW,
    _KS.REVIEWED,
    _KS.DISCUSSED,
]

#: Each step's duty. Whether a step may be taken *now* (open statement window, missing hearing record, missing
#: legal review or collective discussion, outstanding money) is checked by :mod:`cloud.workflow.procedure`.
CASE_MACHINE: StateMachine[CaseState, CaseAction] = StateMachine(
    name="case",
    label="案件",
    states=CaseState,
    actions=CaseAction,
    initial=_KS.REGISTERED,
    terminal={_KS.NOT_OPENED, _KS.CLOSED, _KS.TERMINATED},
    state_labels={
        _KS.REGISTERED: "案源登记",
        _KS.APPROVED: "已立案",
        _KS.NOT_OPENED: "不予立案",
        _KS.INVESTIGATING: "调查取证",
        _KS.NOTIFIED: "已告知（陈述申辩期）",
        _KS.HEARING: "听证",
        _KS.LEGAL_REVIEW: "法制审核",
        _KS.REVIEWED: "法制审核通过",
        _KS.DISCUSSED: "已集体讨论",
        _KS.DECIDED: "已决定（待送达）",
        _KS.SERVED: "已送达（执行中）",
        _KS.PAID: "已缴款",
        _KS.CLOSED: "已结案",
        _KS.TERMINATED: "已终止",
    },
    action_labels={
        _KA.APPROVE_OPENING: "批准立案",
        _KA.REFUSE_OPENING: "不予立案",
        _KA.START_INVESTIGATION: "开始调查",
        _KA.NOTIFY: "行政处罚告知",
        _KA.REQUEST_HEARING: "登记听证申请",
        _KA.SUBMIT_LEGAL_REVIEW: "提交法制审核",
        _KA.PASS_REVIEW: "法制审核通过",
        _KA.RETURN_FOR_INVESTIGATION: "退回补充调查",
        _KA.COLLECTIVE_DISCUSSION: "负责人集体讨论",
        _KA.DECIDE: "作出处罚决定",
        _KA.SERVE: "送达决定书",
        _KA.RECORD_PAYMENT: "登记缴款",
        _KA.CLOSE: "结案",
        _KA.TERMINATE: "终止案件",
        _KA.ON_THE_SPOT: "当场处罚（简易程序）",
    },
    transitions=[
        _t([_KS.REGISTERED], _KA.APPROVE_OPENING, _KS.APPROVED, {_R.BUREAU_HEAD}),
        _t([_KS.REGISTERED], _KA.REFUSE_OPENING, _KS.NOT_OPENED, {_R.BUREAU_HEAD}, reason=True),
        _t([_KS.REGISTERED], _KA.ON_THE_SPOT, _KS.SERVED, {_R.ENFORCEMENT_OFFICER}),
        _t([_KS.APPROVED], _KA.START_INVESTIGATION, _KS.INVESTIGATING, {_R.ENFORCEMENT_OFFICER}),
        _t([_KS.INVESTIGATING], _KA.NOTIFY, _KS.NOTIFIED, {_R.ENFORCEMENT_OFFICER}),
        _t([_KS.NOTIFIED], _KA.REQUEST_HEARING, _KS.HEARING, {_R.ENFORCEMENT_OFFICER}),
        _t([_KS.NOTIFIED, _KS.HEARING], _KA.SUBMIT_LEGAL_REVIEW, _KS.LEGAL_REVIEW, {_R.ENFORCEMENT_OFFICER}),
        # the review opinion is the reason and is mandatory (it is printed on the review record)
        _t([_KS.LEGAL_REVIEW], _KA.PASS_REVIEW, _KS.REVIEWED, {_R.LEGAL_REVIEWER}, reason=True),
        _t([_KS.LEGAL_REVIEW], _KA.RETURN_FOR_INVESTIGATION, _KS.INVESTIGATING, {_R.LEGAL_REVIEWER}, reason=True),
        _t([_KS.REVIEWED], _KA.COLLECTIVE_DISCUSSION, _KS.DISCUSSED, {_R.BUREAU_HEAD}, reason=True),
        _t([_KS.REVIEWED, _KS.DISCUSSED], _KA.DECIDE, _KS.DECIDED, {_R.BUREAU_HEAD}),
        _t([_KS.DECIDED], _KA.SERVE, _KS.SERVED, {_R.ENFORCEMENT_OFFICER}),
        _t([_KS.SERVED], _KA.RECORD_PAYMENT, _KS.PAID, {_R.SYSTEM, _R.ENFORCEMENT_OFFICER}),
        # a served decision without money owed (warning) closes directly; with money only once paid
        _t([_KS.SERVED, _KS.PAID], _KA.CLOSE, _KS.CLOSED, {_R.DEPARTMENT_HEAD, _R.BUREAU_HEAD}),
        _t(_OPEN_STEPS, _KA.TERMINATE, _KS.TERMINATED, {_R.BUREAU_HEAD}, reason=True),
    ],
)

#: every machine by name (for generic code: docs, API listing of states and actions)
MACHINES: dict[str, StateMachine[Any, Any]] = {
    "clue": CLUE_MACHINE,
    "task": TASK_MACHINE,
    "case": CASE_MACHINE,
}


def state_type(states: type[StrEnum]) -> Any:
    """A column type storing a state enum as its string value and reading it back as the enum."""
    from sqlalchemy import Enum

    return Enum(
        states,
        native_enum=False,
        create_constraint=False,
        length=20,
        values_callable=lambda enum: [member.value for member in enum],
    )
