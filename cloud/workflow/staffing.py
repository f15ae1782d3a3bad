"""The staff directory seen by dispatch: who holds which duty where, recusals, and open workload."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, col, select

from cloud.core.users import Role as AccountRole
from cloud.core.users import User
from cloud.workflow.models import Recusal, WorkAssignment
from cloud.workflow.service import Actor, Invalid, actor_for
from cloud.workflow.states import ROLE_LABELS
from cloud.workflow.states import Role as Duty


@dataclass(frozen=True, slots=True)
class StaffMember:
    actor: Actor
    workload: int
    in_department: bool


def recused_users(session: Session, subject_id: int | None) -> set[int]:
    if subject_id is None:
        return set()
    return set(session.exec(select(Recusal.user_id).where(Recusal.subject_id == subject_id)))


def workloads(session: Session, user_ids: Iterable[int]) -> dict[int, int]:
    wanted = list(user_ids)
    rows = session.exec(
        select(WorkAssignment.user_id, func.count())
        .where(col(WorkAssignment.user_id).in_(wanted or [-1]), WorkAssignment.open == True)  # noqa: E712
        .group_by(col(WorkAssignment.user_id))
    ).all()
    counts = {uid: 0 for uid in wanted}
    counts.update({int(uid): int(n) for uid, n in rows})
    return counts


#: accounts that administer or audit the system are never staff to be dispatched or drawn (separation of duties)
NOT_STAFF = (AccountRole.ADMIN, AccountRole.SECURITY_ADMIN, AccountRole.AUDITOR, AccountRole.DEVICE)


def directory(session: Session, duty: Duty) -> list[Actor]:
    """Active staff accounts holding ``duty`` (never a system, security or audit administrator)."""
    users = session.exec(
        select(User)
        .where(User.is_active == True, col(User.role).not_in([r.value for r in NOT_STAFF]))  # noqa: E712
        .order_by(col(User.id))
    ).all()
    return [a for a in (actor_for(session, u) for u in users) if duty in a.duties]


def pick(
    session: Session,
    *,
    duty: Duty,
    count: int,
    department_id: int | None,
    subject_id: int | None,
    explicit: list[int] | None = None,
    exclude: Iterable[int] = (),
) -> list[StaffMember]:
    """``count`` people with ``duty`` for a subject: explicit ones (checked), else balanced by open workload
    (never anyone in ``exclude``: e.g. the inspectors who declined the task).

    Candidates are the department's staff first, then staff without a department; never another department's,
    never anyone recused for the subject.
    """
    recused = recused_users(session, subject_id)
    excluded = set(exclude)
    people = {a.user_id: a for a in directory(session, duty) if a.user_id is not None}
    loads = workloads(session, people)
    label = ROLE_LABELS[duty]
    if explicit:
        chosen: list[StaffMember] = []
        for uid in dict.fromkeys(explicit):
            actor = people.get(uid)
            if actor is None:
                raise Invalid(
                    f"用户 {uid} 不是在岗的{label}（系统管理员不参与派发） / user {uid} does not hold duty {duty.value}"
                )
            if uid in recused:
                raise Invalid(f"{actor.name} 与该主体存在利害关系，应当回避 / user {uid} is recused for this subject")
            chosen.append(StaffMember(actor, loads[uid], actor.department_id == department_id))
        if len(chosen) < count:
            raise Invalid(f"至少需要 {count} 名{label} / at least {count} people with duty {duty.value} are needed")
        return chosen
    candidates = [
        StaffMember(a, loads[uid], a.department_id is not None and a.department_id == department_id)
        for uid, a in people.items()
        if uid not in recused
        and uid not in excluded
        and (department_id is None or a.department_id is None or a.department_id == department_id)
    ]
    candidates.sort(key=lambda m: (not m.in_department, m.workload, m.actor.user_id or 0))
    if len(candidates) < count:
        raise Invalid(
            f"可派{label}不足 {count} 名（回避后剩 {len(candidates)} 名） / only {len(candidates)} eligible "
            f"{duty.value}(s) after recusal, need {count}",
            code="not_enough_staff",
        )
    return candidates[:count]


def assign(session: Session, target_type: str, target_id: int, members: list[StaffMember]) -> None:
    for i, member in enumerate(members):
        assert member.actor.user_id is not None
        session.add(
            WorkAssignment(target_type=target_type, target_id=target_id, user_id=member.actor.user_id, lead=i == 0)
        )
    session.flush()


def assignees(session: Session, target_type: str, target_id: int, *, open_only: bool = False) -> list[int]:
    query = select(WorkAssignment.user_id).where(
        WorkAssignment.target_type == target_type, WorkAssignment.target_id == target_id
    )
    if open_only:
        query = query.where(WorkAssignment.open == True)  # noqa: E712
    return list(session.exec(query.order_by(col(WorkAssignment.id))))


def release(session: Session, target_type: str, target_id: int) -> None:
    for row in session.exec(
        select(WorkAssignment).where(
            WorkAssignment.target_type == target_type,
            WorkAssignment.target_id == target_id,
            WorkAssignment.open == True,  # noqa: E712
        )
    ):
        row.open = False
        session.add(row)
    session.flush()


def replace(session: Session, target_type: str, target_id: int, members: list[StaffMember]) -> None:
    """The people on a re-dispatched task are ``members`` only (the journal keeps who was assigned before)."""
    for row in session.exec(
        select(WorkAssignment).where(WorkAssignment.target_type == target_type, WorkAssignment.target_id == target_id)
    ):
        session.delete(row)
    session.flush()
    assign(session, target_type, target_id, members)
