"""Behaviour events: the vocabulary (``behaviours.toml``) and the k-of-n dwell filter.

A site maps its model's classes to vocabulary events (``no_hat``, ``smoking``, ``rodent``…) per zone;
this module knows what each event is called and how severe it is, and decides per (rule, zone) when
enough recent inferences agree: at least ``k`` of the last ``n`` inferences must contain a matching
box before the condition holds (one stray box does not alert; one missed inference does not end an
incident). The alert lifecycle then adds raise/clear hysteresis and the cool-down.
"""

from __future__ import annotations

import tomllib
from collections import deque
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from protocols.messages import Identifier, Severity

VOCABULARY_PATH = Path(__file__).with_name("behaviours.toml")


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BehaviourEvent(_Data):
    name: str = Field(max_length=32, description="Chinese name, e.g. 未戴厨师帽")
    meaning: str = Field(max_length=200)
    severity: Severity
    category: Identifier
    message: str = Field(max_length=200)
    cooldown_s: float = Field(ge=0, le=86_400)


class RecordingRules(_Data):
    kitchen_min_retention_days: float = Field(ge=0)


class Vocabulary(_Data):
    version: str
    recording: RecordingRules
    events: dict[Identifier, BehaviourEvent]


@cache
def vocabulary() -> Vocabulary:
    with VOCABULARY_PATH.open("rb") as fh:
        return Vocabulary.model_validate(tomllib.load(fh))


@dataclass(slots=True)
class DwellWindow:
    """The last ``n`` inference results of one (rule, zone): holds when ≥ ``k`` were hits."""

    k: int
    n: int
    hits: deque[bool] = field(default_factory=deque)

    def push(self, hit: bool) -> bool:
        self.hits.append(hit)
        while len(self.hits) > self.n:
            self.hits.popleft()
        return self.holds

    @property
    def holds(self) -> bool:
        return sum(self.hits) >= self.k

    def reset(self) -> None:
        self.hits.clear()
