"""Alert lifecycle of one camera: conditions observed per frame → raise / update / clear transitions.

Identity is (device = camera, rule); zone-specific rules carry the zone in the rule id
(``after_hours_presence.back_kitchen``). A condition must hold ``raise_after_s`` before it raises and
be absent ``clear_after_s`` before it clears (hysteresis); one open instance per rule with a stable
``alert_id``. The state of open alerts can be saved and restored so that a restart neither forgets an
open alert nor raises it twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from edge.vision.geometry import Box
from protocols.messages import AlertPhase, EvidenceRef, Severity

UPDATE_MIN_INTERVAL_S = 10.0


@dataclass(frozen=True, slots=True)
class Observation:
    """A condition that holds in the current frame."""

    rule_id: str
    severity: Severity
    category: str
    message: str
    raise_after_s: float = 0.0
    clear_after_s: float = 0.0
    clear_message: str | None = None
    value: float | None = None
    limit: float | None = None
    unit: str | None = None
    zone_id: str | None = None
    boxes: tuple[Box, ...] = ()
    box_labels: tuple[str, ...] = ()
    cooldown_s: float = 0.0
    """After this alert clears, the same rule cannot raise again for this long (one alert per incident)."""


@dataclass(frozen=True, slots=True)
class Transition:
    """One lifecycle step, ready to become a protocols ``AlertEvent`` (the agent adds site, agent, seq)."""

    phase: AlertPhase
    alert_id: str
    device_id: str
    rule_id: str
    severity: Severity
    category: str
    message: str
    ts: datetime
    started_at: datetime
    value: float | None = None
    limit: float | None = None
    unit: str | None = None
    zone_id: str | None = None
    boxes: tuple[Box, ...] = ()
    evidence: tuple[EvidenceRef, ...] = ()
    clear_after_s: float = 0.0
    clear_message: str | None = None

    def open_state(self) -> dict[str, Any]:
        """What :meth:`AlertLifecycle.restore_open` needs to reopen this alert after a restart."""
        return {
            "rule_id": self.rule_id,
            "alert_id": self.alert_id,
            "started_at": self.started_at.isoformat(),
            "severity": self.severity.value,
            "category": self.category,
            "message": self.message,
            "clear_message": self.clear_message,
            "clear_after_s": self.clear_after_s,
            "value": self.value,
            "limit": self.limit,
            "unit": self.unit,
            "zone_id": self.zone_id,
        }

    def alert_fields(self) -> dict[str, Any]:
        """Keyword arguments for ``AlertEvent`` except ``site_id``, ``agent_id`` and ``seq``."""
        return {
            "alert_id": self.alert_id,
            "device_id": self.device_id,
            "rule_id": self.rule_id,
            "phase": self.phase,
            "severity": self.severity,
            "category": self.category,
            "value": self.value,
            "limit": self.limit,
            "unit": self.unit,
            "message": self.message,
            "ts": self.ts,
            "started_at": self.started_at,
            "evidence": list(self.evidence),
        }


@dataclass(slots=True)
class _RuleState:
    pending_since: float | None = None
    last_active: float | None = None
    alert_id: str | None = None
    started_at: datetime | None = None
    last: Observation | None = None
    last_update: float = 0.0
    quiet_until: float = -1e18


@dataclass(slots=True)
class AlertLifecycle:
    device_id: str
    _rules: dict[str, _RuleState] = field(default_factory=dict)

    def open_rules(self) -> set[str]:
        return {r for r, s in self._rules.items() if s.alert_id is not None}

    def step(
        self,
        now: float,
        wall: datetime,
        observations: list[Observation],
        scope: set[str] | None = None,
    ) -> list[Transition]:
        """Advance every rule in ``scope`` (all known rules when None) by one frame.

        Rules outside ``scope`` keep their state: e.g. while the lens is covered, nothing can be said
        about people, so an open presence alert neither updates nor clears.
        """
        out: list[Transition] = []
        seen = {o.rule_id: o for o in observations}
        for rule_id, obs in seen.items():
            state = self._rules.setdefault(rule_id, _RuleState())
            state.last_active = now
            if state.alert_id is None:
                if now < state.quiet_until:
                    continue  # cooling down after the last incident of this rule
                state.pending_since = state.pending_since if state.pending_since is not None else now
                if now - state.pending_since >= obs.raise_after_s:
                    state.alert_id = uuid.uuid4().hex
                    state.started_at = wall
                    state.last, state.last_update = obs, now
                    out.append(self._transition(AlertPhase.RAISE, state, obs, wall))
            else:
                prev = state.last
                changed = prev is not None and (
                    obs.severity != prev.severity
                    or (obs.value is not None and prev.value is not None and abs(obs.value - prev.value) >= 1)
                )
                if changed and now - state.last_update >= UPDATE_MIN_INTERVAL_S:
                    state.last, state.last_update = obs, now
                    out.append(self._transition(AlertPhase.UPDATE, state, obs, wall))
        for rule_id, state in self._rules.items():
            if rule_id in seen or (scope is not None and rule_id not in scope):
                continue
            state.pending_since = None
            last = state.last
            if state.alert_id is not None and last is not None:
                if state.last_active is None or now - state.last_active >= last.clear_after_s:
                    cleared = replace(
                        last,
                        message=last.clear_message or f"已恢复：{last.message}",
                        boxes=(),
                    )
                    out.append(self._transition(AlertPhase.CLEAR, state, cleared, wall))
                    state.alert_id, state.started_at, state.last = None, None, None
                    state.quiet_until = now + last.cooldown_s
        return out

    def update_of(self, rule_id: str, wall: datetime) -> Transition | None:
        """An UPDATE of the open alert of ``rule_id`` as it stands (to carry late evidence, e.g. a clip)."""
        state = self._rules.get(rule_id)
        if state is None or state.alert_id is None or state.last is None:
            return None
        return self._transition(AlertPhase.UPDATE, state, state.last, wall)

    def _transition(self, phase: AlertPhase, state: _RuleState, obs: Observation, wall: datetime) -> Transition:
        assert state.alert_id is not None and state.started_at is not None
        return Transition(
            phase=phase,
            alert_id=state.alert_id,
            device_id=self.device_id,
            rule_id=obs.rule_id,
            severity=obs.severity,
            category=obs.category,
            message=obs.message[:500],
            ts=wall,
            started_at=state.started_at,
            value=obs.value,
            limit=obs.limit,
            unit=obs.unit,
            zone_id=obs.zone_id,
            boxes=obs.boxes,
            clear_after_s=obs.clear_after_s,
            clear_message=obs.clear_message,
        )

    # -- persistence of open alerts (JSON-friendly) -------------------------------------------------------
    def export_open(self) -> list[dict[str, Any]]:
        out = []
        for rule_id, s in self._rules.items():
            if s.alert_id is None or s.last is None or s.started_at is None:
                continue
            o = s.last
            out.append(
                {
                    "rule_id": rule_id,
                    "alert_id": s.alert_id,
                    "started_at": s.started_at.isoformat(),
                    "severity": o.severity.value,
                    "category": o.category,
                    "message": o.message,
                    "clear_message": o.clear_message,
                    "clear_after_s": o.clear_after_s,
                    "value": o.value,
                    "limit": o.limit,
                    "unit": o.unit,
                    "zone_id": o.zone_id,
                }
            )
        return out

    def restore_open(self, items: list[dict[str, Any]], now: float) -> None:
        """Reopen alerts saved by :meth:`export_open`; they clear unless observed again in time."""
        for item in items:
            obs = Observation(
                rule_id=item["rule_id"],
                severity=Severity(item["severity"]),
                category=item["category"],
                message=item["message"],
                clear_message=item.get("clear_message"),
                clear_after_s=float(item.get("clear_after_s", 0)),
                value=item.get("value"),
                limit=item.get("limit"),
                unit=item.get("unit"),
                zone_id=item.get("zone_id"),
            )
            self._rules[obs.rule_id] = _RuleState(
                last_active=now,
                alert_id=item["alert_id"],
                started_at=datetime.fromisoformat(item["started_at"]),
                last=obs,
                last_update=now,
            )
