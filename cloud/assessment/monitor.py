"""Automatic supervision (自动监控): every clock of the workflow, warnings before and supervision clues after.

The monitor follows the journal (cursor ``supervision``): start events open a :class:`SupervisionClock`,
extension events move its due time, stop events close it. :meth:`SupervisionMonitor.tick` journals
``supervision.warning`` once the warning time is reached and, after the due time, creates a supervision clue
(督办线索) through clue collection (:func:`cloud.workflow.grouping.collect`, kind ``feedback``, channel
``assessment``) and journals ``supervision.clue_created``. The notification service follows those events.
Periodically it draws spot checks (:mod:`cloud.assessment.spot_checks`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from cloud import journal
from cloud.assessment.config import ClockSpec, SupervisionRules, load_supervision_rules
from cloud.assessment.models import SupervisionClock
from cloud.assessment.people import usernames
from cloud.core.db import utcnow, writer

log = logging.getLogger(__name__)
CURSOR = "supervision"
ACTOR = "system:supervision"


def _parse_due(value: Any, tz: ZoneInfo) -> dt.datetime | None:
    """A payload due value: an ISO date (end of that day, local time) or an aware ISO datetime."""
    if not value:
        return None
    text = str(value)
    try:
        if len(text) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(23, 59, 59), tzinfo=tz)
        parsed = dt.datetime.fromisoformat(text)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)
    except ValueError:
        return None


def raise_supervision_clue(session: Session, clock: SupervisionClock, now: dt.datetime) -> int | None:
    """Create the supervision clue through clue collection (the workflow's intake function)."""
    title = f"【督办】{clock.name}超期：{clock.target_type} {clock.target_id}"
    try:
        from cloud.workflow.grouping import supervision_clue
    except ImportError:  # workflow without grouping: the journal event alone is the seam
        return None
    return supervision_clue(
        session,
        title=title,
        summary=f"{clock.name}已于 {clock.due_at.isoformat()} 到期未办结",
        at=now,
        ref=f"clock:{clock.id}",
        actor=ACTOR,
        parent_clue_id=clock.clue_id,
        extra={"clock_id": clock.clock_id, "target_type": clock.target_type, "target_id": clock.target_id},
    )


class SupervisionMonitor:
    def __init__(self, engine: Engine, rules: SupervisionRules | None = None, *, poll_s: float = 0.5) -> None:
        self.engine = engine
        self.rules = rules or load_supervision_rules()
        self.tz = ZoneInfo(self.rules.timezone)
        self.poll_s = poll_s
        self.actions = sorted(
            {c.start for c in self.rules.clocks}
            | {c.stop for c in self.rules.clocks}
            | {c.extend for c in self.rules.clocks if c.extend}
            | {"task.assigned"}
        )
        self._last_spot_check: float | None = None

    # ------------------------------------------------------------------ following the journal
    def process_batch(self, limit: int = 500) -> int:
        from cloud.notify.service import get_cursor

        with Session(writer(self.engine)) as session:
            cursor = get_cursor(session, CURSOR)
            events = journal.read_since(session, cursor.last_id, limit=limit, actions=self.actions)
            if not events:
                session.rollback()
                return 0
            for event in events:
                for spec in self.rules.clocks:
                    self._apply(session, spec, event)
                cursor.last_id = event.id or cursor.last_id
            cursor.updated_at = utcnow()
            session.add(cursor)
            session.commit()
            return len(events)

    def _running(self, session: Session, spec: ClockSpec, target_id: str) -> SupervisionClock | None:
        return session.exec(
            select(SupervisionClock).where(
                SupervisionClock.clock_id == spec.id,
                SupervisionClock.target_id == target_id,
                col(SupervisionClock.stopped_at).is_(None),
            )
        ).first()

    def _apply(self, session: Session, spec: ClockSpec, event: journal.JournalEvent) -> None:
        p = event.payload or {}
        if event.target_type != spec.target_type:
            return
        if event.action == spec.start:
            if p.get("channel") in spec.skip_channels or self._running(session, spec, event.target_id):
                return
            if spec.due_after_hours is not None:
                due = event.ts + dt.timedelta(hours=spec.due_after_hours)
            else:
                parsed = _parse_due(p.get(spec.due_date_field or ""), self.tz)
                if parsed is None:
                    return
                due = parsed
            clue_id = p.get("clue_id") or (int(event.target_id) if spec.target_type == "clue" else None)
            session.add(
                SupervisionClock(
                    clock_id=spec.id,
                    name=spec.name,
                    target_type=spec.target_type,
                    target_id=event.target_id,
                    started_at=event.ts,
                    due_at=due,
                    warn_at=due - dt.timedelta(hours=spec.warn_before_hours),
                    clue_id=int(clue_id) if clue_id else None,
                    department_id=p.get("department_id"),
                    people=usernames(session, p.get(spec.people_field)) if spec.people_field else [],
                )
            )
            session.flush()
        elif spec.extend and event.action == spec.extend:
            if any(str(p.get(k)) != v for k, v in spec.extend_match.items()):
                return
            clock = self._running(session, spec, event.target_id)
            new_due = _parse_due(p.get(spec.extend_date_field or ""), self.tz)
            if clock is not None and new_due is not None:
                clock.due_at = new_due
                clock.warn_at = new_due - dt.timedelta(hours=spec.warn_before_hours)
                clock.warned_at = None
                session.add(clock)
        elif event.action == spec.stop and str(p.get("to")) in spec.stop_to:
            clock = self._running(session, spec, event.target_id)
            if clock is not None:
                clock.stopped_at = event.ts
                session.add(clock)
        if event.action == "task.assigned" and spec.people_field and spec.target_type == "task":
            clock = self._running(session, spec, event.target_id)
            if clock is not None:  # reassigned: the new people answer for the clock
                clock.people = usernames(session, p.get("assignees"))
                session.add(clock)

    # ------------------------------------------------------------------ time passing
    def tick(self, now: dt.datetime | None = None) -> dict[str, int]:
        now = now or utcnow()
        counts = {"warnings": 0, "clues": 0}
        with Session(writer(self.engine)) as session:
            running = session.exec(
                select(SupervisionClock).where(
                    col(SupervisionClock.stopped_at).is_(None),
                    col(SupervisionClock.breached_at).is_(None),
                    col(SupervisionClock.warn_at) <= now,
                )
            ).all()
            for clock in running:
                payload = {
                    "clock_id": clock.clock_id,
                    "clock_name": clock.name,
                    "target_type": clock.target_type,
                    "target_id": clock.target_id,
                    "clue_id": clock.clue_id,
                    "department_id": clock.department_id,
                    "due_at": clock.due_at,
                    "assignees": clock.people,
                }
                if clock.warned_at is None and now < clock.due_at:
                    clock.warned_at = now
                    left_h = (clock.due_at - now).total_seconds() / 3600
                    journal.append(
                        session,
                        actor=ACTOR,
                        action="supervision.warning",
                        target_type=clock.target_type,
                        target_id=clock.target_id,
                        payload={
                            **payload,
                            "title": f"【期限预警】{clock.name}将于 {left_h:.1f} 小时后到期",
                            "message": f"{clock.target_type} {clock.target_id} 须于 "
                            f"{clock.due_at.astimezone(self.tz):%Y-%m-%d %H:%M} 前办结",
                        },
                    )
                    counts["warnings"] += 1
                elif now >= clock.due_at:
                    clock.breached_at = now
                    clue_id = raise_supervision_clue(session, clock, now)
                    clock.supervision_clue_id = clue_id
                    journal.append(
                        session,
                        actor=ACTOR,
                        action="supervision.clue_created",
                        target_type=clock.target_type,
                        target_id=clock.target_id,
                        payload={
                            **payload,
                            "supervision_clue_id": clue_id,
                            "title": f"【督办】{clock.name}已超期",
                            "message": f"{clock.target_type} {clock.target_id} 已超过期限，已生成督办线索 {clue_id}",
                            "severity": "major",
                        },
                    )
                    counts["clues"] += 1
                session.add(clock)
            session.commit()
        return counts

    def spot_check_due(self, mono: float) -> bool:
        every = self.rules.spot_check.every_hours * 3600
        return self._last_spot_check is None or mono - self._last_spot_check >= every

    def draw_spot_checks_once(self, now: dt.datetime | None = None) -> bool:
        """Draw the spot checks of the period ``now`` is in, unless done already (by any instance)."""
        from cloud.assessment.spot_checks import draw
        from cloud.core.leases import period_key, run_in_period

        spec = self.rules.spot_check
        end = now or utcnow()

        def work(session: Session) -> str:
            return f"{len(draw(session, spec, end - dt.timedelta(hours=spec.every_hours), end))} checks"

        return run_in_period(self.engine, "spot_check", period_key(end, spec.every_hours * 3600), work)

    async def run(self) -> None:
        failing = False
        loop = asyncio.get_running_loop()
        self._last_spot_check = loop.time()  # the first draw one period after start
        while True:
            try:
                handled = await asyncio.to_thread(self.process_batch)
                await asyncio.to_thread(self.tick)
                if self.spot_check_due(loop.time()):
                    self._last_spot_check = loop.time()
                    await asyncio.to_thread(self.draw_spot_checks_once)
                failing = False
            except Exception:
                if not failing:
                    log.exception("supervision monitor failed (logged once until it recovers)")
                failing, handled = True, 0
            if not handled:
                await asyncio.sleep(self.poll_s)
