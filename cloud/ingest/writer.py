"""The synchronous half of the ingest: one call turns a drained batch of MQTT messages into one transaction.

``IngestWriter.commit(batch)`` runs in the ingest's writer thread:

1. decode and validate every payload with :func:`protocols.messages.decode_for_topic` (type for the
   channel, topic identity = payload identity); failures become dead letters with their reason;
2. in ONE transaction (SQLite: ``BEGIN IMMEDIATE``): claim each ``(site_id, agent_id, incarnation, seq)`` in
   ``ingest_seq`` (already present with the same payload digest → duplicate, not stored again; present with
   another payload → *seq conflict*: dead-lettered ``seq_conflict`` with both digests, counted, a cloud alert
   ``seq_conflict`` on the agent for the admins, and rejected in the ack — never acked as a duplicate), write
   the readings of new batches through the
   telemetry store, apply new alert events (atomic upsert → clue), record status/heartbeats/presence,
   hand announcements to the registry, insert dead letters;
3. return what to acknowledge — the caller publishes the acks only after this returned, i.e. after commit.

A batch whose transaction fails for a data reason (or a bug downstream, e.g. in clue collection) is
retried message by message so one poisonous message is dead-lettered (``store_error``, raw bytes kept for
a replay) and its neighbours are still committed; database-level failures (``OperationalError``: locked,
disk, connection) propagate so the caller retries the whole batch later and nothing is dead-lettered.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import msgspec
from pydantic import BaseModel
from sqlalchemy import Connection, Engine, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlmodel import Session

from cloud.alerts import AlertSignal, AlertSource, apply_signal
from cloud.core.db import utcnow, writer
from cloud.fleet_commands import record_results, resend_on_reconnect
from cloud.ingest.clocks import CLOCK_AHEAD, CLOCK_BEHIND, ahead_s, heartbeat_offset, skew_signal
from cloud.ingest.fastpath import FastBatch, FastDecoder
from cloud.ingest.models import DeadLetter, IngestSeq, PendingAnnounce
from cloud.ingest.stats import IngestStats
from cloud.presence import record_heartbeat, record_status, touch
from cloud.telemetry.store import TelemetryStore
from protocols import (
    AlertEvent,
    AlertPhase,
    Announce,
    CommandResult,
    Heartbeat,
    ProtocolError,
    Quality,
    SiteState,
    Status,
    TelemetryBatch,
)
from protocols.messages import MAX_SEQ, decode_for_topic
from protocols.topics import parse_topic

log = logging.getLogger("cloud.ingest")

AnnounceHook = Callable[[Session, Announce], Any]

#: dead-letter reason (and cloud alert rule) of a seq that came again with another payload
SEQ_CONFLICT = "seq_conflict"


class RawMessage(NamedTuple):
    topic: str
    payload: bytes


@dataclass
class AgentAck:
    site_id: str
    incarnation: str | None = None
    committed: list[int] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class CommitResult:
    #: (site_id, agent_id, incarnation or '') → what to ack
    acks: dict[tuple[str, str, str], AgentAck] = field(default_factory=dict)
    new: int = 0
    duplicates: int = 0
    conflicts: int = 0
    readings: int = 0
    dead: int = 0
    #: readings/alerts of unapproved devices held in the quarantine (or dead-lettered: device rejected)
    quarantined: int = 0
    rejected_device: int = 0
    #: reason (device_pending / site_unregistered / device_unannounced) → held
    quarantined_by_reason: Mapping[str, int] = field(default_factory=dict)
    #: agents came online or command results arrived: the ingest looks for commands to deliver
    commands_due: bool = False

    def ack_for(self, agent_id: str, site_id: str, incarnation: str | None = None) -> AgentAck:
        key = (site_id, agent_id, incarnation or "")
        ack = self.acks.get(key)
        if ack is None:
            ack = self.acks[key] = AgentAck(site_id, incarnation or None)
        return ack


class _Dead(NamedTuple):
    topic: str
    reason: str
    detail: str
    payload: bytes
    agent_id: str | None
    seq: int | None
    site_id: str | None
    incarnation: str | None = None
    offset_s: float | None = None  # clock_ahead: how far ahead of the cloud clock


def _guess_seq(payload: bytes) -> tuple[int | None, str | None]:
    """The seq (and incarnation) of a rejected payload when it can be read, so the edge can drop it."""
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, None
    if not isinstance(data, dict):
        return None, None
    seq, incarnation = data.get("seq"), data.get("incarnation")
    ok = isinstance(seq, int) and not isinstance(seq, bool) and 1 <= seq <= MAX_SEQ
    return (seq if ok else None), (incarnation if isinstance(incarnation, str) and len(incarnation) <= 64 else None)


def payload_digest(payload: bytes) -> bytes:
    """What the ledger keeps of a payload: a resend repeats the same bytes, a conflicting message does not."""
    return hashlib.blake2b(payload, digest_size=8).digest()


def _optional_hook(module_name: str, attribute: str) -> Any | None:
    """A hook of the registry (absent in a build without it)."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name in {"cloud.registry", module_name}:
            return None
        raise
    return getattr(module, attribute, None)


def _load_quarantine() -> Any | None:
    """:meth:`cloud.registry.quarantine.Gate.hold` (one gate per writer: it caches the registry): data of sites
    and devices nobody registered or approved is held apart."""
    gate = _optional_hook("cloud.registry.quarantine", "Gate")
    return None if gate is None else gate().hold


def _load_announce_hook() -> AnnounceHook | None:
    hook: AnnounceHook | None = _optional_hook("cloud.registry.announce", "handle_announce")
    return hook


class _Decoded(NamedTuple):
    topic: str
    payload: bytes
    message: BaseModel | FastBatch


class Prepared(NamedTuple):
    """A received batch, decoded and validated, not yet committed."""

    size: int
    decoded: list[_Decoded]
    dead: list[_Dead]


class IngestWriter:
    """Validate → dedup → store → commit, for one drained batch at a time (not thread-safe: one writer)."""

    def __init__(
        self,
        engine: Engine,
        store: TelemetryStore,
        *,
        sensor_touch_s: float = 5.0,
        clock_skew_max_s: float = 120.0,
        clock_behind_max_s: float = 366 * 86400.0,
    ) -> None:
        self.clock_skew_max_s = clock_skew_max_s
        self.clock_behind_max_s = clock_behind_max_s
        #: (site, agent) → clock offset of agents whose last heartbeat showed a skew (their readings: uncertain)
        self.skewed: dict[tuple[str, str], float] = {}
        self.engine = writer(engine)
        self.store = store
        self.stats = IngestStats()
        self.sensor_touch_s = sensor_touch_s
        self.agent_touch_s = min(1.0, sensor_touch_s)
        self._touched: dict[tuple[str, str], float] = {}
        self._agents_touched: dict[tuple[str, str], float] = {}  # (agent_id, site_id)
        self._announce_hook = _load_announce_hook()
        self._quarantine = _load_quarantine()
        self._sqlite = engine.dialect.name == "sqlite"
        # telemetry decoded in one msgspec pass when the store can take it (fallback: protocols)
        self._fast = FastDecoder() if hasattr(store, "write_decoded") else None

    # -- public ---------------------------------------------------------------------------------------
    def commit(self, batch: Sequence[RawMessage], *, retire: Sequence[int] = ()) -> CommitResult:
        """Decode, store and commit ``batch``; return the acks to publish (after this returned).

        ``retire``: ids of dead letters this batch re-submits (a replay); they are deleted in the transaction
        that commits the batch, so a replayed message is never both stored and still dead (a message that
        fails again is dead-lettered anew, with its new reason).
        """
        return self.commit_prepared(self.prepare(batch), retire=retire)

    def prepare(self, batch: Sequence[RawMessage]) -> Prepared:
        """Decode and validate ``batch`` (no database): the pipelined ingest runs this for the next batch in its
        own thread while :meth:`commit_prepared` commits the previous one in the writer thread."""
        decoded, dead = self._decode(batch)
        with self.stats._lock:
            self.stats.received += len(batch)
            self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        return Prepared(len(batch), decoded, dead)

    def commit_prepared(self, prepared: Prepared, *, retire: Sequence[int] = ()) -> CommitResult:
        """Store and commit a prepared batch in one transaction (the writer thread only)."""
        decoded, dead = prepared.decoded, prepared.dead
        try:
            result = self._transaction(decoded, dead, retire)
        except OperationalError:
            raise  # the database itself is unwell: the caller retries the whole batch later
        except Exception as exc:  # a data problem (or a bug downstream, e.g. in clue collection)
            if isinstance(exc, DBAPIError) and exc.connection_invalidated:
                raise
            self.stats.report_once(
                "batch-failed", "batch of %d failed (%s); retrying message by message", prepared.size, exc
            )
            with self.stats._lock:
                self.stats.transaction_failures += 1
            result = self._one_by_one(decoded, dead, retire)
        return result

    # -- decoding -------------------------------------------------------------------------------------
    def _decode(self, batch: Sequence[RawMessage]) -> tuple[list[_Decoded], list[_Dead]]:
        decoded: list[_Decoded] = []
        dead: list[_Dead] = []
        fast = self._fast
        for topic, payload in batch:
            if fast is not None and topic.endswith("/telemetry"):
                parts = topic.split("/")
                if len(parts) == 5 and parts[0] == "ms" and parts[1] == "v1":
                    fast_batch = fast.decode_telemetry(parts[2], parts[3], payload)
                    if fast_batch is not None:
                        self._keep_if_plausible(decoded, dead, _Decoded(topic, payload, fast_batch))
                        continue
            try:
                _, message = decode_for_topic(topic, payload)
            except ProtocolError as exc:
                dead.append(self._dead(topic, payload, exc.reason, exc.detail))
                continue
            except Exception as exc:  # never crash on input
                dead.append(self._dead(topic, payload, "internal_error", f"{type(exc).__name__}: {exc}"))
                continue
            self._keep_if_plausible(decoded, dead, _Decoded(topic, payload, message))
        return decoded, dead

    def _stamps(self, message: BaseModel | FastBatch) -> list[datetime]:
        if isinstance(message, FastBatch):
            assert self._fast is not None
            stamps = {message.sent_at, *(r.ts for r in message.readings)}
            return [hit[0] for hit in map(self._fast.instant, stamps) if hit is not None]
        if isinstance(message, TelemetryBatch):
            return [message.sent_at, *(r.ts for r in message.readings)]
        if isinstance(message, AlertEvent):
            return [message.ts, message.started_at]
        return []

    def _keep_if_plausible(self, decoded: list[_Decoded], dead: list[_Dead], item: _Decoded) -> None:
        """Stamped later than now + the allowed skew (``clock_ahead``), or earlier than any backlog an edge can hold
        (``clock_behind``: a dead RTC back at 1970/2000): dead-lettered (see :mod:`cloud.ingest.clocks`)."""
        stamps = self._stamps(item.message)
        if not stamps:
            decoded.append(item)
            return
        now = utcnow()
        latest, earliest = max(stamps), min(stamps)
        ahead = ahead_s(latest, now)
        behind = -ahead_s(earliest, now)
        if ahead > self.clock_skew_max_s:
            detail = (
                f"stamped {latest.isoformat()}, {ahead:.0f} s after the cloud's receive time (allowed "
                f"{self.clock_skew_max_s:.0f} s): the agent's clock is ahead. Not stored, so it neither becomes the "
                "latest value nor a mis-timed record; fix the box's clock (NTP/RTC)."
            )
            dead.append(self._dead(item.topic, item.payload, CLOCK_AHEAD, detail)._replace(offset_s=ahead))
        elif behind > self.clock_behind_max_s:
            detail = (
                f"stamped {earliest.isoformat()}, {behind / 86400:.0f} days before the cloud's receive time (no edge "
                f"backlog is older than {self.clock_behind_max_s / 86400:.0f} days): the agent's clock is wrong "
                "(a dead RTC starts at 1970 or 2000). Not stored as a mis-timed record; fix the box's clock."
            )
            dead.append(self._dead(item.topic, item.payload, CLOCK_BEHIND, detail)._replace(offset_s=-behind))
        else:
            decoded.append(item)
            return
        with self.stats._lock:
            self.stats.clock_skewed += 1

    def _dead(self, topic: str, payload: bytes, reason: str, detail: str) -> _Dead:
        try:
            address = parse_topic(topic)
            agent_id: str | None = address.agent_id
            site_id: str | None = address.site_id
        except ProtocolError:
            agent_id = site_id = None
        seq, incarnation = _guess_seq(payload) if agent_id else (None, None)
        self.stats.report_once(f"dead:{reason}", "dead-lettered a message on %s: %s: %s", topic, reason, detail[:300])
        return _Dead(topic, reason, detail[:2000], bytes(payload), agent_id, seq, site_id, incarnation)

    # -- the transaction ------------------------------------------------------------------------------
    def _one_by_one(self, decoded: list[_Decoded], dead: list[_Dead], retire: Sequence[int] = ()) -> CommitResult:
        total = CommitResult()
        for item in decoded:
            try:
                part = self._transaction([item], [])
            except OperationalError:
                raise
            except Exception as exc:
                if isinstance(exc, DBAPIError) and exc.connection_invalidated:
                    raise
                bad = self._dead(item.topic, item.payload, "store_error", f"{type(exc).__name__}: {exc}")
                part = self._transaction([], [bad])
            _merge(total, part)
        if dead or retire:
            _merge(total, self._transaction([], dead, retire))
        return total

    def _transaction(self, decoded: list[_Decoded], dead: list[_Dead], retire: Sequence[int] = ()) -> CommitResult:
        started = time.perf_counter()
        now = utcnow()
        result = CommitResult()
        telemetry: list[TelemetryBatch | FastBatch] = []
        events: list[AlertEvent] = []
        others: list[BaseModel] = []
        for item in decoded:
            msg = item.message
            if isinstance(msg, FastBatch | TelemetryBatch):
                telemetry.append(msg)
            elif isinstance(msg, AlertEvent):
                events.append(msg)
            else:
                others.append(msg)
        agents: set[tuple[str, str]] = set()  # (agent_id, site_id)
        sensors: set[tuple[str, str, str]] = set()
        touched_now = time.monotonic()

        by_message = {id(item.message): item for item in decoded}
        conflicts: list[_Dead] = []
        stray_clears = 0
        with self.engine.begin() as conn:
            new_tel, new_ev = self._claim(conn, telemetry, events, now, result, by_message, conflicts)
            if self._quarantine is not None:  # data of devices waiting for approval is held apart
                new_tel, new_ev, held = self._quarantine(conn, new_tel, new_ev, by_message, now)
                result.quarantined, result.rejected_device = held.quarantined, held.dead
                result.quarantined_by_reason = held.by_reason
            dead = [*dead, *conflicts]
            touched = self._touched
            for batch in new_tel:
                agent, site = batch.agent_id, batch.site_id
                agents.add((agent, site))
                for sensor_id in {r.sensor_id for r in batch.readings}:
                    if touched_now - touched.get((site, sensor_id), -1e9) >= self.sensor_touch_s:
                        sensors.add((site, sensor_id, agent))
            if new_tel:
                result.readings = self._store(conn, [self._mark_if_skewed(b) for b in new_tel])
            skews = self._clock_signals(others, dead, now)
            for msg in others:
                if isinstance(msg, Heartbeat):
                    offset = skews.get((msg.site_id, msg.agent_id))
                    record_heartbeat(conn, msg, now, clock_skew_s=offset[0] if offset and offset[1] else None)
            results = [m for m in others if isinstance(m, CommandResult)]
            reconnected = {
                (m.site_id, m.agent_id) for m in others if isinstance(m, Status) and m.state is SiteState.ONLINE
            }
            result.commands_due = bool(results or reconnected)
            if new_ev or conflicts or skews or result.commands_due or any(isinstance(m, Announce) for m in others):
                with Session(bind=conn) as session:
                    record_results(session, results, now)
                    resend_on_reconnect(session, reconnected)
                    for conflict in conflicts:
                        raise_seq_conflict(session, conflict, now)
                    for (site_id, agent_id), (offset_s, skewed) in skews.items():
                        if skewed or (site_id, agent_id) in self.skewed:
                            apply_signal(session, skew_signal(site_id, agent_id, offset_s, now, skewed=skewed))
                    for event in sorted(new_ev, key=lambda e: (e.agent_id, e.seq)):
                        agents.add((event.agent_id, event.site_id))
                        outcome = apply_signal(session, AlertSignal.from_event(event))
                        if event.phase is AlertPhase.CLEAR and not outcome.cleared:
                            stray_clears += 1  # its alert is not open here: counted, not silent
                    for msg in others:
                        if isinstance(msg, Announce):
                            self._announce(session, msg)
                    session.flush()
            for msg in others:
                if isinstance(msg, Status):
                    record_status(conn, msg, now)
                elif not isinstance(msg, Announce | Heartbeat | CommandResult):
                    with self.stats._lock:
                        self.stats.ignored += 1
            agents_due = {a for a in agents if touched_now - self._agents_touched.get(a, -1e9) >= self.agent_touch_s}
            if agents_due or sensors:
                touch(conn, agents=agents_due, sensors=sensors, now=now)
            if dead:
                self._insert_dead(conn, dead, now)
            if retire:
                table = DeadLetter.__table__  # type: ignore[attr-defined]
                conn.execute(table.delete().where(table.c.id.in_(list(retire))))
        # committed
        for key, (offset_s, skewed) in skews.items():
            if skewed:
                self.skewed[key] = offset_s
            else:
                self.skewed.pop(key, None)
        for _site, sensor, _agent in sensors:
            self._touched[(_site, sensor)] = touched_now
        for agent_key in agents_due:
            self._agents_touched[agent_key] = touched_now
        for d in dead:
            if d.agent_id and d.site_id and d.seq is not None:
                result.ack_for(d.agent_id, d.site_id, d.incarnation).rejected.append((d.seq, d.reason))
        result.dead = len(dead)
        elapsed = (time.perf_counter() - started) * 1000
        with self.stats._lock:
            s = self.stats
            s.transactions += 1
            s.committed += result.new
            s.duplicates += result.duplicates
            s.seq_conflicts += result.conflicts
            s.readings += result.readings
            s.alert_events += len(new_ev)
            s.statuses += sum(isinstance(m, Status) for m in others)
            s.heartbeats += sum(isinstance(m, Heartbeat) for m in others)
            s.announces += sum(isinstance(m, Announce) for m in others)
            for d in dead:
                s.dead_letters[d.reason] += 1
            s.quarantined += result.quarantined
            s.quarantined_by_reason.update(result.quarantined_by_reason)
            s.clears_without_open_alert += stray_clears
            if result.rejected_device:
                s.dead_letters["device_rejected"] += result.rejected_device
            s.last_commit_ms = elapsed
        return result

    def _clock_signals(
        self, others: list[BaseModel], dead: list[_Dead], now: datetime
    ) -> dict[tuple[str, str], tuple[float, bool]]:
        """(site, agent) → (clock offset, skewed?) from this transaction's heartbeats and clock letters."""
        out: dict[tuple[str, str], tuple[float, bool]] = {}
        for msg in others:
            if isinstance(msg, Heartbeat):
                offset, skewed = heartbeat_offset(msg, now, self.clock_skew_max_s)
                out[(msg.site_id, msg.agent_id)] = (offset, skewed)
                if skewed:
                    with self.stats._lock:
                        self.stats.clock_skewed += 1
        for d in dead:
            if d.reason in (CLOCK_AHEAD, CLOCK_BEHIND) and d.site_id and d.agent_id and d.offset_s is not None:
                out[(d.site_id, d.agent_id)] = (d.offset_s, True)
        return out

    def _mark_if_skewed(self, batch: TelemetryBatch | FastBatch) -> TelemetryBatch | FastBatch:
        """Readings of an agent whose clock is off are stored as ``uncertain`` (their time is not to be trusted)."""
        if (batch.site_id, batch.agent_id) not in self.skewed:
            return batch
        if isinstance(batch, FastBatch):
            readings = [
                msgspec.structs.replace(r, quality="uncertain") if r.quality == "good" else r for r in batch.readings
            ]
            return msgspec.structs.replace(batch, readings=readings)
        marked = [
            r.model_copy(update={"quality": Quality.UNCERTAIN}) if r.quality is Quality.GOOD else r
            for r in batch.readings
        ]
        return batch.model_copy(update={"readings": marked})

    def _store(self, conn: Connection, batches: list[TelemetryBatch | FastBatch]) -> int:
        connection = conn if self.store.transactional else None
        fast = [b for b in batches if isinstance(b, FastBatch)]
        slow = [b for b in batches if not isinstance(b, FastBatch)]
        n = 0
        if fast:
            assert self._fast is not None
            n += self.store.write_decoded(  # type: ignore[attr-defined]
                fast, self._fast.instant, connection=connection
            )
        if slow:
            n += self.store.write_batches(slow, connection=connection)
        return n

    def _claim(
        self,
        conn: Connection,
        telemetry: list[TelemetryBatch | FastBatch],
        events: list[AlertEvent],
        now: datetime,
        result: CommitResult,
        by_message: dict[int, _Decoded],
        conflicts: list[_Dead],
    ) -> tuple[list[TelemetryBatch | FastBatch], list[AlertEvent]]:
        """Insert (site, agent, incarnation, seq) into the ledger; keep the messages that were not there yet.

        A key already there with another payload digest is a seq conflict: appended to ``conflicts`` (a dead
        letter), neither stored nor acked as committed."""
        items: list[TelemetryBatch | FastBatch | AlertEvent] = [*telemetry, *events]
        if not items:
            return [], []
        digests = [payload_digest(by_message[id(m)].payload) for m in items]
        fresh: list[bool]
        if self._sqlite:
            stamp = now.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
            cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
            sql = (
                "INSERT OR IGNORE INTO ingest_seq (agent_id, seq, site_id, incarnation, kind, committed_at, digest) "
                "VALUES (?,?,?,?,?,?,?)"
            )
            fresh = []
            try:
                for m, digest in zip(items, digests, strict=True):
                    cursor.execute(sql, (m.agent_id, m.seq, m.site_id, m.incarnation or "", m.kind, stamp, digest))
                    fresh.append(cursor.rowcount == 1)
            finally:
                cursor.close()
        else:
            table = IngestSeq.__table__  # type: ignore[attr-defined]
            insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
            # in key order: two workers claiming overlapping keys wait for each other instead of deadlocking
            values = [
                {
                    "agent_id": m.agent_id,
                    "seq": m.seq,
                    "site_id": m.site_id,
                    "incarnation": m.incarnation or "",
                    "kind": m.kind,
                    "committed_at": now,
                    "digest": d,
                }
                for m, d in sorted(
                    zip(items, digests, strict=True),
                    key=lambda p: (p[0].site_id, p[0].agent_id, p[0].incarnation or "", p[0].seq),
                )
            ]
            stmt = (
                insert(table)
                .values(values)
                .on_conflict_do_nothing()
                .returning(table.c.site_id, table.c.agent_id, table.c.incarnation, table.c.seq)
            )
            claimed = {(site, a, i, s) for site, a, i, s in conn.execute(stmt).all()}
            seen: set[tuple[str, str, str, int]] = set()
            fresh = []
            for m in items:
                key = (m.site_id, m.agent_id, m.incarnation or "", m.seq)
                fresh.append(key in claimed and key not in seen)
                seen.add(key)
        new_tel: list[TelemetryBatch | FastBatch] = []
        new_ev: list[AlertEvent] = []
        for m, is_new, digest in zip(items, fresh, digests, strict=True):
            if not is_new:
                stored = self._stored_digest(conn, m)
                if stored is not None and stored != digest:
                    conflicts.append(self._conflict(by_message[id(m)], m, stored, digest))
                    result.conflicts += 1
                    continue
            result.ack_for(m.agent_id, m.site_id, m.incarnation).committed.append(m.seq)
            if is_new:
                result.new += 1
                if isinstance(m, AlertEvent):
                    new_ev.append(m)
                else:
                    new_tel.append(m)
            else:
                result.duplicates += 1
        return new_tel, new_ev

    @staticmethod
    def _stored_digest(conn: Connection, m: TelemetryBatch | FastBatch | AlertEvent) -> bytes | None:
        table = IngestSeq.__table__  # type: ignore[attr-defined]
        row = conn.execute(
            select(table.c.digest).where(
                table.c.site_id == m.site_id,
                table.c.agent_id == m.agent_id,
                table.c.incarnation == (m.incarnation or ""),
                table.c.seq == m.seq,
            )
        ).first()
        return None if row is None or row[0] is None else bytes(row[0])

    def _conflict(
        self, item: _Decoded, m: TelemetryBatch | FastBatch | AlertEvent, stored: bytes, digest: bytes
    ) -> _Dead:
        incarnation = m.incarnation or ""
        detail = (
            f"seq {m.seq} of agent {m.site_id}/{m.agent_id} (incarnation {incarnation or '未声明'}) was already "
            f"committed with another payload (stored {stored.hex()}, this one {digest.hex()}): the agent's sequence "
            "went backwards under the same incarnation (data dir restored from a copy, or two boxes with the same "
            "ids). Kept here for a replay once the agent is sorted out."
        )
        log.error("seq conflict: %s", detail)
        return _Dead(item.topic, SEQ_CONFLICT, detail, bytes(item.payload), m.agent_id, m.seq, m.site_id, m.incarnation)

    def _announce(self, session: Session, msg: Announce) -> None:
        if self._announce_hook is not None:
            self._announce_hook(session, msg)
        else:
            session.add(PendingAnnounce(site_id=msg.site_id, agent_id=msg.agent_id, payload=msg.model_dump_json()))

    @staticmethod
    def _insert_dead(conn: Connection, dead: list[_Dead], now: datetime) -> None:
        table = DeadLetter.__table__  # type: ignore[attr-defined]
        conn.execute(
            table.insert(),
            [
                {
                    "topic": d.topic[:512],
                    "reason": d.reason,
                    "detail": d.detail,
                    "payload": d.payload,
                    "agent_id": d.agent_id,
                    "seq": d.seq,
                    "incarnation": d.incarnation,
                    "received_at": now,
                }
                for d in dead
            ],
        )


def raise_seq_conflict(session: Session, dead: _Dead, now: datetime) -> None:
    """The admins' signal of a seq conflict: a cloud alert on the agent (→ clue, notification, fleet view)."""
    assert dead.site_id and dead.agent_id
    apply_signal(
        session,
        AlertSignal(
            site_id=dead.site_id,
            device_id=dead.agent_id,
            rule_id=SEQ_CONFLICT,
            phase=AlertPhase.RAISE,
            severity="major",
            category="fleet",
            message=f"边缘代理 {dead.agent_id} 的序号 {dead.seq} 重复但内容不同（序号回退），"
            "消息已进入死信，请检查是否有两台设备使用同一身份或数据目录被旧副本覆盖",
            ts=now,
            started_at=now,
            agent_id=dead.agent_id,
            source=AlertSource.CLOUD,
        ),
    )


def _merge(total: CommitResult, part: CommitResult) -> None:
    for (_site, agent, _inc), ack in part.acks.items():
        into = total.ack_for(agent, ack.site_id, ack.incarnation)
        into.committed.extend(ack.committed)
        into.rejected.extend(ack.rejected)
    total.new += part.new
    total.duplicates += part.duplicates
    total.conflicts += part.conflicts
    total.readings += part.readings
    total.dead += part.dead
    total.commands_due = total.commands_due or part.commands_due


def seq_ranges(seqs: list[int]) -> list[tuple[int, int]]:
    """Sorted, merged inclusive ranges of ``seqs``."""
    out: list[tuple[int, int]] = []
    for s in sorted(set(seqs)):
        if out and s == out[-1][1] + 1:
            out[-1] = (out[-1][0], s)
        else:
            out.append((s, s))
    return out
