"""Periodic random spot checks (定期抽查) of closed clues and closed inspection tasks, and their review.

A draw picks ``max(minimum, ratio × population)`` items of each kind closed in the period with a recorded seed
(``random.Random(seed)``), stores them and journals ``supervision.spot_check`` (so the draw is verifiable and
frozen). A reviewer records ``ok`` or ``problem``; a problem journals ``supervision.spot_check_reviewed`` with the
responsible people (debited in assessment) and creates a supervision clue.
"""

from __future__ import annotations

import datetime as dt
import math
import random
import secrets
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from cloud import journal
from cloud.assessment.config import SpotCheckSpec
from cloud.assessment.models import SpotCheck
from cloud.core.db import utcnow, writer

ACTOR = "system:supervision"


def _closed_in(session: Session, start: dt.datetime, end: dt.datetime) -> dict[str, list[tuple[str, list[str]]]]:
    """Closed clues and tasks in [start, end) with the people who closed/submitted them (from the journal)."""
    found: dict[str, dict[str, list[str]]] = {"clue": {}, "task": {}}
    rows = session.exec(
        select(journal.JournalEvent).where(
            col(journal.JournalEvent.action).in_(["clue.transition", "task.transition"]),
            col(journal.JournalEvent.ts) >= start,
            col(journal.JournalEvent.ts) < end,
        )
    ).all()
    submitted: dict[str, list[str]] = {}
    for ev in rows:
        kind = ev.target_type
        to = (ev.payload or {}).get("to")
        if kind == "task" and to == "submitted":
            submitted.setdefault(ev.target_id, []).append(ev.actor)
        if to == "closed" and kind in found:
            people = submitted.get(ev.target_id, []) if kind == "task" else [ev.actor]
            found[kind][ev.target_id] = [p for p in dict.fromkeys(people) if not p.startswith("system")]
    return {k: sorted(v.items(), key=lambda kv: int(kv[0]) if kv[0].isdigit() else 0) for k, v in found.items()}


def draw(
    session: Session, spec: SpotCheckSpec, start: dt.datetime, end: dt.datetime, *, seed: str | None = None
) -> list[SpotCheck]:
    seed = seed or secrets.token_hex(8)
    batch = f"{start.date().isoformat()}~{end.date().isoformat()}#{seed[:6]}"
    rng = random.Random(seed)
    checks: list[SpotCheck] = []
    for kind, population in _closed_in(session, start, end).items():
        if not population:
            continue
        n = min(len(population), max(spec.minimum, math.ceil(spec.ratio * len(population))))
        for target_id, people in rng.sample(population, n):
            check = SpotCheck(batch=batch, target_type=kind, target_id=target_id, responsible=people, seed=seed)
            session.add(check)
            checks.append(check)
    session.flush()
    journal.append(
        session,
        actor=ACTOR,
        action="supervision.spot_check",
        target_type="spot_check",
        target_id=batch,
        payload={
            "seed": seed,
            "period": [start, end],
            "ratio": spec.ratio,
            "items": [{"id": c.id, "target_type": c.target_type, "target_id": c.target_id} for c in checks],
        },
    )
    return checks


def draw_spot_checks(engine: Engine, spec: SpotCheckSpec, *, period_hours: float) -> int:
    end = utcnow()
    with Session(writer(engine)) as session:
        checks = draw(session, spec, end - dt.timedelta(hours=period_hours), end)
        session.commit()
        return len(checks)


class ReviewError(ValueError):
    pass


def review(session: Session, check_id: int, *, verdict: str, note: str, by: str) -> SpotCheck:
    check = session.get(SpotCheck, check_id)
    if check is None:
        raise ReviewError(f"抽查记录 {check_id} 不存在")
    if verdict not in ("ok", "problem"):
        raise ReviewError("verdict 须为 ok 或 problem")
    if check.verdict is not None:
        raise ReviewError("该抽查已评定，不能重复评定 (already reviewed)")
    from cloud.workflow.duties import check_spot_review

    check_spot_review(check.responsible, by)  # reviewer ≠ reviewed (duties.toml)
    if verdict == "problem" and not note.strip():
        raise ReviewError("发现问题须填写说明 (a problem needs a note)")
    check.verdict, check.note, check.reviewed_by, check.reviewed_at = verdict, note, by, utcnow()
    session.add(check)
    payload: dict[str, Any] = {
        "spot_check_id": check.id,
        "target_type": check.target_type,
        "target_id": check.target_id,
        "verdict": verdict,
        "note": note,
        "responsible": check.responsible,
    }
    if verdict == "problem":
        try:
            from cloud.workflow.grouping import Incoming, collect

            clue = collect(
                session,
                Incoming(
                    kind="feedback",
                    channel="assessment",
                    category="supervision",
                    severity="minor",
                    title=f"【抽查发现问题】{check.target_type} {check.target_id}：{note}"[:300],
                    at=utcnow(),
                    summary=note[:500],
                    parent_clue_id=int(check.target_id) if check.target_type == "clue" else None,
                    ref=f"spot_check:{check.id}",
                ),
                actor=by,
            ).clue
            payload["supervision_clue_id"] = clue.id
        except ImportError:  # pragma: no cover - workflow without grouping
            pass
    journal.append(
        session,
        actor=by,
        action="supervision.spot_check_reviewed",
        target_type=check.target_type,
        target_id=check.target_id,
        payload=payload,
    )
    return check
