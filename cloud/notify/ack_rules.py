"""Who may acknowledge an incident (确认收到到人): one check for the logged-in path and the signed-link path.

Acknowledging stops the escalation, so it must be done by somebody the incident was sent to: a recipient of one of
its notifications (including the people it escalated to, and the recipient of a storm summary that folded it), or
a person of the incident's department whose contact rank the rules name (``routing.toml`` ``[ack]``: by default
the department head), optionally only while on the duty roster. Anybody else -- another inspector of the same
jurisdiction included -- is refused with the rule's Chinese and English text, journaled as
``notification.ack_refused``.
"""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session, col, select

from cloud import journal
from cloud.notify.config import AckRules
from cloud.notify.models import Contact, Incident, Notification
from cloud.notify.roster import on_duty


class AckRefused(PermissionError):
    """``person`` may not acknowledge this incident (message: Chinese + English, naming the rule)."""

    def __init__(self, rule: AckRules, person: str) -> None:
        super().__init__(f"{rule.zh}；{person} 不是该通知的接收人 ({rule.en}; rule {rule.id})")
        self.rule = rule
        self.person = person


def is_recipient(session: Session, incident: Incident, person: str) -> bool:
    """``person`` received a notification of ``incident`` (directly, by escalation or in a summary folding it)."""
    found = session.exec(
        select(Notification.id).where(Notification.incident_id == incident.id, Notification.recipient == person)
    ).first()
    return found is not None


def may_acknowledge(session: Session, incident: Incident, person: str, rule: AckRules, now: dt.datetime) -> bool:
    if is_recipient(session, incident, person):
        return True
    if not rule.ranks or not incident.department:
        return False
    contact = session.exec(
        select(Contact).where(
            Contact.key == person,
            Contact.department == incident.department,
            col(Contact.rank).in_(rule.ranks),
            Contact.is_active,
        )
    ).first()
    if contact is None:
        return False
    return not rule.on_duty_only or person in on_duty(session, incident.department, now)


def check_acknowledge(
    session: Session,
    incident: Incident,
    person: str,
    rule: AckRules,
    *,
    via: str,
    now: dt.datetime,
    client: str | None = None,
) -> None:
    """Raise :class:`AckRefused` (after journaling ``notification.ack_refused``) unless ``person`` may ack.

    The caller commits the refusal (the journal row) before answering."""
    if may_acknowledge(session, incident, person, rule, now):
        return
    journal.append(
        session,
        actor=person,
        action="notification.ack_refused",
        target_type="incident",
        target_id=incident.id or 0,
        outcome="denied",
        payload={
            "claimed_by": person,
            "reason": "not_a_recipient",
            "rule": rule.id,
            "via": via,
            "department": incident.department,
            "client": client,
        },
    )
    raise AckRefused(rule, person)
