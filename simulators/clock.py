"""Scenario time: real elapsed time × time scale, from the moment the simulator started."""

from __future__ import annotations

import time


class ScenarioClock:
    def __init__(self, time_scale: float = 1.0, start_at: float = 0.0) -> None:
        if time_scale <= 0:
            raise ValueError("time scale must be > 0")
        self.time_scale = time_scale
        self.start_at = start_at
        self._origin = time.monotonic()

    def now(self) -> float:
        return self.start_at + (time.monotonic() - self._origin) * self.time_scale
