"""Health figures of the agent process for the heartbeat (psutil)."""

from __future__ import annotations

import time

import psutil


class ProcessHealth:
    def __init__(self) -> None:
        self.process = psutil.Process()
        self.process.cpu_percent(None)  # first call primes the counter
        self.started = time.monotonic()

    def uptime_s(self) -> float:
        return time.monotonic() - self.started

    def cpu_percent(self) -> float:
        return float(self.process.cpu_percent(None))

    def rss_mb(self) -> float:
        return float(self.process.memory_info().rss) / 1_048_576
