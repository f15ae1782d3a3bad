"""Background jobs retry a transaction the database refused because another writer held the lock.

SQLite answers ``database is locked`` once its busy timeout (``sqlite_busy_timeout_ms``) has passed; PostgreSQL
reports serialisation failures and deadlocks. A job (risk recompute, retention, GSP derivation) wraps each short
transaction in :func:`retry_locked`: the transaction is run again after a growing pause instead of failing the job.
Logged once per transaction at warning level, never silently given up: after ``attempts`` the error is raised.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError

log = logging.getLogger(__name__)

T = TypeVar("T")

_TRANSIENT = ("database is locked", "database table is locked", "could not serialize", "deadlock detected")


def is_lock_conflict(exc: BaseException) -> bool:
    return isinstance(exc, OperationalError | DBAPIError) and any(s in str(exc).lower() for s in _TRANSIENT)


def retry_locked(
    fn: Callable[[], T],
    *,
    what: str,
    attempts: int = 6,
    pause_s: float = 0.2,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``fn`` (one whole transaction) again while it fails with a lock conflict, at most ``attempts`` times."""
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Exception as exc:
            if not is_lock_conflict(exc) or attempt == attempts:
                raise
            if attempt == 1:
                log.warning("%s: database busy (%s); retrying", what, str(exc).splitlines()[0][:120])
            sleep(pause_s * 2 ** (attempt - 1))
    raise AssertionError("unreachable")
