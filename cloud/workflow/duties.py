"""Duties as data, and the separation-of-duty rules (``cloud/rules/duties.toml``).

* :func:`default_duties` — the duties of an account without a staff profile; administrators (三员) hold none.
* :func:`check_grant` — refuses a staff profile granting a duty its account role may not hold (administrators:
  any business duty).
* :func:`check_position` — the hook the workflow calls before a person acts on a case (and when officers are
  assigned): one person, one position per case (handling / approval / legal review / decision); a recused person
  none. :func:`check_spot_review` — a spot check is never reviewed by a person responsible for the work.

Every refusal is a :class:`DutyRuleError` (403) that names the rule: ``rule`` (its id), the Chinese and English
text of the rule and what was refused.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator
from sqlmodel import Session, col, select

from cloud.core.users import Role as AccountRole
from cloud.rules.loader import RuleModel, load_model, rules_path
from cloud.workflow.service import Actor, Conflict, Forbidden
from cloud.workflow.states import CASE_MACHINE, CLUE_MACHINE, ROLE_LABELS, ClueAction, ClueState
from cloud.workflow.states import Role as Duty

__all__ = [
    "AdminArea",
    "ClosingRule",
    "ClosingRuleError",
    "DutyRuleError",
    "DutyRules",
    "admin_areas",
    "check_grant",
    "check_position",
    "check_spot_review",
    "default_duties",
    "duty_rules",
]

BUSINESS = [d for d in Duty if d is not Duty.SYSTEM]
#: the console's 系统管理 pages; each needs its account roles in ``[administration]``
ADMIN_AREAS = ("staff", "departments", "subjects", "sites")


class RuleText(RuleModel):
    id: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")
    zh: str = Field(min_length=1, max_length=200)
    en: str = Field(min_length=1, max_length=300)


class Separation(RuleText):
    target: str = Field(pattern=r"^(case)$")
    positions: dict[str, list[str]] = Field(min_length=2)

    @model_validator(mode="after")
    def _actions_known_and_disjoint(self) -> Separation:
        known = {str(a) for a in CASE_MACHINE.actions}
        seen: dict[str, str] = {}
        for position, actions in self.positions.items():
            for action in actions:
                if action not in known:
                    raise ValueError(f"position {position}: unknown case action {action!r}")
                if action in seen:
                    raise ValueError(f"action {action!r} in two positions ({seen[action]}, {position})")
                seen[action] = position
        return self

    def position_of(self, action: str) -> str | None:
        return next((p for p, actions in self.positions.items() if action in actions), None)


class ClosingRule(RuleText):
    """Closing a clue with open obligations (rectification deadline pending, 复查 not done) is refused; the duties in
    ``override`` may close it anyway with a recorded reason."""

    override: list[Duty] = Field(min_length=1)

    @model_validator(mode="after")
    def _people_only(self) -> ClosingRule:
        if Duty.SYSTEM in self.override:
            raise ValueError("override: the system duty is not a person's")
        closers = CLUE_MACHINE.find(ClueState.IN_EXECUTION, ClueAction.CLOSE)
        cannot = [d.value for d in self.override if closers is None or d not in closers.roles]
        if cannot:
            raise ValueError(f"override: {cannot} cannot close a clue (办结) at all")
        return self


class DutyGate(RuleText):
    """An action only people with one of ``duties`` may take (the rule names them when it refuses)."""

    duties: list[Duty] = Field(min_length=1)

    @model_validator(mode="after")
    def _people_only(self) -> DutyGate:
        if Duty.SYSTEM in self.duties:
            raise ValueError("duties: the system duty is not a person's")
        return self


class AdminArea(RuleModel):
    """A page of the console's 系统管理 and the account roles that may open it and act on it."""

    zh: str = Field(min_length=1, max_length=40)
    roles: list[AccountRole] = Field(min_length=1)

    @model_validator(mode="after")
    def _people_only(self) -> AdminArea:
        if AccountRole.DEVICE in self.roles:
            raise ValueError("roles: a device account opens no page")
        return self


class DutyRules(RuleModel):
    version: str
    administrators: list[AccountRole] = Field(min_length=1)
    defaults: dict[AccountRole, list[Duty]]
    grants: dict[AccountRole, list[Duty]]
    separations: list[Separation] = Field(default_factory=list)
    recusal: RuleText
    spot_check: RuleText
    administrator_rule: RuleText
    grant_rule: RuleText
    clue_closing: ClosingRule
    rescue_arrival: DutyGate
    administration: dict[str, AdminArea]

    @model_validator(mode="after")
    def _consistent(self) -> DutyRules:
        for role in self.administrators:
            if self.defaults.get(role) or self.grants.get(role):
                raise ValueError(f"administrator role {role.value!r} cannot have default or grantable duties")
        for table in (self.defaults, self.grants):
            for role, duties in table.items():
                if Duty.SYSTEM in duties:
                    raise ValueError(f"{role.value}: the system duty is not a person's")
        missing = sorted(set(ADMIN_AREAS) - set(self.administration))
        if missing:
            raise ValueError(f"administration: the console's pages {missing} need their roles")
        for role, duties in self.defaults.items():
            extra = set(duties) - set(self.grants.get(role, []))
            if extra:
                raise ValueError(f"{role.value}: default duties {sorted(extra)} are not grantable to it")
        return self


def _dir() -> Path | None:
    value = os.environ.get("SENTINEL_WORKFLOW_RULES_DIR")
    return Path(value) if value else None


@cache
def duty_rules(path: Path | None = None) -> DutyRules:
    return load_model(DutyRules, path or rules_path("duties.toml", _dir()))


class DutyRuleError(Forbidden):
    """A separation-of-duty rule refused an action; ``extra`` names the rule."""

    code = "duty_rule"

    def __init__(self, rule: RuleText, refused_zh: str, refused_en: str) -> None:
        super().__init__(
            f"{refused_zh}：违反规则「{rule.zh}」（{rule.id}） / {refused_en}: rule {rule.id}: {rule.en}",
            extra={"rule": rule.id, "rule_zh": rule.zh, "rule_en": rule.en},
        )
        self.rule = rule.id


class ClosingRuleError(Conflict):
    """A clue with open obligations cannot close (409); ``extra`` names the rule, the obligations and whether the
    person may override with a reason."""

    code = "closing_obligation"

    def __init__(
        self, rule: ClosingRule, obligations: list[str], *, can_override: bool, tried_override: bool = False
    ) -> None:
        who = "、".join(ROLE_LABELS[d] for d in rule.override)
        if tried_override:
            tail = f"只有{who}可以填写理由批准办结"
        elif can_override:
            tail = "如确需办结，请填写批准办结的理由（将记录并报送监督）"
        else:
            tail = f"如确需办结，须由{who}填写理由批准"
        super().__init__(
            f"不能办结：{'；'.join(obligations)}。违反规则「{rule.zh}」（{rule.id}）。{tail} / "
            f"cannot close: rule {rule.id}: {rule.en}",
            extra={
                "rule": rule.id,
                "rule_zh": rule.zh,
                "rule_en": rule.en,
                "obligations": obligations,
                "can_override": can_override,
                "override_duties": [d.value for d in rule.override],
            },
        )
        self.rule = rule.id


def admin_areas(role: str) -> list[str]:
    """The 系统管理 pages an account of ``role`` may open and act on (``[administration]`` of duties.toml)."""
    return [name for name, area in duty_rules().administration.items() if AccountRole(role) in area.roles]


def is_administrator(role: str) -> bool:
    return AccountRole(role) in duty_rules().administrators


def default_duties(role: str) -> frozenset[Duty]:
    """Duties of an account of ``role`` without a staff profile (none for administrators)."""
    if is_administrator(role):
        return frozenset()
    return frozenset(duty_rules().defaults.get(AccountRole(role), []))


def check_grant(role: str, duties: Iterable[Duty | str]) -> None:
    """Refuse granting ``duties`` to an account of ``role`` (administrators: any business duty)."""
    rules = duty_rules()
    wanted = [Duty(d) for d in duties]
    if not wanted:
        return
    names = "、".join(ROLE_LABELS[d] for d in wanted)
    if is_administrator(role):
        raise DutyRuleError(
            rules.administrator_rule,
            f"不能授予{AccountRole(role).value}账号业务职责（{names}）",
            f"cannot grant {[d.value for d in wanted]} to an {role} account",
        )
    allowed = set(rules.grants.get(AccountRole(role), []))
    refused = [d for d in wanted if d not in allowed]
    if refused:
        names = "、".join(ROLE_LABELS[d] for d in refused)
        raise DutyRuleError(
            rules.grant_rule,
            f"{role} 账号不能被授予{names}",
            f"duties {[d.value for d in refused]} cannot be granted to a {role} account",
        )


# ---------------------------------------------------------------- one person, one position per case
def _positions(session: Session, rule: Separation, case: Any) -> dict[str, set[str]]:
    """username -> positions held in ``case`` (from the journal of its transitions and its officer assignments)."""
    from cloud import journal
    from cloud.core.users import User
    from cloud.workflow.models import WorkAssignment

    held: dict[str, set[str]] = {}
    events = session.exec(
        select(journal.JournalEvent).where(
            journal.JournalEvent.target_type == "case",
            journal.JournalEvent.target_id == str(case.id),
            journal.JournalEvent.action == "case.transition",
        )
    )
    for ev in events:
        position = rule.position_of(str((ev.payload or {}).get("action")))
        if position is not None:
            held.setdefault(ev.actor, set()).add(position)
    handling = rule.position_of("start_investigation") or "handling"
    officers = session.exec(
        select(User.username)
        .join(WorkAssignment, col(WorkAssignment.user_id) == col(User.id))
        .where(WorkAssignment.target_type == "case", WorkAssignment.target_id == case.id)
    )
    for username in officers:
        held.setdefault(username, set()).add(handling)
    return held


def _recused(session: Session, actor: Actor, subject_id: int | None) -> bool:
    from cloud.workflow.models import Recusal

    if subject_id is None or actor.user_id is None:
        return False
    row = session.exec(
        select(Recusal).where(Recusal.user_id == actor.user_id, Recusal.subject_id == subject_id)
    ).first()
    return row is not None


def check_position(
    session: Session, case: Any, action: str | None, actor: Actor, *, position: str | None = None
) -> None:
    """Before ``actor`` takes ``action`` on ``case`` (or the named ``position``, e.g. assignment as officer):
    refused when recused for the party, or when it holds another position in this case."""
    if actor.user_id is None:  # the system actor (deadlines, payments by the bank feed)
        return
    rules = duty_rules()
    for rule in rules.separations:
        wanted = position or (rule.position_of(action) if action else None)
        if wanted is None:
            continue
        if _recused(session, actor, case.subject_id):
            raise DutyRuleError(
                rules.recusal,
                f"{actor.name} 已登记回避，不能办理案件 {case.case_no}",
                f"{actor.username} is recused for the party of case {case.case_no}",
            )
        other = _positions(session, rule, case).get(actor.username, set()) - {wanted}
        if other:
            raise DutyRuleError(
                rule,
                f"{actor.name} 已在案件 {case.case_no} 中担任{_labels(other)}，不能再担任{_labels({wanted})}",
                f"{actor.username} already holds {sorted(other)} in case {case.case_no}, cannot take {wanted}",
            )


POSITION_LABELS = {"handling": "承办人", "approval": "立案审批人", "legal_review": "法制审核人", "decision": "决定人"}


def _labels(positions: set[str]) -> str:
    return "、".join(POSITION_LABELS.get(p, p) for p in sorted(positions))


def check_spot_review(responsible: Iterable[str], reviewer: str) -> None:
    """A spot check is not reviewed by one of the people whose work it checks."""
    if reviewer in set(responsible):
        raise DutyRuleError(
            duty_rules().spot_check,
            f"{reviewer} 是被抽查工作的经办人，不能评定本次抽查",
            f"{reviewer} is responsible for the work checked",
        )


def check_gate(gate: DutyGate, actor: Any, what_zh: str, what_en: str) -> None:
    """Refuse (403, naming the rule) an actor who holds none of the gate's duties."""
    if not actor.has(*gate.duties):
        raise DutyRuleError(gate, f"{actor.name} 无权{what_zh}", f"{actor.username} may not {what_en}")
