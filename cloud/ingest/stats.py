"""Counters of one ingest worker, and "log a repeated problem once" bookkeeping."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("cloud.ingest")


@dataclass
class IngestStats:
    received: int = 0
    committed: int = 0  # messages newly committed (telemetry + alert events)
    duplicates: int = 0  # (site, agent, incarnation, seq) seen before, same payload: not stored again, acked again
    seq_conflicts: int = 0  # same key, another payload: dead-lettered seq_conflict, cloud alert
    clock_skewed: int = 0  # batches whose timestamps are off the receive time by more than the threshold
    readings: int = 0
    alert_events: int = 0
    statuses: int = 0
    heartbeats: int = 0
    announces: int = 0
    ignored: int = 0
    quarantined: int = 0  # readings/alerts of devices waiting for approval, held apart
    #: the same by reason: device_pending (announced), site_unregistered, device_unannounced
    quarantined_by_reason: Counter[str] = field(default_factory=Counter)
    clears_without_open_alert: int = 0  # a clear event whose alert is not open (cleared before, or never raised)
    dead_letters: Counter[str] = field(default_factory=Counter)
    acks_published: int = 0
    ack_failures: int = 0
    transactions: int = 0
    transaction_failures: int = 0
    largest_batch: int = 0
    last_commit_ms: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _reported: set[str] = field(default_factory=set, repr=False)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "received": self.received,
                "committed": self.committed,
                "duplicates": self.duplicates,
                "seq_conflicts": self.seq_conflicts,
                "clock_skewed": self.clock_skewed,
                "readings": self.readings,
                "alert_events": self.alert_events,
                "statuses": self.statuses,
                "heartbeats": self.heartbeats,
                "announces": self.announces,
                "ignored": self.ignored,
                "quarantined": self.quarantined,
                "quarantined_by_reason": dict(self.quarantined_by_reason),
                "clears_without_open_alert": self.clears_without_open_alert,
                "dead_letters": dict(self.dead_letters),
                "dead_letters_total": sum(self.dead_letters.values()),
                "acks_published": self.acks_published,
                "ack_failures": self.ack_failures,
                "transactions": self.transactions,
                "transaction_failures": self.transaction_failures,
                "largest_batch": self.largest_batch,
                "last_commit_ms": round(self.last_commit_ms, 3),
            }

    def report_once(self, key: str, message: str, *args: object, level: int = logging.WARNING) -> None:
        """Log ``message`` the first time ``key`` happens; later occurrences only count."""
        with self._lock:
            if key in self._reported:
                return
            self._reported.add(key)
        log.log(level, message + " (further occurrences are only counted)", *args)

    def recovered(self, key: str, message: str, *args: object) -> None:
        with self._lock:
            if key not in self._reported:
                return
            self._reported.discard(key)
        log.info(message, *args)
