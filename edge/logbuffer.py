"""The agent's last log lines in memory, for the ``logs`` command (bounded: lines and characters per line)."""

from __future__ import annotations

import logging
from collections import deque

MAX_LINES = 1000
MAX_LINE_CHARS = 2000


class RecentLogs(logging.Handler):
    """A logging handler keeping the newest ``MAX_LINES`` formatted records (tracebacks included, each line cut)."""

    def __init__(self, max_lines: int = MAX_LINES) -> None:
        super().__init__(logging.INFO)
        self.lines: deque[str] = deque(maxlen=max_lines)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # a bad format argument must not break logging
            text = f"{record.levelname} {record.name}: {record.msg!r}"
        for line in text.splitlines():
            self.lines.append(line[:MAX_LINE_CHARS])

    def last(self, n: int) -> list[str]:
        return list(self.lines)[-n:] if n > 0 else []
