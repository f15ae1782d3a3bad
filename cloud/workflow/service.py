"""Workflow plumbing shared by every step: errors, actors and their duties, compare-and-set transitions that
journal who/when/why, and the clue timeline.

* :class:`WorkflowError` and subclasses carry an HTTP status and a Chinese message; the API converts them.
* :class:`Actor` is a user with the workflow duties (roles of the state machines) they hold: from their
  :class:`~cloud.workflow.models.StaffProfile`, else the defaults of their account role
  (``cloud/rules/duties.toml``, :mod:`cloud.workflow.duties`).
* :func:`apply_transition` runs a state machine step as ``UPDATE … SET state=:new, version=version+1 WHERE id=:id
  AND version=:seen AND state=:old``; a concurrent winner makes it fail with 409, and it appends the journal event
  (``<machine>.transition``) in the same transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import Session, SQLModel, col, select

from cloud import journal
from cloud.core.users import User
from cloud.workflow.states import Role as Duty
from cloud.workflow.states import StateMachine, TransitionError

log = logging.getLogger(__name__)

__all__ = [
    "SYSTEM",
    "Actor",
    "Conflict",
    "Forbidden",
    "Invalid",
    "NotFound",
    "WorkflowError",
    "actor_for",
    "apply_transition",
    "clue_timeline",
    "record",
]


class WorkflowError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.extra = extra or {}


class NotFound(WorkflowError):
    status = 404
    code = "not_found"


class Conflict(WorkflowError):
    status = 409
    code = "conflict"


class Forbidden(WorkflowError):
    status = 403
    code = "role_not_allowed"


class Invalid(WorkflowError):
    status = 422
    code = "invalid"


_TRANSITION_STATUS = {
    "invalid_transition": Conflict,
    "unknown_state": Conflict,
    "role_not_allowed": Forbidden,
    "reason_required": Invalid,
}


def from_transition_error(exc: TransitionError) -> WorkflowError:
    cls = _TRANSITION_STATUS[exc.code]
    return cls(
        exc.reason_zh,
        code=exc.code,
        extra={"reason_en": exc.reason_en, "current": exc.current, "action": exc.action, "role": exc.role},
    )


_DUTY_ORDER = list(Duty)


@dataclass(frozen=True, slots=True)
class Actor:
    username: str
    user_id: int | None
    name: str
    duties: frozenset[Duty]
    department_id: int | None = None
    cert_no: str | None = None

    def has(self, *duties: Duty) -> bool:
        return bool(self.duties & set(duties))


SYSTEM = Actor("system", None, "系统", frozenset({Duty.SYSTEM}))


def actor_for(session: Session, user: User) -> Actor:
    """The user with their duties: from their staff profile, else the defaults of their account role
    (``cloud/rules/duties.toml``); administrators (三员) hold none, whatever a profile says."""
    from cloud.workflow.duties import default_duties, is_administrator
    from cloud.workflow.models import StaffProfile

    if is_administrator(user.role):
        return Actor(user.username, user.id, user.full_name or user.username, frozenset(), None, None)
    profile = session.exec(select(StaffProfile).where(StaffProfile.user_id == user.id)).first()
    if profile is not None and profile.active:
        duties = frozenset(Duty(d) for d in profile.duties if d in Duty.__members__.values())
        return Actor(
            user.username, user.id, user.full_name or user.username, duties, profile.department_id, profile.cert_no
        )
    return Actor(
        user.username,
        user.id,
        user.full_name or user.username,
        default_duties(user.role),
        None,
        None,
    )


def require_duty(actor: Actor, *duties: Duty, what: str) -> Duty:
    """The first of ``duties`` the actor holds, else :class:`Forbidden`."""
    for duty in duties:
        if duty in actor.duties:
            return duty
    from cloud.workflow.states import ROLE_LABELS

    names = "、".join(ROLE_LABELS[d] for d in duties)
    raise Forbidden(f"“{what}”须由{names}办理 / {what} needs one of {[d.value for d in duties]}")


def pick_role(
    machine: StateMachine[Any, Any], current: str, action: str, actor: Actor, requested: str | None = None
) -> Duty:
    """The duty under which ``actor`` performs ``action``: the requested one (if held) or the first that fits."""
    if requested:
        try:
            duty = Duty(requested)
        except ValueError:
            raise Invalid(f"未知角色“{requested}” / unknown role {requested!r}") from None
        if duty not in actor.duties:
            raise Forbidden(f"当前用户不具有角色“{requested}” / user does not hold role {requested!r}")
        return duty
    if not actor.duties:
        raise Forbidden("当前用户没有任何业务职责 / user holds no workflow duty")
    try:
        tr = machine.find(machine.states(current), machine.actions(action))
    except ValueError:
        tr = None
    if tr is not None:
        for duty in _DUTY_ORDER:
            if duty in actor.duties and duty in tr.roles:
                return duty
    return min(actor.duties, key=_DUTY_ORDER.index)


def record(
    session: Session,
    actor: Actor | str,
    action: str,
    target_type: str,
    target_id: int | str,
    payload: dict[str, Any] | None = None,
    *,
    outcome: str = "ok",
) -> journal.JournalEvent:
    name = actor.username if isinstance(actor, Actor) else actor
    return journal.append(
        session,
        actor=name,
        action=action,
        target_type=target_type,
        target_id=target_id,
        payload=payload or {},
        outcome=outcome,
    )


def apply_transition(
    session: Session,
    machine: StateMachine[Any, Any],
    obj: SQLModel,
    action: str,
    actor: Actor,
    *,
    reason: str | None = None,
    role: str | None = None,
    expected_version: int | None = None,
    values: dict[str, Any] | None = None,
    payload: dict[str, Any] | None = None,
) -> str:
    """Move ``obj`` (a table row with ``id``, ``state``, ``version``) by ``action``; journal it; return the state."""
    table = type(obj)
    obj_id: int = obj.id  # type: ignore[attr-defined]
    current = str(obj.state)  # type: ignore[attr-defined]
    seen: int = obj.version  # type: ignore[attr-defined]
    if expected_version is not None and expected_version != seen:
        raise Conflict(
            f"{machine.label}已被他人修改（版本 {seen}，提交的是 {expected_version}），请刷新后重试 / stale version",
            code="stale_version",
        )
    duty = pick_role(machine, current, action, actor, role)
    try:
        new = machine.transition(current, action, duty, reason=reason)
    except TransitionError as exc:
        raise from_transition_error(exc) from None
    if machine.name == "case":  # separation of duties (cloud/rules/duties.toml)
        from cloud.workflow.duties import check_position

        check_position(session, obj, str(action), actor)
    stmt = (
        update(table)
        .where(
            col(table.id) == obj_id,  # type: ignore[attr-defined]
            col(table.version) == seen,  # type: ignore[attr-defined]
            col(table.state) == current,  # type: ignore[attr-defined]
        )
        .values(state=new.value, version=seen + 1, **(values or {}))
        .execution_options(synchronize_session="fetch")
    )
    result = session.execute(stmt)
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(
            f"{machine.label}状态已被并发修改，本次“{machine.action_labels[machine.actions(action)]}”未生效，请刷新后重试"
            " / concurrent transition lost",
            code="concurrent_transition",
        )
    session.refresh(obj)
    record(
        session,
        actor,
        f"{machine.name}.transition",
        machine.name,
        obj_id,
        {
            "from": current,
            "to": new.value,
            "action": str(action),
            "role": duty.value,
            "reason": reason,
            **(payload or {}),
        },
    )
    return str(new.value)


def related_targets(session: Session, clue_id: int) -> list[tuple[str, str]]:
    """(target_type, target_id) pairs whose events belong on a clue's timeline."""
    from cloud.workflow.clues import ClueSource
    from cloud.workflow.models import DocumentRecord, EnforcementCase, InspectionTask

    targets: list[tuple[str, str]] = [("clue", str(clue_id))]
    task_ids = list(session.exec(select(InspectionTask.id).where(InspectionTask.clue_id == clue_id)))
    case_ids = list(
        session.exec(
            select(EnforcementCase.id).where(
                or_(
                    col(EnforcementCase.clue_id) == clue_id,
                    col(EnforcementCase.task_id).in_(task_ids or [-1]),
                )
            )
        )
    )
    doc_ids = list(
        session.exec(
            select(DocumentRecord.id).where(
                or_(
                    col(DocumentRecord.clue_id) == clue_id,
                    col(DocumentRecord.task_id).in_(task_ids or [-1]),
                    col(DocumentRecord.case_id).in_(case_ids or [-1]),
                )
            )
        )
    )
    orders = session.exec(
        select(ClueSource.work_order_id).where(
            ClueSource.clue_id == clue_id, col(ClueSource.work_order_id).is_not(None)
        )
    )
    targets += [("task", str(i)) for i in task_ids]
    targets += [("case", str(i)) for i in case_ids]
    targets += [("document", str(i)) for i in doc_ids]
    targets += [("work_order", str(i)) for i in orders]
    return targets


def clue_timeline(session: Session, clue_id: int) -> list[journal.JournalEvent]:
    """Every journal event of the clue and of its work orders, tasks, cases and documents, in order."""
    targets = related_targets(session, clue_id)
    conditions: list[Any] = [
        (journal.JournalEvent.target_type == t) & (journal.JournalEvent.target_id == i) for t, i in targets
    ]
    return list(
        session.exec(select(journal.JournalEvent).where(or_(*conditions)).order_by(col(journal.JournalEvent.id)))
    )


def ids(values: Iterable[int | None]) -> list[int]:
    return [v for v in values if v is not None]
