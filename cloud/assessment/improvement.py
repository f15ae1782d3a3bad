"""Continuous improvement (持续改进, §8.3 feedback loop): what each analysis rule and each edge rule produced.

For a period: per analysis rule (``clue.analysed`` ``rule_id``) and per edge rule (``alert.raised``
``rule_id``): clues produced, where they went (disposal / final clue state), confirmed violations (a task
submitted with a confirming conclusion or a case registered for the clue, at any time after the start), and
flags for supervisors: a poor confirmation rate, and edge thresholds that fire too often per site and day.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from cloud import journal
from cloud.assessment.config import ImprovementSpec, packaged_indicator_rules


@dataclass
class RuleStats:
    kind: str  # analysis | edge
    rule_id: str
    clues: int = 0
    alerts: int = 0
    disposals: dict[str, int] = field(default_factory=dict)
    confirmed: int = 0
    confirmation_rate: float | None = None
    max_alerts_per_site_day: int = 0
    flags: list[str] = field(default_factory=list)


def _events(session: Session, actions: list[str], start: dt.datetime, end: dt.datetime | None) -> list[Any]:
    query = select(journal.JournalEvent).where(
        col(journal.JournalEvent.action).in_(actions), col(journal.JournalEvent.ts) >= start
    )
    if end is not None:
        query = query.where(col(journal.JournalEvent.ts) < end)
    return list(session.exec(query.order_by(col(journal.JournalEvent.id))).all())


def confirmed_clues(session: Session, spec: ImprovementSpec, since: dt.datetime) -> set[int]:
    task_clue: dict[str, int] = {}
    for ev in _events(session, ["task.created"], dt.datetime(1970, 1, 1, tzinfo=dt.UTC), None):
        if (ev.payload or {}).get("clue_id"):
            task_clue[ev.target_id] = int(ev.payload["clue_id"])
    out: set[int] = set()
    for ev in _events(session, ["task.transition", *spec.confirm_actions], since, None):
        p = ev.payload or {}
        if ev.action == "task.transition":
            if p.get("to") != "submitted" or p.get("conclusion") not in spec.confirm_task_conclusions:
                continue
        clue_id = p.get("clue_id") or task_clue.get(
            str(p.get("task_id") or (ev.target_id if ev.target_type == "task" else ""))
        )
        if clue_id:
            out.add(int(clue_id))
    return out


def report(
    session: Session, start: dt.datetime, end: dt.datetime, spec: ImprovementSpec | None = None
) -> list[RuleStats]:
    spec = spec or packaged_indicator_rules().improvement
    confirmed = confirmed_clues(session, spec, start)
    disposal_of: dict[int, str] = {}
    by_rule: dict[str, set[int]] = defaultdict(set)
    for ev in _events(session, ["clue.analysed", "clue.decision_overridden"], start, end):
        p = ev.payload or {}
        clue_id = int(ev.target_id)
        disposal_of[clue_id] = str(p.get("disposal") or "unknown")
        if ev.action == "clue.analysed":
            by_rule[str(p.get("rule_id") or "(default)")].add(clue_id)
    stats: list[RuleStats] = []
    for rule_id, clue_ids in sorted(by_rule.items()):
        stats.append(
            _finish(RuleStats("analysis", rule_id, clues=len(clue_ids)), clue_ids, disposal_of, confirmed, spec)
        )

    edge_clues: dict[str, set[int]] = defaultdict(set)
    edge_alerts: Counter[str] = Counter()
    per_site_day: Counter[tuple[str, str, str]] = Counter()
    for ev in _events(session, ["alert.raised"], start, end):
        p = ev.payload or {}
        rule = str(p.get("rule_id") or "?")
        edge_alerts[rule] += 1
        if p.get("clue_id"):
            edge_clues[rule].add(int(p["clue_id"]))
        day = ev.ts.astimezone(dt.timezone(dt.timedelta(hours=8))).date().isoformat()
        per_site_day[(rule, str(p.get("site_id")), day)] += 1
    for rule_id in sorted(edge_alerts):
        row = RuleStats("edge", rule_id, clues=len(edge_clues[rule_id]), alerts=edge_alerts[rule_id])
        row.max_alerts_per_site_day = max(n for (r, _, _), n in per_site_day.items() if r == rule_id)
        if row.max_alerts_per_site_day > spec.max_alerts_per_site_day:
            row.flags.append(
                f"阈值触发过于频繁：单个场所单日最多 {row.max_alerts_per_site_day} 次"
                f"（上限 {spec.max_alerts_per_site_day:g}），建议复核阈值或持续时间"
            )
        stats.append(_finish(row, edge_clues[rule_id], disposal_of, confirmed, spec))
    return stats


def _finish(
    row: RuleStats, clue_ids: set[int], disposal_of: dict[int, str], confirmed: set[int], spec: ImprovementSpec
) -> RuleStats:
    row.disposals = dict(Counter(disposal_of.get(c, "unanalysed") for c in clue_ids))
    row.confirmed = len(clue_ids & confirmed)
    row.confirmation_rate = round(row.confirmed / len(clue_ids), 4) if clue_ids else None
    if (
        len(clue_ids) >= spec.min_clues
        and row.confirmation_rate is not None
        and row.confirmation_rate < spec.min_confirmation_rate
    ):
        row.flags.append(
            f"确认率偏低：{len(clue_ids)} 条线索仅 {row.confirmed} 条确认违法（{row.confirmation_rate:.0%}，"
            f"低于 {spec.min_confirmation_rate:.0%}），建议复核规则"
        )
    return row
