"""The indicator engine: indicators (``cloud/rules/indicators.toml``) evaluated over the journal of a period,
per person and per department, into scorecards with the seven dimensions of the standard (§8.6)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from cloud import journal
from cloud.assessment.config import DIMENSIONS, Indicator, IndicatorRules, packaged_indicator_rules
from cloud.assessment.people import departments, display_names, usernames
from cloud.core.users import Role, User


@dataclass
class Acc:
    count: float = 0.0
    total: float = 0.0
    n: int = 0
    num: float = 0.0
    den: float = 0.0

    def add(self, other: Acc) -> None:
        self.count += other.count
        self.total += other.total
        self.n += other.n
        self.num += other.num
        self.den += other.den

    def empty(self) -> bool:
        return not (self.count or self.total or self.n or self.num or self.den)


@dataclass
class IndicatorResult:
    id: str
    name: str
    dimension: str
    value: float | None
    score: float
    weight: float
    target: float


@dataclass
class Scorecard:
    scope: str  # person | department
    key: str
    department: str | None
    members: int
    start: dt.datetime
    end: dt.datetime
    indicators: list[IndicatorResult] = field(default_factory=list)
    dimensions: dict[str, float] = field(default_factory=dict)
    total: float = 0.0
    #: False when nothing in the period counts for this person/department: all points 0, shown as 无数据 (a person
    #: with no work must not collect the "nothing overdue" points of the lower-is-better indicators)
    scored: bool = True
    name: str = ""  # display name: the person's real name, the department's name
    department_name: str | None = None


def _matches(where: dict[str, Any], payload: dict[str, Any]) -> bool:
    for key, expected in where.items():
        value = payload.get(key)
        if isinstance(expected, list):
            if value not in expected:
                return False
        elif isinstance(expected, bool):
            if bool(value) != expected:
                return False
        elif value != expected:
            return False
    return True


def _credited(session: Session, credit: str, event: journal.JournalEvent, cache: dict[Any, list[str]]) -> list[str]:
    """Who ``event`` counts for; ``a+b`` credits each person named by either source once (``actor+payload.assignees``:
    every officer of a task, and its actor in events written before they carried the assignees)."""
    out: list[str] = []
    for part in credit.split("+"):
        if part == "actor":
            found = [event.actor]
        else:
            name = part.split(".", 1)[1]
            raw = (event.payload or {}).get(name)
            key = (name, str(raw))
            if key not in cache:
                cache[key] = usernames(session, raw)
            found = cache[key]
        out += [u for u in found if u not in out]
    return out


def score(ind: Indicator, value: float | None) -> float:
    if value is None:
        return 0.0
    if ind.kind == "manual":
        return round(max(0.0, min(value, ind.weight)), 2)
    if ind.lower_is_better:
        assert ind.zero_at is not None
        if value <= ind.target:
            return round(ind.weight, 2)
        if value >= ind.zero_at:
            return 0.0
        return round(ind.weight * (ind.zero_at - value) / (ind.zero_at - ind.target), 2)
    return round(ind.weight * min(value / ind.target, 1.0), 2)


def _value(ind: Indicator, acc: Acc | None) -> float | None:
    acc = acc or Acc()
    if ind.kind == "count":
        return acc.count
    if ind.kind in ("sum", "manual"):
        return acc.total
    if ind.kind == "mean":
        return acc.total / acc.n if acc.n else None
    if not acc.den:
        return None
    rate = acc.num / acc.den
    return max(0.0, 1.0 - rate) if ind.complement else rate


def evaluate(
    session: Session, start: dt.datetime, end: dt.datetime, rules: IndicatorRules | None = None
) -> tuple[list[Scorecard], list[Scorecard]]:
    """Person and department scorecards for ``[start, end)``."""
    rules = rules or packaged_indicator_rules()
    actions = {i.action for i in rules.indicators} | {
        i.numerator_action for i in rules.indicators if i.numerator_action
    }
    events = session.exec(
        select(journal.JournalEvent)
        .where(
            col(journal.JournalEvent.action).in_(sorted(a for a in actions if a)),
            col(journal.JournalEvent.ts) >= start,
            col(journal.JournalEvent.ts) < end,
        )
        .order_by(col(journal.JournalEvent.id))
    ).all()
    cache: dict[Any, list[str]] = {}
    person_acc: dict[str, dict[str, Acc]] = defaultdict(lambda: defaultdict(Acc))
    dept_manual: dict[str, float] = defaultdict(float)
    for ev in events:
        payload = ev.payload or {}
        for ind in rules.indicators:
            if ev.action == ind.action and ev.actor not in ind.actor_not and _matches(ind.where, payload):
                if ind.kind == "manual" and payload.get("department") and not payload.get("user"):
                    dept_manual[str(payload["department"])] += float(payload.get(ind.field or "points") or 0)
                    continue
                for person in _credited(session, ind.credit, ev, cache):
                    acc = person_acc[person][ind.id]
                    if ind.kind == "count":
                        acc.count += 1
                    elif ind.kind == "ratio":
                        acc.den += 1
                    else:
                        acc.total += float(payload.get(ind.field or "") or 0)
                        acc.n += 1
            if (
                ind.kind == "ratio"
                and ev.action == ind.numerator_action
                and _matches(ind.numerator_where, payload)
                and ev.actor not in ind.actor_not
            ):
                for person in _credited(session, ind.numerator_credit or ind.credit, ev, cache):
                    person_acc[person][ind.id].num += 1

    dept_of = departments(session)
    staff = session.exec(
        select(User.username).where(col(User.role).in_([Role.INSPECTOR, Role.SUPERVISOR]), User.is_active)
    ).all()
    people = sorted({p for p in [*staff, *person_acc] if not p.startswith(("system", "agent:")) and p != "admin"})
    persons: list[Scorecard] = []
    members: dict[str, list[str]] = defaultdict(list)
    for person in people:
        dept = dept_of.get(person)
        if dept:
            members[dept].append(person)
        persons.append(_card(rules, "person", person, dept, 1, start, end, person_acc.get(person, {})))
    depts: list[Scorecard] = []
    for dept in sorted(set(members) | set(dept_manual)):
        pooled: dict[str, Acc] = defaultdict(Acc)
        for person in members.get(dept, []):
            for ind_id, acc in person_acc.get(person, {}).items():
                pooled[ind_id].add(acc)
        for ind in rules.indicators:
            if ind.kind == "manual":
                pooled[ind.id] = Acc(total=dept_manual.get(dept, 0.0))
        depts.append(_card(rules, "department", dept, dept, max(1, len(members.get(dept, []))), start, end, pooled))
    names, dept_names = display_names(session)
    for card in persons:
        card.name = names.get(card.key, card.key)
        card.department_name = dept_names.get(card.department or "", card.department)
    for card in depts:
        card.name = dept_names.get(card.key, card.key)
        card.department_name = card.name
    return persons, depts


def _card(
    rules: IndicatorRules,
    scope: str,
    key: str,
    dept: str | None,
    n_members: int,
    start: dt.datetime,
    end: dt.datetime,
    accs: dict[str, Acc],
) -> Scorecard:
    card = Scorecard(scope, key, dept, n_members, start, end, dimensions=dict.fromkeys(DIMENSIONS, 0.0))
    card.scored = any(not acc.empty() for acc in accs.values())
    for ind in rules.indicators:
        scaled = ind
        if scope == "department" and ind.kind in ("count", "sum") and not ind.lower_is_better and n_members > 1:
            scaled = ind.model_copy(update={"target": ind.target * n_members})
        value = _value(ind, accs.get(ind.id))
        points = score(scaled, value) if card.scored else 0.0
        card.indicators.append(
            IndicatorResult(ind.id, ind.name, ind.dimension, value, points, ind.weight, scaled.target)
        )
        card.dimensions[ind.dimension] = round(card.dimensions[ind.dimension] + points, 2)
    card.total = round(sum(card.dimensions.values()), 2)
    return card


def to_csv(cards: list[Scorecard], rules: IndicatorRules | None = None) -> str:
    """Scorecards as CSV (UTF-8 with BOM, opens in Excel): one row per person/department."""
    rules = rules or packaged_indicator_rules()
    buf = io.StringIO()
    writer = csv.writer(buf)
    header = ["范围", "对象", "部门", "开始", "结束"]
    for ind in rules.indicators:
        header += [f"{ind.name}", f"{ind.name}得分"]
    header += [rules.dimensions[d] for d in DIMENSIONS] + ["总分"]  # type: ignore[index]
    writer.writerow(header)
    for card in cards:
        row: list[Any] = [
            "个人" if card.scope == "person" else "部门",
            card.name or card.key,
            card.department_name or card.department or "",
            card.start.isoformat(),
            card.end.isoformat(),
        ]
        for result in card.indicators:
            row += ["" if result.value is None else round(result.value, 4), result.score]
        row += [card.dimensions[d] for d in DIMENSIONS] + [card.total if card.scored else "无数据"]
        writer.writerow(row)
    return "\ufeff" + buf.getvalue()
