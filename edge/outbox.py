"""Durable outbox (SQLite, WAL): every telemetry batch and alert event is written here *before* it is published.

* ``seq`` is assigned when an entry is written (one sequence per agent, shared by telemetry and alerts) and
  is part of the stored payload, so a replay publishes exactly the same bytes.
* An entry is deleted only when the cloud's application-level :class:`~protocols.messages.Ack` lists its seq
  (committed or rejected). The broker's PUBACK means nothing here.
* Bounded disk: above ``max_bytes`` / ``max_entries`` the oldest telemetry is thinned (every second batch of the
  oldest tenth is dropped, repeatedly, until under the bound). Alerts are never dropped. Thinning is counted
  and reported (heartbeat driver state ``outbox: degraded`` and an ``outbox_overflow`` alert).
* The outbox owns the agent's *incarnation*: created with the database on first start and kept in it, stamped on
  every entry it writes. A wiped data dir (or a replacement box) starts a new incarnation whose seqs start at 1
  again; the cloud dedups per (site, agent, incarnation, seq), so nothing of the new box is taken for a duplicate.
* Survives ``kill -9`` (WAL, one transaction per write) and, with ``fsync="full"``, power loss.
* Readings are durable from the moment they are read: each poll's readings are appended to the ``staging``
  table in one transaction (:meth:`Outbox.stage`); a telemetry batch is formed from the oldest staged readings
  and written in the same transaction that deletes them from staging (:meth:`Outbox.batch_staged`). A
  ``kill -9`` between a poll and its batch leaves the readings staged; the next start batches them first.

Other state that must change atomically with an outbox write (the alert state table) is written through
the ``extra`` callback of :meth:`Outbox.append`, in the same transaction.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from edge.errors import OutboxError
from protocols.messages import stamp_incarnation

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    is_alert INTEGER NOT NULL,
    readings INTEGER NOT NULL,
    created REAL NOT NULL,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_telemetry ON outbox (is_alert, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS staging (id INTEGER PRIMARY KEY AUTOINCREMENT, reading TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS identity (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def new_incarnation(now: float | None = None) -> str:
    """A fresh incarnation id: creation time (UTC, readable in the fleet view) and 32 random bits."""
    stamp = datetime.fromtimestamp(time.time() if now is None else now, UTC).strftime("%Y%m%dt%H%M%Sz")
    return f"{stamp}-{secrets.token_hex(4)}"


@dataclass(frozen=True, slots=True)
class Entry:
    seq: int
    channel: str
    payload: bytes
    created: float
    is_alert: bool


@dataclass(frozen=True, slots=True)
class OutboxStats:
    depth: int
    bytes: int
    oldest_age_s: float | None
    last_acked_seq: int
    next_seq: int
    thinned_batches: int
    thinned_readings: int


class Outbox:
    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int = 512 * 1024 * 1024,
        max_entries: int = 2_000_000,
        fsync: str = "full",
        on_thinned: Callable[[int, int], None] | None = None,
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self.on_thinned = on_thinned
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(f"PRAGMA synchronous={'FULL' if fsync == 'full' else 'NORMAL'}")
            self.db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot open outbox {path}: {exc}") from None
        row = self.db.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM outbox").fetchone()
        self._count, self._bytes = int(row[0]), int(row[1])
        self._staged = int(self.db.execute("SELECT COUNT(*) FROM staging").fetchone()[0])
        self._next_seq = max(self._meta("next_seq", 1), self._max_seq() + 1)
        self.incarnation = self._incarnation()

    def _incarnation(self) -> str:
        row = self.db.execute("SELECT value FROM identity WHERE key = 'incarnation'").fetchone()
        if row:
            return str(row[0])
        # (an outbox written before incarnations existed gets one now: its queued entries keep none and are
        # deduplicated in the cloud's legacy namespace; new entries carry the new incarnation)
        incarnation = new_incarnation()
        self.db.execute("INSERT OR IGNORE INTO identity (key, value) VALUES ('incarnation', ?)", (incarnation,))
        log.info("outbox %s: new incarnation %s", self.path, incarnation)
        return incarnation

    # -- meta ---------------------------------------------------------------------------------------
    def _meta(self, key: str, default: int = 0) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else default

    def _set_meta(self, key: str, value: int) -> None:
        self.db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def _max_seq(self) -> int:
        return int(self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM outbox").fetchone()[0])

    # -- writing ------------------------------------------------------------------------------------
    def append(
        self,
        channel: str,
        build: Callable[[int], bytes],
        *,
        is_alert: bool = False,
        readings: int = 0,
        extra: Callable[[sqlite3.Connection], None] | None = None,
    ) -> int:
        """Assign the next seq, build the payload with it and store it (with ``extra``) in one transaction."""
        seq = self._next_seq
        payload = build(seq)
        payload = stamp_incarnation(payload, self.incarnation)
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.execute(
                    "INSERT INTO outbox (seq, channel, is_alert, readings, created, payload) VALUES (?,?,?,?,?,?)",
                    (seq, channel, int(is_alert), readings, time.time(), payload),
                )
                self._set_meta("next_seq", seq + 1)
                if extra is not None:
                    extra(self.db)
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise OutboxError(f"outbox write failed: {exc}") from None
        self._next_seq = seq + 1
        self._count += 1
        self._bytes += len(payload)
        if self._bytes > self.max_bytes or self._count > self.max_entries:
            self._thin()
        return seq

    def stage(self, readings: list[str]) -> None:
        """Make one poll's readings (encoded :class:`~protocols.messages.Reading` JSON) durable, in one transaction."""
        if not readings:
            return
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.executemany("INSERT INTO staging (reading) VALUES (?)", [(r,) for r in readings])
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise OutboxError(f"staging readings failed: {exc}") from None
        self._staged += len(readings)

    @property
    def staged(self) -> int:
        """Readings staged but not yet in a batch."""
        return self._staged

    def batch_staged(self, channel: str, build: Callable[[int, list[str]], bytes], *, limit: int) -> int | None:
        """Write the oldest ``limit`` staged readings as one entry (``build(seq, readings)``) and remove them from
        staging in the same transaction; returns the seq, or None when nothing is staged."""
        rows = self.db.execute("SELECT id, reading FROM staging ORDER BY id LIMIT ?", (limit,)).fetchall()
        if not rows:
            self._staged = 0
            return None
        last_id = int(rows[-1][0])
        readings = [str(r[1]) for r in rows]

        def unstage(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM staging WHERE id <= ?", (last_id,))

        seq = self.append(channel, lambda s: build(s, readings), readings=len(readings), extra=unstage)
        self._staged = max(0, self._staged - len(readings))
        return seq

    def write_state(self, extra: Callable[[sqlite3.Connection], None]) -> None:
        """Change state kept next to the outbox (no entry), in one transaction."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            extra(self.db)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def _thin(self) -> None:
        dropped_batches = dropped_readings = 0
        while self._bytes > self.max_bytes or self._count > self.max_entries:
            telemetry = int(self.db.execute("SELECT COUNT(*) FROM outbox WHERE is_alert = 0").fetchone()[0])
            if telemetry == 0:
                log.error("outbox over its bound with alerts only (%d entries): alerts are never dropped", self._count)
                break
            window = max(2, telemetry // 10)
            rows = self.db.execute(
                "SELECT seq, readings, LENGTH(payload) FROM outbox WHERE is_alert = 0 ORDER BY seq LIMIT ?", (window,)
            ).fetchall()
            victims = rows[1::2] if len(rows) > 1 else rows
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany("DELETE FROM outbox WHERE seq = ?", [(r[0],) for r in victims])
            batches = len(victims)
            readings = sum(int(r[1]) for r in victims)
            self._set_meta("thinned_batches", self._meta("thinned_batches") + batches)
            self._set_meta("thinned_readings", self._meta("thinned_readings") + readings)
            self.db.execute("COMMIT")
            self._count -= batches
            self._bytes -= sum(int(r[2]) for r in victims)
            dropped_batches += batches
            dropped_readings += readings
        if dropped_batches:
            log.warning(
                "outbox full: thinned %d oldest telemetry batches (%d readings)", dropped_batches, dropped_readings
            )
            if self.on_thinned is not None:
                self.on_thinned(dropped_batches, dropped_readings)

    # -- reading and acknowledging -------------------------------------------------------------------
    def pending(self, after_seq: int = 0, limit: int = 100) -> list[Entry]:
        rows = self.db.execute(
            "SELECT seq, channel, payload, created, is_alert FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ).fetchall()
        return [Entry(int(r[0]), str(r[1]), bytes(r[2]), float(r[3]), bool(r[4])) for r in rows]

    def ack(self, ranges: Iterable[tuple[int, int]]) -> int:
        """Delete the entries in the inclusive seq ranges; returns how many were deleted."""
        spans = sorted(ranges)
        if not spans:
            return 0
        self.db.execute("BEGIN IMMEDIATE")
        try:
            deleted = removed_bytes = 0
            for first, last in spans:
                row = self.db.execute(
                    "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM outbox WHERE seq BETWEEN ? AND ?",
                    (first, last),
                ).fetchone()
                if row[0]:
                    self.db.execute("DELETE FROM outbox WHERE seq BETWEEN ? AND ?", (first, last))
                    deleted += int(row[0])
                    removed_bytes += int(row[1])
            top = max(last for _first, last in spans)
            if top > self._meta("last_acked_seq"):
                self._set_meta("last_acked_seq", min(top, self._next_seq - 1))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self._count -= deleted
        self._bytes -= removed_bytes
        return deleted

    def stats(self) -> OutboxStats:
        oldest = self.db.execute("SELECT MIN(created) FROM outbox").fetchone()[0]
        return OutboxStats(
            depth=self._count,
            bytes=self._bytes,
            oldest_age_s=max(0.0, time.time() - float(oldest)) if oldest is not None else None,
            last_acked_seq=self._meta("last_acked_seq"),
            next_seq=self._next_seq,
            thinned_batches=self._meta("thinned_batches"),
            thinned_readings=self._meta("thinned_readings"),
        )

    @property
    def depth(self) -> int:
        return self._count

    def close(self) -> None:
        self.db.close()
