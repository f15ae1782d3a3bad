"""One engine for every rule pack: evaluates rule instances and drives the alert lifecycle.

Lifecycle per (device, rule): *pending* (condition holds, waiting for ``min_duration_s``) → **raise** →
**update** every ``update_interval_s`` while the condition holds → *clearing* (clear condition holds, waiting for
``clear_duration_s``) → **clear**. At most one open alert per (device, rule). The state — including the pending
and clearing timers — lives in SQLite next to the outbox and every lifecycle event is written to the outbox in
the same transaction as the state change, so a restart (even ``kill -9``) neither duplicates nor forgets an alert.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
import sqlite3
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from edge.drivers.base import Sample
from edge.outbox import Outbox
from edge.rules.models import (
    AllOfRule,
    CodeRule,
    FaultRule,
    FlagRule,
    RateRule,
    RulePack,
    StaleRule,
    ThresholdRule,
)
from protocols.messages import AlertEvent, AlertPhase, Quality, Severity, encode
from protocols.topics import Channel

log = logging.getLogger(__name__)

#: Rule ids of conditions decided outside rule packs (:meth:`RuleEngine.set_condition`).
SYSTEM_PREFIXES = ("edge.", "video.")

AnyRule = ThresholdRule | RateRule | StaleRule | FaultRule | FlagRule | CodeRule | AllOfRule

STATE_SCHEMA = """
CREATE TABLE IF NOT EXISTS alert_state (
    device_id TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    pending_since REAL,
    clear_since REAL,
    alert_id TEXT,
    started_at REAL,
    last_event REAL,
    PRIMARY KEY (device_id, rule_id)
);
"""


@dataclass
class RuleInstance:
    """One rule of one pack applied to one device."""

    device_id: str
    label: str
    category: str
    rule_id: str  # on the wire: <pack>.<rule>
    rule: AnyRule | None  # None: a system condition set by :meth:`RuleEngine.set_condition`
    units: dict[str, str] = field(default_factory=dict)
    severity: Severity = Severity.MAJOR
    title: str = ""
    message: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.device_id, self.rule_id)

    @property
    def sensor_id(self) -> str | None:
        if self.rule is not None and not isinstance(self.rule, AllOfRule):
            return f"{self.device_id}.{self.rule.input}"
        return None


@dataclass
class _State:
    pending_since: float | None = None
    clear_since: float | None = None
    alert_id: str | None = None
    started_at: float | None = None
    last_event: float | None = None


@dataclass(frozen=True)
class Verdict:
    raise_: bool | None  # None: unknown (no data)
    clear: bool | None
    value: float | None = None
    limit: float | None = None
    unit: str | None = None  # of the reading: a message template writes {value}{unit}
    per_minute: bool = False  # value and limit are a rate: the event's unit is ``<unit>/min``

    @property
    def event_unit(self) -> str | None:
        """The unit of the event's value and limit (a rate of change is per minute, not the reading's unit)."""
        return f"{self.unit}/min" if self.per_minute and self.unit else self.unit


class _Format(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def build_instances(
    pack: RulePack,
    profile: str | None,
    device_id: str,
    label: str,
    units: dict[str, str],
    overrides: dict[str, dict[str, Any]],
) -> list[RuleInstance]:
    out: list[RuleInstance] = []
    for rule in pack.rules_for(profile):
        if not all(i in units for i in rule.inputs()):
            continue
        if rule.id in overrides:
            rule = type(rule).model_validate({**rule.model_dump(), **overrides[rule.id]})
        out.append(
            RuleInstance(
                device_id=device_id,
                label=label or device_id,
                category=pack.category,
                rule_id=f"{pack.id}.{rule.id}",
                rule=rule,
                units=units,
                severity=rule.severity,
                title=rule.title,
                message=rule.message,
            )
        )
    return out


def _rate_score(rate: float, direction: str) -> float:
    return rate if direction == "rise" else -rate if direction == "fall" else abs(rate)


def _fresh_rate(hist: list[tuple[float, float]], now: float, rule: RateRule) -> float | None:
    """The steepest change per minute (in the rule's direction) from an earlier reading to the newest one, using
    only the newest run of *consecutive, fresh* readings: no gap wider than ``max_gap_s`` (default 2.5 × the
    observed interval) inside the run and a newest reading no older than that. A slope is never taken across a
    gap (a probe that went silent and came back) nor from stale readings (a silent probe: unknown, not a rate);
    the steepest pair spanning ≥ ``min(10 s, window/2)`` catches a step change that a first-to-last slope over
    the whole window would dilute."""
    if len(hist) < 2:
        return None
    intervals = sorted(b[0] - a[0] for a, b in itertools.pairwise(hist[-11:]))
    max_gap = rule.max_gap_s or 2.5 * max(intervals[len(intervals) // 2], 0.1) + 1.0
    t1, v1 = hist[-1]
    if now - t1 > max_gap:
        return None
    start = len(hist) - 1
    while start > 0 and hist[start][0] - hist[start - 1][0] <= max_gap:
        start -= 1
    min_span = min(10.0, rule.window_s / 2)
    best: float | None = None
    for t0, v0 in hist[start:-1]:
        if t1 - t0 < min_span:
            break
        rate = (v1 - v0) / (t1 - t0) * 60
        if best is None or _rate_score(rate, rule.direction) > _rate_score(best, rule.direction):
            best = rate
    return best


class RuleEngine:
    def __init__(
        self,
        outbox: Outbox,
        site_id: str,
        agent_id: str,
        instances: list[RuleInstance],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.outbox = outbox
        self.site_id = site_id
        self.agent_id = agent_id
        self.clock = clock
        self.started = clock()
        self.instances: dict[tuple[str, str], RuleInstance] = {}
        self.by_device: dict[str, list[RuleInstance]] = defaultdict(list)
        self.latest: dict[tuple[str, str], tuple[float | None, Quality, float]] = {}
        self.history: dict[tuple[str, str], deque[tuple[float, float]]] = defaultdict(lambda: deque(maxlen=600))
        self.manual: dict[tuple[str, str], tuple[bool, float | None]] = {}
        self.states: dict[tuple[str, str], _State] = {}
        self.events_written = 0
        outbox.db.executescript(STATE_SCHEMA)
        for inst in instances:
            self.add(inst)
        self._restore()

    def add(self, inst: RuleInstance) -> None:
        self.instances[inst.key] = inst
        self.by_device[inst.device_id].append(inst)

    def _restore(self) -> None:
        rows = self.outbox.db.execute(
            "SELECT device_id, rule_id, pending_since, clear_since, alert_id, started_at, last_event FROM alert_state"
        ).fetchall()
        for device_id, rule_id, pending, clearing, alert_id, started, last in rows:
            key = (device_id, rule_id)
            state = _State(pending, clearing, alert_id, started, last)
            if key in self.instances:
                self.states[key] = state
            elif rule_id.startswith(SYSTEM_PREFIXES):
                self.states[key] = state  # re-registered by set_condition later
            elif alert_id is not None:
                # the rule was removed from the configuration while its alert was open: close it cleanly
                ghost = RuleInstance(device_id, device_id, "edge", rule_id, None, title=rule_id)
                self.states[key] = state
                self._emit(ghost, AlertPhase.CLEAR, Verdict(None, True), self.clock(), note="（规则已从配置中移除）")
            else:
                self.outbox.write_state(functools.partial(_delete, key=key))
        if any(s.alert_id for s in self.states.values()):
            log.info("restored %d open alerts", sum(1 for s in self.states.values() if s.alert_id))

    # -- inputs -------------------------------------------------------------------------------------
    def observe(self, device_id: str, samples: list[Sample]) -> None:
        now = self.clock()
        for s in samples:
            key = (device_id, s.point)
            self.latest[key] = (s.value, s.quality, now)
            if s.value is not None and s.quality is Quality.GOOD:
                self.history[key].append((now, s.value))
        for inst in self.by_device.get(device_id, ()):
            self._step(inst, now)

    def tick(self) -> None:
        now = self.clock()
        for inst in list(self.instances.values()):
            self._step(inst, now)

    def set_condition(
        self,
        device_id: str,
        rule_id: str,
        active: bool,
        *,
        value: float | None = None,
        title: str = "",
        message: str = "",
        severity: Severity = Severity.MAJOR,
        category: str = "edge",
    ) -> None:
        """A condition decided outside rule packs (outbox overflow, video offline …), same lifecycle."""
        key = (device_id, rule_id)
        if key not in self.instances:
            self.add(RuleInstance(device_id, device_id, category, rule_id, None, severity=severity, title=title))
        inst = self.instances[key]
        inst.message = message or inst.message
        self.manual[key] = (active, value)
        self._step(inst, self.clock())

    def open_alerts(self) -> dict[tuple[str, str], str]:
        return {k: s.alert_id for k, s in self.states.items() if s.alert_id}

    # -- evaluation ---------------------------------------------------------------------------------
    def _value(self, device_id: str, point: str) -> float | None:
        item = self.latest.get((device_id, point))
        if item is None or item[1] is not Quality.GOOD:
            return None
        return item[0]

    def evaluate(self, inst: RuleInstance, now: float) -> Verdict:
        rule = inst.rule
        if rule is None:
            active, value = self.manual.get(inst.key, (False, None))
            return Verdict(active, not active, value)
        unit = inst.units.get(getattr(rule, "input", ""), None)
        if isinstance(rule, ThresholdRule):
            v = self._value(inst.device_id, rule.input)
            if v is None:
                return Verdict(None, None)
            if rule.op == "above":
                hit = v >= rule.limit if rule.inclusive else v > rule.limit
                return Verdict(hit, not hit and v <= rule.limit - rule.hysteresis, v, rule.limit, unit)
            hit = v <= rule.limit if rule.inclusive else v < rule.limit
            return Verdict(hit, not hit and v >= rule.limit + rule.hysteresis, v, rule.limit, unit)
        if isinstance(rule, RateRule):
            hist = self.history.get((inst.device_id, rule.input))
            if not hist:
                return Verdict(None, None)
            while len(hist) > 2 and now - hist[0][0] > rule.window_s:
                hist.popleft()
            rate = _fresh_rate(list(hist), now, rule)
            if rate is None:
                return Verdict(None, None)
            score = _rate_score(rate, rule.direction)
            return Verdict(
                score > rule.max_per_min, score <= rule.max_per_min, round(rate, 3), rule.max_per_min, unit, True
            )
        if isinstance(rule, StaleRule):
            item = self.latest.get((inst.device_id, rule.input))
            seen = item[2] if item else self.started
            age = now - seen
            return Verdict(age > rule.max_age_s, age <= rule.max_age_s, round(age, 1), rule.max_age_s, "s")
        if isinstance(rule, FaultRule):
            item = self.latest.get((inst.device_id, rule.input))
            if item is None:
                return Verdict(None, None)
            value, quality, _ts = item
            bad = (
                value is None or quality is Quality.BAD or not math.isfinite(value) or not rule.min <= value <= rule.max
            )
            return Verdict(bad, not bad, value if value is not None and math.isfinite(value) else None, None, unit)
        if isinstance(rule, FlagRule):
            v = self._value(inst.device_id, rule.input)
            if v is None:
                return Verdict(None, None)
            on = int(v) == rule.active
            return Verdict(on, not on, v)
        if isinstance(rule, CodeRule):
            v = self._value(inst.device_id, rule.input)
            if v is None:
                return Verdict(None, None)
            hit = int(v) in rule.values
            return Verdict(hit, not hit, v)
        values = [self._value(inst.device_id, c.input) for c in rule.conditions]
        if any(v is None for v in values):
            return Verdict(None, None)
        holds = all(c.holds(v) for c, v in zip(rule.conditions, values, strict=True) if v is not None)
        return Verdict(holds, not holds)

    def _step(self, inst: RuleInstance, now: float) -> None:
        verdict = self.evaluate(inst, now)
        state = self.states.setdefault(inst.key, _State())
        min_duration = inst.rule.min_duration_s if inst.rule else 0.0
        clear_duration = inst.rule.clear_duration_s if inst.rule else 0.0
        update_interval = inst.rule.update_interval_s if inst.rule else 3600.0
        if state.alert_id is None:
            if verdict.raise_:
                if state.pending_since is None:
                    state.pending_since = now
                    if min_duration > 0:
                        self._save(inst.key, state)
                if now - state.pending_since >= min_duration:
                    self._emit(inst, AlertPhase.RAISE, verdict, now)
            elif state.pending_since is not None and verdict.raise_ is False:
                state.pending_since = None
                self._save(inst.key, state)
            return
        if verdict.clear:
            if state.clear_since is None:
                state.clear_since = now
                if clear_duration > 0:
                    self._save(inst.key, state)
            if now - state.clear_since >= clear_duration:
                self._emit(inst, AlertPhase.CLEAR, verdict, now)
            return
        if state.clear_since is not None and verdict.clear is False:
            state.clear_since = None
            self._save(inst.key, state)
        if verdict.raise_ and state.last_event is not None and now - state.last_event >= update_interval:
            self._emit(inst, AlertPhase.UPDATE, verdict, now)

    # -- persistence --------------------------------------------------------------------------------
    def _save(self, key: tuple[str, str], state: _State) -> None:
        self.outbox.write_state(lambda db: _upsert(db, key, state))

    def _message(self, inst: RuleInstance, verdict: Verdict, now: float, state: _State) -> str:
        def fmt(v: float | None) -> str:
            return "—" if v is None else f"{v:g}"

        duration = (
            verdict.value
            if isinstance(inst.rule, StaleRule)
            else (now - state.pending_since if state.pending_since else (inst.rule.min_duration_s if inst.rule else 0))
        )
        text = (inst.message or inst.title or inst.rule_id).format_map(
            _Format(
                label=inst.label,
                value=fmt(verdict.value),
                limit=fmt(verdict.limit),
                unit=verdict.unit or "",
                duration=f"{(duration or 0):.0f}",
            )
        )
        return text[:500]

    def _emit(self, inst: RuleInstance, phase: AlertPhase, verdict: Verdict, now: float, note: str = "") -> None:
        state = self.states[inst.key]
        if phase is AlertPhase.RAISE:
            state.alert_id = uuid.uuid4().hex
            state.started_at = now
        assert state.alert_id is not None and state.started_at is not None
        message = self._message(inst, verdict, now, state)
        if phase is AlertPhase.CLEAR:
            message = f"已恢复：{inst.title or inst.rule_id}{note}（{inst.label}）"
        ts = datetime.fromtimestamp(now, UTC)
        alert_id, started = state.alert_id, datetime.fromtimestamp(state.started_at, UTC)

        def build(seq: int) -> bytes:
            return encode(
                AlertEvent(
                    site_id=self.site_id,
                    agent_id=self.agent_id,
                    seq=seq,
                    alert_id=alert_id,
                    device_id=inst.device_id,
                    sensor_id=inst.sensor_id,
                    rule_id=inst.rule_id,
                    phase=phase,
                    severity=inst.severity,
                    category=inst.category,
                    value=verdict.value if verdict.value is None or math.isfinite(verdict.value) else None,
                    limit=verdict.limit,
                    unit=verdict.event_unit,
                    message=message,
                    ts=ts,
                    started_at=started,
                )
            )

        if phase is AlertPhase.CLEAR:
            new_state = _State()
        else:
            new_state = _State(None, None, alert_id, state.started_at, now)
        key = inst.key
        self.outbox.append(
            Channel.EVENTS.value,
            build,
            is_alert=True,
            extra=(lambda db: _delete(db, key))
            if phase is AlertPhase.CLEAR
            else (lambda db: _upsert(db, key, new_state)),
        )
        self.states[key] = new_state
        self.events_written += 1
        log.info("alert %s %s/%s: %s", phase.value, inst.device_id, inst.rule_id, message)


def _upsert(db: sqlite3.Connection, key: tuple[str, str], s: _State) -> None:
    db.execute(
        "INSERT INTO alert_state (device_id, rule_id, pending_since, clear_since, alert_id, started_at, last_event) "
        "VALUES (?,?,?,?,?,?,?) ON CONFLICT(device_id, rule_id) DO UPDATE SET pending_since=excluded.pending_since, "
        "clear_since=excluded.clear_since, alert_id=excluded.alert_id, started_at=excluded.started_at, "
        "last_event=excluded.last_event",
        (*key, s.pending_since, s.clear_since, s.alert_id, s.started_at, s.last_event),
    )


def _delete(db: sqlite3.Connection, key: tuple[str, str]) -> None:
    db.execute("DELETE FROM alert_state WHERE device_id = ? AND rule_id = ?", key)
