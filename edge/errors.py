"""The edge agent's exception tree; library errors are converted at the boundary."""

from __future__ import annotations


class EdgeError(Exception):
    """Base of every error the edge agent raises on purpose."""


class ConfigError(EdgeError):
    """A site file (or something it references) is invalid: names the file, the key and the reason."""

    def __init__(self, source: str, key: str, reason: str) -> None:
        super().__init__(f"{source}: {key}: {reason}")
        self.source = source
        self.key = key
        self.reason = reason


class DriverError(EdgeError):
    """A device did not answer or answered nonsense; the bus keeps going."""


class OutboxError(EdgeError):
    """The durable outbox cannot be opened or written."""
