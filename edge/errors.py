"""The edge agent's exception tree; library errors are converted at the boundary."""

from __future__ import annotations


class EdgeError(Exception):
    """Base of every error the edge agent raises on purpose."""


class ConfigError(EdgeError):
    """A site file (or something it references) is invalid: names the file, the key and the reason (Chinese
    first). ``more`` holds further (key, reason) problems of the same file; ``str()`` names each on its own line."""

    def __init__(self, source: str, key: str, reason: str, more: tuple[tuple[str, str], ...] = ()) -> None:
        lines = [f"{source}: {k}: {r}" for k, r in ((key, reason), *more)]
        super().__init__("\n".join(lines))
        self.source = source
        self.key = key
        self.reason = reason
        self.more = more


class DriverError(EdgeError):
    """A device did not answer or answered nonsense; the bus keeps going."""


class OutboxError(EdgeError):
    """The durable outbox cannot be opened or written."""
