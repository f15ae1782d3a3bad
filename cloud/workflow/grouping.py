"""Clue collection and grouping (线索归集与归并, standard §8.2), shared by every channel.

:func:`collect` resolves the subject and site of an incoming source (:func:`resolve_subject`: USCC, then exact
name, then address of a subject or site, then the site's subject), computes its group key from
``grouping.toml`` and folds it into the newest open clue with the same key whose first source is within the
window (a closed, dismissed or merged clue never absorbs), or creates a new clue and runs analysis on it.
Every creation and fold is journaled (``clue.created``, ``clue.folded``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from cloud.registry.models import Department, MarketSubject, Site
from cloud.registry.uscc import normalize as normalize_uscc
from cloud.workflow.clues import TERMINAL_STATES, Clue, ClueSource, more_severe
from cloud.workflow.config import GroupingRules, grouping_rules, workflow_rules
from cloud.workflow.service import SYSTEM, Actor, record
from cloud.workflow.states import ClueState

log = logging.getLogger(__name__)

__all__ = [
    "CollectResult",
    "Incoming",
    "Resolution",
    "collect",
    "escalate",
    "group_key",
    "resolve_subject",
    "supervision_clue",
]


@dataclass(slots=True)
class Incoming:
    """One source arriving at clue collection, from any channel."""

    kind: str  # alert complaint report referral walk_in feedback
    channel: str
    category: str
    severity: str
    title: str
    at: datetime
    site_id: str | None = None
    device_id: str | None = None
    sensor_id: str | None = None
    rule_id: str | None = None
    value: float | None = None
    unit: str | None = None
    summary: str = ""
    description: str = ""
    alert_id: int | None = None
    work_order_id: int | None = None
    ref: str | None = None
    subject_id: int | None = None
    respondent_uscc: str | None = None
    respondent_name: str | None = None
    respondent_address: str | None = None
    parent_clue_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    fold: bool = True  # False: always a new clue (a referral from another department, cloud/workflow/referral.py)


@dataclass(frozen=True, slots=True)
class Resolution:
    subject: MarketSubject | None
    site_id: str | None
    department_id: int | None
    match: str | None  # uscc | name | address | site | id


@dataclass(frozen=True, slots=True)
class CollectResult:
    clue: Clue
    created: bool


def _default_department(session: Session) -> int | None:
    code = workflow_rules().bureau.default_department
    if not code:
        return None
    dep = session.exec(select(Department).where(Department.code == code)).first()
    return dep.id if dep else None


def resolve_subject(
    session: Session,
    *,
    subject_id: int | None = None,
    uscc: str | None = None,
    name: str | None = None,
    address: str | None = None,
    site_id: str | None = None,
) -> Resolution:
    """Find the market subject (and site, jurisdiction) a source is about."""
    subject: MarketSubject | None = None
    match: str | None = None
    site: Site | None = session.get(Site, site_id) if site_id else None
    if subject_id is not None:
        subject, match = session.get(MarketSubject, subject_id), "id"
    if subject is None and uscc:
        code = normalize_uscc(uscc)
        subject = session.exec(select(MarketSubject).where(MarketSubject.uscc == code)).first()
        match = "uscc" if subject else None
    if subject is None and name and name.strip():
        rows = list(session.exec(select(MarketSubject).where(MarketSubject.name == name.strip()).limit(2)))
        if len(rows) == 1:
            subject, match = rows[0], "name"
    if subject is None and address and address.strip():
        rows = list(session.exec(select(MarketSubject).where(MarketSubject.address == address.strip()).limit(2)))
        if len(rows) == 1:
            subject, match = rows[0], "address"
        elif site is None:
            sites = list(session.exec(select(Site).where(Site.address == address.strip()).limit(2)))
            if len(sites) == 1:
                site = sites[0]
    if subject is None and site is not None and site.subject_id is not None:
        subject, match = session.get(MarketSubject, site.subject_id), "site"
    if site is None and subject is not None:
        sites = list(session.exec(select(Site).where(Site.subject_id == subject.id).limit(2)))
        if len(sites) == 1:
            site = sites[0]
    department = (
        (subject.department_id if subject else None)
        or (site.department_id if site else None)
        or _default_department(session)
    )
    return Resolution(subject, site.site_id if site else site_id, department, match)


def group_key(
    rules: GroupingRules,
    *,
    kind: str,
    category: str,
    subject_id: int | None,
    site_id: str | None,
    respondent: str | None,
    device_id: str | None,
    rule_id: str | None,
) -> str:
    parts: list[str] = []
    keys = list(rules.keys) + ([] if rules.across_kinds or "kind" in rules.keys else ["kind"])
    for key in keys:
        if key == "subject":
            if subject_id is not None:
                parts.append(f"subject={subject_id}")
            elif site_id:
                parts.append(f"site={site_id}")
            else:
                parts.append(f"name={(respondent or '').strip()}")
        elif key == "site":
            parts.append(f"site={site_id or ''}")
        elif key == "category":
            parts.append(f"category={category}")
        elif key == "device":
            parts.append(f"device={device_id or ''}")
        elif key == "rule":
            parts.append(f"rule={rule_id or ''}")
        elif key == "kind":
            parts.append(f"kind={kind}")
    return "|".join(parts)[:300]


def _find_open(session: Session, key: str, at: datetime, rules: GroupingRules) -> Clue | None:
    window = timedelta(hours=rules.window_hours)
    return session.exec(
        select(Clue)
        .where(
            Clue.group_key == key,
            col(Clue.state).not_in([s.value for s in TERMINAL_STATES]),
            col(Clue.first_seen_at) >= at - window,
            col(Clue.first_seen_at) <= at + window,
            col(Clue.source_count) < rules.max_sources,
        )
        .order_by(col(Clue.id).desc())
    ).first()


def collect(
    session: Session, incoming: Incoming, *, actor: Actor | str = SYSTEM, analyse: bool | None = None
) -> CollectResult:
    """Fold ``incoming`` into an open clue or create one (then analyse it). Flushes, never commits."""
    rules = grouping_rules()
    res = resolve_subject(
        session,
        subject_id=incoming.subject_id,
        uscc=incoming.respondent_uscc,
        name=incoming.respondent_name,
        address=incoming.respondent_address,
        site_id=incoming.site_id,
    )
    subject_id = res.subject.id if res.subject else None
    key = group_key(
        rules,
        kind=incoming.kind,
        category=incoming.category,
        subject_id=subject_id,
        site_id=res.site_id,
        respondent=incoming.respondent_name,
        device_id=incoming.device_id,
        rule_id=incoming.rule_id,
    )
    clue = _find_open(session, key, incoming.at, rules) if incoming.fold else None
    created = clue is None
    reanalyse: str | None = None
    if clue is None:
        clue = Clue(
            site_id=res.site_id,
            device_id=incoming.device_id,
            sensor_id=incoming.sensor_id,
            rule_id=incoming.rule_id,
            category=incoming.category,
            severity=incoming.severity,
            value=incoming.value,
            unit=incoming.unit,
            title=incoming.title[:300],
            channel=incoming.channel,
            kind=incoming.kind,
            first_seen_at=incoming.at,
            last_seen_at=incoming.at,
            subject_id=subject_id,
            subject_name=res.subject.name if res.subject else incoming.respondent_name,
            department_id=res.department_id,
            group_key=key,
            description=incoming.description,
            parent_clue_id=incoming.parent_clue_id,
            created_by=actor.username if isinstance(actor, Actor) else actor,
        )
        session.add(clue)
        session.flush()
    else:
        known_kinds = set(session.exec(select(ClueSource.kind).where(ClueSource.clue_id == clue.id)))
        escalated = (
            incoming.severity != clue.severity and more_severe(incoming.severity, clue.severity) == incoming.severity
        )
        reanalyse = "severity_raised" if escalated else ("new_kind" if incoming.kind not in known_kinds else None)
        # the counter is incremented in SQL so that two folds in parallel transactions both count
        clue.source_count = Clue.source_count + 1
        if escalated:
            # the most severe source describes the clue: its title (and 【级别】), sensor, rule and reading
            clue.title = incoming.title[:300]
            for name in ("device_id", "sensor_id", "rule_id", "unit"):
                value = getattr(incoming, name)
                if value is not None:
                    setattr(clue, name, value)
        clue.severity = more_severe(incoming.severity, clue.severity)
        if incoming.value is not None:
            clue.value = incoming.value
        clue.last_seen_at = max(clue.last_seen_at, incoming.at)
        session.add(clue)
        session.flush()
        session.refresh(clue)
    assert clue.id is not None
    source = ClueSource(
        clue_id=clue.id,
        alert_id=incoming.alert_id,
        work_order_id=incoming.work_order_id,
        kind=incoming.kind,
        channel=incoming.channel,
        ref=incoming.ref,
        summary=(incoming.summary or incoming.title)[:500],
        extra=incoming.extra,
    )
    session.add(source)
    session.flush()
    payload = {
        "kind": incoming.kind,
        "channel": incoming.channel,
        "category": incoming.category,
        "severity": incoming.severity,
        "subject_id": subject_id,
        "site_id": res.site_id,
        "department_id": res.department_id,
        "subject_match": res.match,
        "alert_id": incoming.alert_id,
        "work_order_id": incoming.work_order_id,
        "source_id": source.id,
        "source_count": clue.source_count,
        "group_key": key,
    }
    record(session, actor, "clue.created" if created else "clue.folded", "clue", clue.id, payload)
    enabled = analyse if analyse is not None else workflow_rules().analysis.analyse_on_create
    if created and enabled:
        from cloud.workflow.decisions import analyse_new_clue

        analyse_new_clue(session, clue)
    elif enabled and reanalyse and clue.state in (ClueState.TRIAGED, ClueState.ANALYSING):
        # analysis follows the clue: a more severe source or a new kind of source may change the disposal
        from cloud.workflow.decisions import analyse_new_clue

        analyse_new_clue(session, clue, trigger=reanalyse)
    return CollectResult(clue, created)


def escalate(session: Session, alert_id: int, severity: str, title: str) -> None:
    """An alert already in an open clue became more severe (an UPDATE): the clue follows, as on a fold."""
    for clue in session.exec(
        select(Clue)
        .join(ClueSource, col(ClueSource.clue_id) == col(Clue.id))
        .where(ClueSource.alert_id == alert_id, col(Clue.state).not_in([s.value for s in TERMINAL_STATES]))
    ):
        if severity != clue.severity and more_severe(severity, clue.severity) == severity:
            clue.severity, clue.title = severity, title[:300]
            session.add(clue)
    session.flush()


def supervision_clue(
    session: Session,
    *,
    title: str,
    summary: str,
    at: datetime,
    ref: str,
    actor: Actor | str,
    parent_clue_id: int | None = None,
    site_id: str | None = None,
    severity: str = "major",
    extra: dict[str, Any] | None = None,
) -> int | None:
    """A supervision clue (督办线索: channel ``assessment``, category ``supervision``) through clue collection, for
    a clock that ran out (supervision monitor, notification SLA) or a spot check that found a problem."""
    incoming = Incoming(
        kind="feedback",
        channel="assessment",
        category="supervision",
        severity=severity,
        title=title[:300],
        at=at,
        summary=summary[:500],
        site_id=site_id,
        parent_clue_id=parent_clue_id,
        ref=ref,
        extra=extra or {},
    )
    return collect(session, incoming, actor=actor).clue.id
