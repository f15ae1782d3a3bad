"""Camera scenarios: a scene, timed events, and the ground truth (which alerts must happen when).

A scenario is a TOML file (see ``firmware-config/cameras/scenarios/``)::

    name = "after_hours_person"
    start = 2026-11-26T23:10:00+08:00      # scene clock (the analyser's wall clock)
    duration_s = 20
    lighting = "day"                        # or "night" (dark IR-like view)
    [[events]]
    kind = "person_walk"                    # person_walk, lens_cover, camera_knock, defocus,
    start_s = 4                             # stall, freeze, pest, flicker, marker
    end_s = 14
    [[expect]]
    rule_id = "after_hours_presence.kitchen"
    start_s = 4
    end_s = 14

:meth:`Scenario.frames` yields ``SimFrame`` objects: the rendered frame, or ``None`` while the stream
stalls; ``frozen`` frames repeat the previous picture byte for byte.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from simulators.camera.scene import Image, draw_person, draw_rodent, render_kitchen

EventKind = Literal[
    "person_walk", "lens_cover", "camera_knock", "defocus", "stall", "freeze", "pest", "flicker", "marker"
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SceneEvent(_Model):
    kind: EventKind
    start_s: float = Field(ge=0)
    end_s: float = Field(gt=0)
    # person_walk
    from_x: float = Field(default=0.1, ge=-0.2, le=1.2)
    to_x: float = Field(default=0.85, ge=-0.2, le=1.2)
    feet_y: float = Field(default=0.95, ge=0.3, le=1.0)
    size: float = Field(default=0.6, gt=0, le=1, description="person height or rodent length (frame heights)")
    count: int = Field(default=1, ge=1, le=6, description="people walking side by side")
    # camera_knock
    shift_x: float = Field(default=0.22, ge=-0.6, le=0.6)
    shift_y: float = Field(default=0.08, ge=-0.6, le=0.6)
    angle: float = Field(default=9, ge=-45, le=45)
    # defocus
    blur: float = Field(default=0.012, gt=0, le=0.1, description="Gaussian sigma as a fraction of width")
    # flicker
    depth: float = Field(default=0.35, ge=0, le=0.9)
    hz: float = Field(default=2.0, gt=0, le=50)


class Expectation(_Model):
    rule_id: str
    start_s: float = Field(ge=0)
    end_s: float = Field(gt=0)


class Scenario(_Model):
    name: str
    description: str = ""
    start: AwareDatetime
    duration_s: float = Field(gt=0, le=3600)
    fps: float = Field(default=5, gt=0, le=60)
    width: int = Field(default=320, ge=64, le=1920)
    height: int = Field(default=240, ge=48, le=1080)
    seed: int = 0
    lighting: Literal["day", "night"] = "day"
    noise: float = Field(default=3.0, ge=0, le=40)
    events: list[SceneEvent] = Field(default_factory=list)
    expect: list[Expectation] = Field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> Scenario:
        with path.open("rb") as fh:
            return cls.model_validate(tomllib.load(fh))

    def at(self, t: float) -> datetime:
        return self.start + timedelta(seconds=t)

    def with_size(self, width: int, height: int) -> Scenario:
        return self.model_copy(update={"width": width, "height": height})

    def frames(self) -> Iterator[SimFrame]:
        renderer = SceneRenderer(self)
        n = int(self.duration_s * self.fps)
        for i in range(n):
            t = i / self.fps
            yield renderer.render(t)


@dataclass(frozen=True, slots=True)
class SimFrame:
    t: float
    image: Image | None
    """``None`` while the stream stalls."""
    frozen: bool = False


class SceneRenderer:
    """Renders a scenario frame by frame (stateful only for freezes)."""

    NIGHT_GAIN = 0.28

    def __init__(self, scenario: Scenario) -> None:
        self.s = scenario
        self._bg = render_kitchen(scenario.width, scenario.height, scenario.seed)
        rng = np.random.default_rng(scenario.seed + 1)
        shape = (scenario.height, scenario.width, 1)
        self._noise = [rng.normal(0, 1, shape).astype(np.float32) for _ in range(6)]
        self._rng = np.random.default_rng(scenario.seed + 2)
        self._last: Image | None = None

    def _active(self, kind: str, t: float) -> list[SceneEvent]:
        return [e for e in self.s.events if e.kind == kind and e.start_s <= t < e.end_s]

    def render(self, t: float) -> SimFrame:
        if self._active("stall", t):
            return SimFrame(t, None)
        if self._active("freeze", t) and self._last is not None:
            return SimFrame(t, self._last, frozen=True)
        s = self.s
        w, h = s.width, s.height
        img = self._bg.copy()
        for ev in self._active("person_walk", t):
            p = (t - ev.start_s) / max(1e-6, ev.end_s - ev.start_s)
            for k in range(ev.count):
                x = int(w * (ev.from_x + (ev.to_x - ev.from_x) * p) + k * 0.22 * w)
                draw_person(img, x, int(h * ev.feet_y), int(h * ev.size), phase=t * 2 * math.pi * 0.9 + k)
        gain = self.NIGHT_GAIN if s.lighting == "night" else 1.0
        for ev in self._active("flicker", t):
            wobble = 0.5 + 0.5 * math.sin(2 * math.pi * ev.hz * t) + float(self._rng.uniform(-0.2, 0.2))
            gain *= 1 - ev.depth * min(1.0, max(0.0, wobble))
        f = img.astype(np.float32) * gain
        if s.noise:
            noise = self._noise[int(self._rng.integers(len(self._noise)))]
            sigma = s.noise * (1.6 if s.lighting == "night" else 1.0)
            f += noise * sigma
        img = np.clip(f, 0, 255).astype(np.uint8)
        for ev in self._active("pest", t):
            p = (t - ev.start_s) / max(1e-6, ev.end_s - ev.start_s)
            x = int(w * (ev.from_x + (ev.to_x - ev.from_x) * p))
            y = int(h * (ev.feet_y + 0.03 * math.sin(t * 9)))
            heading = 0.0 if ev.to_x >= ev.from_x else math.pi
            draw_rodent(img, x, y, max(6, int(h * ev.size)), heading)
        for ev in self._active("marker", t):
            # a saturated red dot at (from_x, feet_y), radius size × height: what a tiny test "detector" looks for
            # (a stand-in for a cigarette ember; the procedural kitchen has nothing this red)
            centre = (int(w * ev.from_x), int(h * ev.feet_y))
            cv2.circle(img, centre, max(2, int(h * ev.size)), (0, 0, 255), -1)
        for ev in self._active("camera_knock", t):
            m = cv2.getRotationMatrix2D((w / 2, h / 2), ev.angle, 1.0)
            m[0, 2] += ev.shift_x * w
            m[1, 2] += ev.shift_y * h
            img = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)
        for ev in self._active("defocus", t):
            img = cv2.GaussianBlur(img, (0, 0), ev.blur * w)
        for ev in self._active("lens_cover", t):
            fade = min(1.0, (t - ev.start_s) / 0.4)
            cover = np.empty_like(img)
            cover[:] = (22, 26, 34)
            cover = np.clip(cover.astype(np.float32) + self._noise[0] * 1.5, 0, 255).astype(np.uint8)
            img = cv2.addWeighted(img, 1 - fade, cover, fade, 0)
        self._last = img
        return SimFrame(t, img)


def load_scenarios(directory: Path) -> list[Scenario]:
    return [Scenario.load(p) for p in sorted(directory.glob("*.toml"))]
