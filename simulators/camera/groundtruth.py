"""Score alerts against a scenario's ground truth: precision and recall per event type.

An expected alert is *found* when an alert with its rule id was raised inside its window (widened by
``slack_s`` each side, for the rule's raise delay) and cleared afterwards (or the scenario ended
within ``clear_slack_s`` of the window's end). Each raise matches at most one expectation; a raise
matching none is a false positive.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from simulators.camera.scenario import Scenario


@dataclass(frozen=True, slots=True)
class ObservedAlert:
    rule_id: str
    raised_s: float
    cleared_s: float | None


@dataclass(slots=True)
class Score:
    true_positive: int = 0
    false_positive: int = 0
    false_negative: int = 0
    cleared_late: int = 0

    @property
    def precision(self) -> float:
        found = self.true_positive + self.false_positive
        return self.true_positive / found if found else 1.0

    @property
    def recall(self) -> float:
        wanted = self.true_positive + self.false_negative
        return self.true_positive / wanted if wanted else 1.0


@dataclass(slots=True)
class Evaluation:
    per_type: dict[str, Score] = field(default_factory=lambda: defaultdict(Score))
    unexpected: list[tuple[str, ObservedAlert]] = field(default_factory=list)
    missed: list[tuple[str, str]] = field(default_factory=list)

    def add(
        self, scenario: Scenario, alerts: list[ObservedAlert], slack_s: float = 3.0, clear_slack_s: float = 12.0
    ) -> None:
        used: set[int] = set()
        for exp in scenario.expect:
            kind = event_type(exp.rule_id)
            match = None
            for i, a in enumerate(alerts):
                if i in used or a.rule_id != exp.rule_id:
                    continue
                if exp.start_s - 0.5 <= a.raised_s <= exp.end_s + slack_s:
                    match = i
                    break
            if match is None:
                self.per_type[kind].false_negative += 1
                self.missed.append((scenario.name, exp.rule_id))
                continue
            used.add(match)
            self.per_type[kind].true_positive += 1
            cleared = alerts[match].cleared_s
            if cleared is None or cleared > exp.end_s + clear_slack_s:
                self.per_type[kind].cleared_late += 1
        for i, a in enumerate(alerts):
            if i not in used:
                self.per_type[event_type(a.rule_id)].false_positive += 1
                self.unexpected.append((scenario.name, a))


def event_type(rule_id: str) -> str:
    """``after_hours_presence.kitchen`` → ``after_hours_presence``."""
    return rule_id.split(".", 1)[0]
