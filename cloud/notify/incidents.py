"""Incidents, per-person notifications and their delivery rows: fold, storm summary, ack, escalation, SLA.

Everything here runs inside the caller's write transaction (flushes, never commits) so that the follower's
cursor, the incidents and the deliveries it creates commit together: an event is handled exactly once.
Channel sends happen later, from the delivery rows (see :mod:`cloud.notify.dispatcher`).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from cloud import journal
from cloud.notify import message
from cloud.notify.ack_rules import check_acknowledge
from cloud.notify.config import CHANNELS, AckRules, NotifyRules, NotifySettings, Route
from cloud.notify.links import issue
from cloud.notify.models import (
    Contact,
    Delivery,
    Incident,
    IncidentStatus,
    Notification,
    Rank,
)
from cloud.notify.routing import Facts, contact_for, designated_count, people_of_rank
from cloud.notify.storm import StormControl
from cloud.workflow.clues import more_severe

ACTOR = "system:notify"
LEVEL_RANKS: dict[str, Rank] = {"supervisor": Rank.SUPERVISOR, "head": Rank.HEAD}


@dataclass(slots=True)
class Effects:
    """What to do after the commit: live in-app updates and which channel workers to wake."""

    sse: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    channels: set[str] = field(default_factory=set)

    def merge(self, other: Effects) -> None:
        self.sse += other.sse
        self.channels |= other.channels


class Notifier:
    """Creates notifications and deliveries for incidents (one instance per service; holds storm windows)."""

    def __init__(self, rules: NotifyRules, nsettings: NotifySettings, *, mqtt_enabled: bool = True) -> None:
        self.rules = rules
        self.nsettings = nsettings
        self.mqtt_enabled = mqtt_enabled and nsettings.mqtt_enabled
        self.storm = StormControl(rules.escalation.storm)
        self.summary_flushed: dict[int, tuple[float, int]] = {}

    # ------------------------------------------------------------------ channels of one person
    def channels_for(self, contact: Contact, allowed: list[str] | tuple[str, ...]) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for channel in allowed:
            if channel == "inapp" and contact.inapp:
                out.append(("inapp", contact.key))
            elif channel == "mqtt" and contact.mqtt and self.mqtt_enabled:
                out.append(("mqtt", contact.key))
            elif channel == "webhook" and contact.webhook_url:
                out.append(("webhook", contact.webhook_url))
            elif channel == "email" and contact.email:
                out.append(("email", contact.email))
        return out

    def route_channels(self, incident: Incident) -> list[str]:
        for route in self.rules.routing.routes:
            if route.id == incident.route_id:
                return list(route.channels)
        return list(CHANNELS)

    def send_to(
        self,
        session: Session,
        incident: Incident,
        person: str,
        level: int,
        channels: list[str],
        now: dt.datetime,
        effects: Effects,
        notification: Notification | None = None,
    ) -> Notification:
        """A notification row for ``person`` (unless given) and one pending delivery per channel they use."""
        if notification is None:
            notification = Notification(incident_id=incident.id or 0, recipient=person, level=level, created_at=now)
            session.add(notification)
            session.flush()
        contact = contact_for(session, person)
        if not contact.is_active:
            return notification
        for channel, address in self.channels_for(contact, channels):
            jti = None
            if channel in ("webhook", "email"):
                jti = issue(
                    session,
                    incident_id=incident.id or 0,
                    recipient=person,
                    channel=channel,
                    ttl_s=self.nsettings.link_ttl_s,
                    now=now,
                    proof_required=channel in self.nsettings.shared_channels,
                ).jti
            session.add(
                Delivery(
                    notification_id=notification.id or 0,
                    channel=channel,
                    address=address,
                    created_at=now,
                    next_attempt_at=now,
                    count=incident.count,
                    link_jti=jti,
                )
            )
            effects.channels.add(channel)
        return notification

    # ------------------------------------------------------------------ one routed event
    def handle(
        self,
        session: Session,
        event: journal.JournalEvent,
        facts: Facts,
        route: Route,
        people: list[str],
        department: str | None,
        now: dt.datetime,
    ) -> Effects:
        effects = Effects()
        window = dt.timedelta(seconds=self.rules.escalation.storm.fold_window_s)
        existing = session.exec(
            select(Incident)
            .where(
                Incident.key == facts.key,
                Incident.status != IncidentStatus.CLOSED,
                col(Incident.updated_at) >= now - window,
            )
            .order_by(col(Incident.id).desc())
        ).first()
        if existing is not None:  # storm control 1: repeats fold into one incident with a counter
            existing.count += 1
            existing.updated_at = now
            session.add(existing)
            if more_severe(facts.severity, existing.severity) != existing.severity:
                return self._upgrade(session, event, existing, facts, route, people, now)
            update = {"type": "update", "incident_id": existing.id, "count": existing.count, "title": existing.title}
            for person in self._recipients_of(session, existing):
                effects.sse.append((person, update))
            return effects

        policy = self.rules.policy(route.escalation)
        designated = designated_count(session, route, people, facts.site_id)
        mono = time.monotonic()
        mass = False if route.storm_exempt else self.storm.note_new_incident(mono)
        incident = Incident(
            key=facts.key,
            kind=facts.kind,
            route_id=route.id,
            policy=route.escalation,
            title=facts.title,
            body=facts.body,
            severity=facts.severity,
            category=facts.category,
            site_id=facts.site_id,
            department=department,
            clue_id=facts.clue_id,
            alert_id=facts.alert_id,
            target_type=facts.target_type,
            target_id=facts.target_id,
            opened_at=now,
            updated_at=now,
            escalate_at=None if mass or not policy.levels else now + dt.timedelta(seconds=policy.levels[0].after_s),
            source_event_id=event.id,
            understaffed=len(people) < route.min_recipients or designated < route.min_designated,
        )
        if policy.sla is not None:
            area = self.rules.areas.class_of(facts.site_id, department)
            limit_s = policy.sla.limit_s(area)
            label = (
                f"（{self.rules.areas.classes.get(area, area)} {_minutes(limit_s)}）"
                if policy.sla.within_s_by_area
                else ""
            )
            incident.sla_name = f"{policy.sla.name}{label}"[:100]
            # from when it happened (the alert's start, e.g. buffered on an edge that was offline), not from when
            # the cloud learned of it
            started = min(_reported_at(event, "started_at"), event.ts)
            incident.sla_due_at = started + dt.timedelta(seconds=limit_s)
        incident.body = self._body(incident, facts)
        session.add(incident)
        session.flush()
        summarised: list[str] = []
        for person in people:
            limited = not route.storm_exempt and (mass or not self.storm.allow(person, mono))
            if limited:
                summary = self._add_to_summary(session, person, incident, department, now, effects)
                session.add(
                    Notification(
                        incident_id=incident.id or 0,
                        recipient=person,
                        level=0,
                        created_at=now,
                        summarised_into=summary.id,
                    )
                )
                summarised.append(person)
            else:
                self.send_to(session, incident, person, 0, list(route.channels), now, effects)
        journal.append(
            session,
            actor=ACTOR,
            action="notification.created",
            target_type="incident",
            target_id=incident.id or 0,
            payload={
                "key": incident.key,
                "route_id": route.id,
                "source_event_id": event.id,
                "source_action": event.action,
                "recipients": people,
                "summarised": summarised,
                "clue_id": incident.clue_id,
                "department": department,
            },
        )
        if incident.understaffed:
            journal.append(
                session,
                actor=ACTOR,
                action="notification.understaffed",
                target_type="incident",
                target_id=incident.id or 0,
                outcome="failed",
                payload={
                    "route_id": route.id,
                    "required": max(route.min_recipients, route.min_designated),
                    "resolved": len(people),
                    "designated": designated,
                    "required_designated": route.min_designated,
                    "site_id": facts.site_id,
                    "department": department,
                    "message": f"通知对象不足：路由 {route.id} 要求至少 {route.min_recipients} 人"
                    f"（其中企业指定人员至少 {route.min_designated} 人），实际 {len(people)} 人"
                    f"（企业指定人员 {designated} 人）",
                },
            )
        return effects

    def _body(self, incident: Incident, facts: Facts) -> str:
        """The event's where/what, then by when (acknowledge before escalation, an SLA) and the link."""
        levels = self.rules.policy(incident.policy).levels
        return message.body_text(
            facts.body,
            message.deadline_lines(
                incident.escalate_at, levels[incident.level].to if incident.level < len(levels) else None,
                incident.sla_name, incident.sla_due_at,
            ),
            message.link_line(self.nsettings.public_base_url, facts.target_type, facts.target_id, facts.clue_id),
        )  # fmt: skip

    def _upgrade(
        self,
        session: Session,
        event: journal.JournalEvent,
        incident: Incident,
        facts: Facts,
        route: Route,
        people: list[str],
        now: dt.datetime,
    ) -> Effects:
        """A graver source joined the incident's clue (the 9.3 ℃ alarm after a minor rate-of-change alert): the
        incident takes the new severity, title and body, is open again if it was acknowledged at the lower
        severity, and everybody it reached (and whom the graver route names) is notified again."""
        effects = Effects()
        before = incident.severity
        policy = self.rules.policy(route.escalation)
        incident.severity, incident.title, incident.route_id, incident.policy = (
            facts.severity, facts.title, route.id, route.escalation,
        )  # fmt: skip
        incident.alert_id = facts.alert_id or incident.alert_id
        if incident.status == IncidentStatus.ACKED:
            incident.status, incident.acked_at, incident.acked_by, incident.acked_via = (
                IncidentStatus.OPEN,
                None,
                None,
                None,
            )
        if incident.status == IncidentStatus.OPEN and incident.level == 0 and policy.levels:
            incident.escalate_at = min(
                incident.escalate_at or now + dt.timedelta(seconds=policy.levels[0].after_s),
                now + dt.timedelta(seconds=policy.levels[0].after_s),
            )
        incident.body = self._body(incident, facts)
        session.add(incident)
        rows = session.exec(select(Notification).where(Notification.incident_id == incident.id)).all()
        reached = {n.recipient: n for n in rows if n.summarised_into is None}
        for person in dict.fromkeys([*reached, *people]):
            level = reached[person].level if person in reached else 0
            self.send_to(session, incident, person, level, list(route.channels), now, effects, reached.get(person))
        journal.append(
            session,
            actor=ACTOR,
            action="notification.upgraded",
            target_type="incident",
            target_id=incident.id or 0,
            payload={
                "from": before,
                "to": incident.severity,
                "source_event_id": event.id,
                "source_action": event.action,
                "route_id": route.id,
                "recipients": list(dict.fromkeys([*reached, *people])),
                "clue_id": incident.clue_id,
            },
        )
        return effects

    def _recipients_of(self, session: Session, incident: Incident) -> list[str]:
        rows = session.exec(select(Notification.recipient).where(Notification.incident_id == incident.id)).all()
        return list(dict.fromkeys(rows))

    def _add_to_summary(
        self, session: Session, person: str, item: Incident, department: str | None, now: dt.datetime, effects: Effects
    ) -> Incident:
        """Storm control 2/3: put ``item`` into ``person``'s open summary (created and sent on first use)."""
        key = f"summary:{person}"
        summary = session.exec(
            select(Incident).where(Incident.key == key, Incident.status == IncidentStatus.OPEN)
        ).first()
        entry = {"incident_id": item.id, "title": item.title, "site_id": item.site_id}
        if summary is not None:
            summary.count += 1
            summary.items = [*summary.items, entry]
            summary.updated_at = now
            summary.title = _summary_title(summary.count)
            summary.body = _summary_body(summary.items)
            session.add(summary)
            return summary
        policy = self.rules.policy("default")
        summary = Incident(
            key=key,
            kind="summary",
            route_id="storm_summary",
            policy="default",
            title=_summary_title(1),
            body=_summary_body([entry]),
            severity=item.severity,
            department=department,
            opened_at=now,
            updated_at=now,
            escalate_at=now + dt.timedelta(seconds=policy.levels[0].after_s) if policy.levels else None,
            items=[entry],
        )
        session.add(summary)
        session.flush()
        self.send_to(session, summary, person, 0, list(CHANNELS), now, effects)
        self.summary_flushed[summary.id or 0] = (time.monotonic(), 1)
        return summary

    def flush_summaries(self, session: Session, now: dt.datetime) -> Effects:
        """Re-send open summaries whose counter grew, at most every ``summary_flush_s``."""
        effects = Effects()
        every = self.rules.escalation.storm.summary_flush_s
        mono = time.monotonic()
        summaries = session.exec(
            select(Incident).where(Incident.kind == "summary", Incident.status == IncidentStatus.OPEN)
        ).all()
        for summary in summaries:
            sid = summary.id or 0
            last_t, last_count = self.summary_flushed.get(sid, (0.0, 0))
            if summary.count == last_count or mono - last_t < every:
                continue
            notification = session.exec(
                select(Notification).where(Notification.incident_id == sid, Notification.level == 0)
            ).first()
            if notification is None:
                continue
            self.send_to(session, summary, notification.recipient, 0, list(CHANNELS), now, effects, notification)
            self.summary_flushed[sid] = (mono, summary.count)
        return effects

    # ------------------------------------------------------------------ escalation and SLA
    def escalate_due(self, session: Session, now: dt.datetime) -> Effects:
        effects = Effects()
        due = session.exec(
            select(Incident).where(
                Incident.status == IncidentStatus.OPEN,
                col(Incident.escalate_at).is_not(None),
                col(Incident.escalate_at) <= now,
            )
        ).all()
        for incident in due:
            levels = self.rules.policy(incident.policy).levels
            if incident.level >= len(levels):
                incident.escalate_at = None
                session.add(incident)
                continue
            target = levels[incident.level]
            incident.level += 1
            people = people_of_rank(session, incident.department, LEVEL_RANKS[target.to])
            for person in people:
                self.send_to(session, incident, person, incident.level, self.route_channels(incident), now, effects)
            nxt = levels[incident.level].after_s if incident.level < len(levels) else None
            incident.escalate_at = incident.opened_at + dt.timedelta(seconds=nxt) if nxt is not None else None
            session.add(incident)
            journal.append(
                session,
                actor=ACTOR,
                action="notification.escalated",
                target_type="incident",
                target_id=incident.id or 0,
                outcome="ok" if people else "failed",
                payload={
                    "level": incident.level,
                    "to": target.to,
                    "recipients": people,
                    "clue_id": incident.clue_id,
                    "department": incident.department,
                    "unacked_s": round((now - incident.opened_at).total_seconds(), 3),
                },
            )
        return effects

    def check_sla(self, session: Session, now: dt.datetime) -> Effects:
        effects = Effects()
        due = session.exec(
            select(Incident).where(
                col(Incident.sla_due_at).is_not(None),
                col(Incident.sla_due_at) < now,  # "within 30 min": arriving at the limit is on time
                col(Incident.sla_met_at).is_(None),
                Incident.sla_breached == False,  # noqa: E712
            )
        ).all()
        for incident in due:
            incident.sla_breached = True
            session.add(incident)
            sla = self.rules.policy(incident.policy).sla
            rank = LEVEL_RANKS[sla.breach_to] if sla else Rank.HEAD
            people = people_of_rank(session, incident.department, rank)
            for person in people:
                self.send_to(session, incident, person, 2, self.route_channels(incident), now, effects)
            clue_id = raise_breach_clue(session, incident, now) if sla is not None and sla.clue_on_breach else None
            journal.append(
                session,
                actor=ACTOR,
                action="sla.breached",
                target_type="incident",
                target_id=incident.id or 0,
                payload={
                    "sla": incident.sla_name,
                    "due_at": incident.sla_due_at,
                    "clue_id": incident.clue_id,
                    "site_id": incident.site_id,
                    "department": incident.department,
                    "recipients": people,
                    "supervision_clue_id": clue_id,
                },
            )
        return effects

    @staticmethod
    def sla_met(session: Session, event: journal.JournalEvent, facts: Facts, met_by: dict[str, set[str]]) -> None:
        """Mark SLA clocks met by ``event`` (same clue or alert); also records alert clear times."""
        conditions: list[Any] = []
        if facts.clue_id:
            conditions.append(Incident.clue_id == facts.clue_id)
        if facts.alert_id:
            conditions.append(Incident.alert_id == facts.alert_id)
        if event.target_type == "incident":
            conditions.append(Incident.id == int(event.target_id))
        if not conditions:
            return
        from sqlalchemy import or_

        for incident in session.exec(select(Incident).where(or_(*conditions))).all():
            if event.action == "alert.cleared" and incident.cleared_at is None:
                incident.cleared_at = event.ts
            if (
                incident.sla_due_at is not None
                and incident.sla_met_at is None
                and any(sla_trigger_matches(event, spec) for spec in met_by.get(incident.policy, set()))
            ):
                incident.sla_met_at = _reported_at(event, "arrived_at")
                journal.append(
                    session,
                    actor=ACTOR,
                    action="sla.met",
                    target_type="incident",
                    target_id=incident.id or 0,
                    payload={"sla": incident.sla_name, "by_event": event.id, "breached": incident.sla_breached},
                )
            session.add(incident)


def _minutes(seconds: float) -> str:
    return f"{seconds / 3600:g} 小时" if seconds >= 3600 else f"{seconds / 60:g} 分钟"


def _reported_at(event: journal.JournalEvent, key: str) -> dt.datetime:
    """A time the event reports (``started_at`` of an alert, ``arrived_at`` of an arrival phoned in afterwards),
    else the event's own time."""
    reported = (event.payload or {}).get(key)
    if isinstance(reported, dt.datetime):
        return reported
    if isinstance(reported, str):
        try:
            value = dt.datetime.fromisoformat(reported)
        except ValueError:
            return event.ts
        return value if value.tzinfo is not None else event.ts
    return event.ts


def raise_breach_clue(session: Session, incident: Incident, now: dt.datetime) -> int | None:
    """A breached SLA with ``clue_on_breach`` becomes a supervision clue (督办线索) through clue collection."""
    try:
        from cloud.workflow.grouping import supervision_clue
    except ImportError:  # notification service without the workflow: the journal event alone is the seam
        return None
    due = incident.sla_due_at.isoformat() if incident.sla_due_at else ""
    return supervision_clue(
        session,
        title=f"【督办】{incident.sla_name}超时：{incident.title}",
        summary=f"{incident.sla_name}应于 {due} 前到场，到期未收到到场记录",
        at=now,
        ref=f"sla:{incident.id}",
        actor=ACTOR,
        parent_clue_id=incident.clue_id,
        site_id=incident.site_id,
        extra={"incident_id": incident.id, "sla": incident.sla_name, "due_at": due},
    )


def sla_trigger_matches(event: journal.JournalEvent, spec: str) -> bool:
    """``met_by`` entries are journal actions (``sla.on_site``), optionally narrowed to one workflow action of a
    transition: ``task.transition:check_in`` is met when an inspector checks in on site for the clue's task."""
    action, _, sub_action = spec.partition(":")
    if event.action != action:
        return False
    return not sub_action or str((event.payload or {}).get("action")) == sub_action


def _summary_title(count: int) -> str:
    return f"【告警汇总】大面积告警期间共 {count} 条通知未逐条推送，请登录平台查看"


def _summary_body(items: list[dict[str, Any]]) -> str:
    sites = {i.get("site_id") for i in items if i.get("site_id")}
    latest = "；".join(str(i.get("title")) for i in items[-5:])
    return f"涉及 {len(sites)} 个场所。最近：{latest}"[:2000]


class AckError(ValueError):
    pass


def acknowledge(
    session: Session,
    incident_id: int,
    *,
    by: str,
    via: str,
    now: dt.datetime,
    rule: AckRules,
    proof: str = "login",
    link_channel: str | None = None,
    client: str | None = None,
) -> Incident:
    """Acknowledge an incident for everybody (a summary acknowledges its items too); journals it.

    Only a person ``rule`` allows (a recipient, or the department head it names) acknowledges: anybody else gets
    :class:`~cloud.notify.ack_rules.AckRefused` (journaled ``notification.ack_refused``; the caller commits).

    ``by`` is the person who acknowledged and ``proof`` how they proved it was them: ``login`` (their own session),
    ``password`` / ``personal_code`` (given with a link posted to a group), ``personal_link`` (a link sent to their
    own mailbox)."""
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise AckError(f"通知 {incident_id} 不存在 (no such incident)")
    if incident.status != IncidentStatus.OPEN:
        return incident
    check_acknowledge(session, incident, by, rule, via=via, now=now, client=client)
    ids = [incident_id] + [int(i["incident_id"]) for i in incident.items if i.get("incident_id")]
    for iid in ids:
        item = session.get(Incident, iid)
        if item is None or item.status != IncidentStatus.OPEN:
            continue
        item.status = IncidentStatus.ACKED
        item.acked_at = now
        item.acked_by = by
        item.acked_via = via
        item.escalate_at = None
        session.add(item)
        journal.append(
            session,
            actor=by,
            action="notification.acked",
            target_type="incident",
            target_id=iid,
            payload={
                "via": via,
                "proof": proof,
                "link_channel": link_channel,
                "clue_id": item.clue_id,
                "department": item.department,
                "level": item.level,
                "response_s": round((now - item.opened_at).total_seconds(), 3),
                "via_summary": iid != incident_id,
            },
        )
    return incident
