"""移送 (referral by territorial jurisdiction): a complaint or report received by one department about a market
subject that another department supervises.

Policy. 市场监管 handles complaints and reports by territorial jurisdiction (《市场监督管理投诉举报处理暂行办法》: the
department of the place where the business operates or is registered; 《市场监督管理行政处罚程序规定》: a department
that finds a matter outside its jurisdiction refers it -- 移送 -- to the competent department). So a work order taken
in by a person whose department (staff profile) does not cover the subject's department:

* becomes a **new clue of the subject's department** -- it is never folded into that department's existing clue,
  where it would disappear without anybody there knowing where it came from;
* is journaled on both sides: ``clue.referred_in`` on the new clue (from which department, by whom, which work
  order) and ``work_order.referred_out`` on the receiving department's work order (to which department);
* leaves the receiving department a read-only receipt (:class:`~cloud.workflow.models.ClueReferral`, ``GET
  /clues/referrals``): the work order, the department it went to, who referred it and when. The clue itself is
  the other department's: the receiving department's inspectors cannot read or change it (jurisdiction, 404).

Only a receiver whose jurisdiction is limited (an inspector of a 所 with the intake duty) refers: intake by a
county-wide account (the command centre's intake clerks, supervisors), the self-service kiosk or a person without a
department is not a referral -- the clue simply goes to the subject's department, as before.
"""

from __future__ import annotations

from sqlmodel import Session

from cloud.core.db import utcnow
from cloud.core.users import User
from cloud.security.scoping import home_department, scope_for
from cloud.workflow.clues import Clue
from cloud.workflow.models import ClueReferral, WorkOrder
from cloud.workflow.service import Actor, record


def referral_target(session: Session, actor: Actor, subject_department_id: int | None) -> tuple[int, int] | None:
    """(receiving department, competent department) when a work order taken in by ``actor`` about a subject of
    ``subject_department_id`` must be referred; None when the receiver's jurisdiction covers it (or is the county,
    or the receiver has no department)."""
    if subject_department_id is None or actor.user_id is None:
        return None
    user = session.get(User, actor.user_id)
    if user is None:
        return None
    scope = scope_for(session, user)
    if scope.allows(subject_department_id):
        return None
    home = home_department(session, user)
    return None if home is None else (home, subject_department_id)


def department_name(session: Session, department_id: int | None) -> str | None:
    from cloud.registry.models import Department

    dept = session.get(Department, department_id) if department_id is not None else None
    return dept.name if dept else None


def refer(
    session: Session, order: WorkOrder, clue: Clue, *, actor: Actor, from_department_id: int, to_department_id: int
) -> ClueReferral:
    """Record the referral of ``order`` (now ``clue`` of ``to_department_id``) and journal both sides."""
    assert order.id is not None and clue.id is not None
    row = ClueReferral(
        work_order_id=order.id,
        clue_id=clue.id,
        from_department_id=from_department_id,
        to_department_id=to_department_id,
        referred_by=actor.username,
        referred_at=utcnow(),
        respondent=order.respondent_name,
        kind=order.kind,
    )
    session.add(row)
    session.flush()
    source, target = department_name(session, from_department_id), department_name(session, to_department_id)
    record(
        session,
        actor,
        "clue.referred_in",
        "clue",
        clue.id,
        {
            "referral_id": row.id,
            "work_order_id": order.id,
            "from_department_id": from_department_id,
            "from_department": source,
            "referred_by": actor.username,
            "message": f"由{source}移送（属地管辖）",
        },
    )
    record(
        session,
        actor,
        "work_order.referred_out",
        "work_order",
        order.id,
        {
            "referral_id": row.id,
            "clue_id": clue.id,
            "to_department_id": to_department_id,
            "to_department": target,
            "message": f"被投诉（举报）主体属{target}管辖，已移送",
        },
    )
    return row
