"""Storm control (告警风暴抑制): per-recipient rate limits and mass-event detection.

Folding repeats of one clue into one incident with a counter happens in the service (by fold key, persisted).
This module keeps the short-lived sliding windows in memory: after a restart the windows start empty, which
at worst lets one extra burst through; nothing is ever dropped (items over the limit go into a summary).
"""

from __future__ import annotations

from collections import deque

from cloud.notify.config import StormRules


class StormControl:
    def __init__(self, rules: StormRules) -> None:
        self.rules = rules
        self._new: deque[float] = deque()
        self._sent: dict[str, deque[float]] = {}

    @staticmethod
    def _trim(window: deque[float], now: float, span: float) -> None:
        while window and now - window[0] > span:
            window.popleft()

    def note_new_incident(self, now: float) -> bool:
        """Record one new incident; True while a mass event is on (more than ``mass_threshold`` in the window)."""
        self._trim(self._new, now, self.rules.mass_window_s)
        self._new.append(now)
        return len(self._new) > self.rules.mass_threshold

    def mass_event(self, now: float) -> bool:
        self._trim(self._new, now, self.rules.mass_window_s)
        return len(self._new) > self.rules.mass_threshold

    def allow(self, recipient: str, now: float) -> bool:
        """Take one slot of ``recipient``'s rate window; False when the window is full."""
        window = self._sent.setdefault(recipient, deque())
        self._trim(window, now, self.rules.rate_window_s)
        if len(window) >= self.rules.rate_per_recipient:
            return False
        window.append(now)
        return True
