"""A clue's complaints as staff read them, and the open clues that may be the same matter.

* :func:`work_orders_of` — each work order folded into the clue with its structured facts (what, when, where, goods,
  amount, demands) and the complainant's contact. The contact keys are the PII keys of
  :mod:`cloud.security.masking`: every JSON answer masks them (138****1234); the clear values only through
  ``GET /pii/work-orders/{id}`` (duty and reason checked, journaled ``pii.revealed``).
* :func:`similar_open_clues` — open clues of the same subject (or the same site, or the same respondent name when
  the subject is not registered), the same matter (category) first: candidates to merge or link.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, select

from cloud.workflow.clues import CATEGORY_LABELS, KIND_LABELS, TERMINAL_STATES, Clue, ClueSource
from cloud.workflow.models import WorkOrder
from cloud.workflow.money import format_yuan
from cloud.workflow.service import Actor, Conflict, NotFound, record
from cloud.workflow.states import CLUE_MACHINE

__all__ = ["link_subject", "similar_open_clues", "work_orders_of"]

MAX_SIMILAR = 10


def work_orders_of(session: Session, clue_id: int) -> list[dict[str, Any]]:
    ids = [
        i
        for i in session.exec(
            select(ClueSource.work_order_id).where(
                ClueSource.clue_id == clue_id, col(ClueSource.work_order_id).is_not(None)
            )
        )
        if i is not None
    ]
    out = []
    for order in session.exec(select(WorkOrder).where(col(WorkOrder.id).in_(ids or [-1])).order_by(col(WorkOrder.id))):
        out.append(
            {
                "id": order.id,
                "kind": order.kind,
                "kind_label": KIND_LABELS.get(order.kind, order.kind),
                "external_no": order.external_no,
                "received_at": order.received_at.isoformat(),
                "anonymous": order.anonymous,
                # personal data: masked in every JSON answer (cloud.security.masking.PII_KEYS)
                "complainant_name": order.complainant_name,
                "complainant_phone": order.complainant_phone,
                "complainant_address": order.complainant_address,
                "respondent_name": order.respondent_name,
                "respondent_address": order.respondent_address,
                "facts": order.facts,
                "incident_at": order.incident_at.isoformat() if order.incident_at else None,
                "incident_place": order.incident_place,
                "goods": order.goods,
                "amount": format_yuan(order.amount) if order.amount is not None else None,
                "request": order.request,
                "acceptance": order.acceptance,
                "accept_due": order.accept_due.isoformat() if order.accept_due else None,
            }
        )
    return out


def similar_open_clues(session: Session, clue: Clue) -> list[dict[str, Any]]:
    """Open clues that may be the same subject and matter (same subject, else site, else respondent name)."""
    query = select(Clue).where(col(Clue.id) != clue.id, col(Clue.state).not_in([s.value for s in TERMINAL_STATES]))
    if clue.subject_id is not None:
        query = query.where(Clue.subject_id == clue.subject_id)
        why = "同一市场主体"
    elif clue.site_id:
        query = query.where(Clue.site_id == clue.site_id)
        why = "同一场所"
    elif clue.subject_name:
        query = query.where(Clue.subject_name == clue.subject_name)
        why = "被投诉（举报）对象名称相同"
    else:
        return []
    rows = list(session.exec(query.order_by(col(Clue.id).desc()).limit(100)))
    rows.sort(key=lambda c: (c.category != clue.category, -(c.id or 0)))
    return [
        {
            "id": c.id,
            "title": c.title,
            "state": c.state,
            "state_label": CLUE_MACHINE.state_label(c.state),
            "category_label": CATEGORY_LABELS.get(c.category, c.category),
            "same_matter": c.category == clue.category,
            "why": why + ("、同一事项" if c.category == clue.category else ""),
        }
        for c in rows[:MAX_SIMILAR]
    ]


def link_subject(session: Session, clue: Clue, subject_id: int, actor: Actor, reason: str) -> Clue:
    """Link an open clue whose respondent was not matched in the registry to a registered subject (and its
    department); the work orders follow; journaled ``clue.subject_linked`` with the reason. Flushes."""
    from cloud.registry.models import MarketSubject

    if clue.state in TERMINAL_STATES:
        raise Conflict("已办结或已合并的线索不能再关联主体 / the clue is closed")
    subject = session.get(MarketSubject, subject_id)
    if subject is None:
        raise NotFound(f"市场主体 {subject_id} 不存在 / subject not found")
    if subject.deactivated_at is not None:
        raise Conflict(
            f"市场主体“{subject.name}”已注销（{subject.deactivation_reason}），不能关联新的线索；如需恢复，请在“市场主体”页恢复",
            code="deactivated",
        )
    before = {"subject_id": clue.subject_id, "subject_name": clue.subject_name}
    clue.subject_id, clue.subject_name = subject.id, subject.name
    if subject.department_id is not None:
        clue.department_id = subject.department_id
    session.add(clue)
    for order in session.exec(
        select(WorkOrder).where(
            col(WorkOrder.id).in_(
                [i for i in session.exec(select(ClueSource.work_order_id).where(ClueSource.clue_id == clue.id)) if i]
                or [-1]
            )
        )
    ):
        order.subject_id, order.subject_match = subject.id, "manual"
        session.add(order)
    record(
        session,
        actor,
        "clue.subject_linked",
        "clue",
        clue.id or 0,
        {"subject_id": subject.id, "subject_name": subject.name, "before": before, "reason": reason},
    )
    session.flush()
    return clue
