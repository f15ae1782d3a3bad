"""Audit on top of THE journal (:mod:`cloud.journal`): query, verify with a readable verdict, export for auditors.

* :func:`verify` walks the hash chain and names the first bad row: an edited row (content ≠ hash) is named
  directly; an edited-and-rehashed or deleted row shows as the next row not linking to its predecessor, and the
  message names both ids. An *anchor* (id + hash noted earlier, e.g. in a backup manifest or printed by
  ``sentinel audit anchor``) also detects truncation of the newest rows.
* :func:`export_lines` yields CSV (UTF-8 with BOM, opens in Excel) or JSON Lines with the hashes, so an auditor
  can re-verify the chain offline; the export itself is journaled by the caller (``audit.exported``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement
from sqlmodel import Session, col, select

from cloud.journal import JournalEvent, event_hash, latest_purge
from cloud.journal import verify as chain_verify

ExportFormat = Literal["csv", "jsonl"]
COLUMNS = ("id", "ts", "actor", "action", "target_type", "target_id", "outcome", "payload", "prev_hash", "hash")


@dataclass(frozen=True)
class Verdict:
    ok: bool
    checked: int
    bad_row: int | None
    message: str
    head_id: int | None = None
    head_hash: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "bad_row": self.bad_row,
            "message": self.message,
            "head_id": self.head_id,
            "head_hash": self.head_hash,
        }


def head(session: Session) -> tuple[int | None, str | None]:
    row = session.exec(select(JournalEvent.id, JournalEvent.hash).order_by(col(JournalEvent.id).desc())).first()
    return (row[0], row[1]) if row else (None, None)


def verify(session: Session, *, anchor: tuple[int, str] | None = None) -> Verdict:
    result = chain_verify(session)
    head_id, head_hash = head(session)
    if not result.ok:
        bad = result.first_bad_id
        if "purge" in result.reason:
            message = (
                f"清理记录（至第 {bad} 行）在日志中没有对应的 audit.purged 事件：清理记录是伪造的 "
                f"(a purge record through row {bad} has no audit.purged event in the chain: it was forged)"
            )
            return Verdict(False, result.checked, bad, message, head_id, head_hash)
        if "link" in result.reason and bad is not None:
            prev = session.exec(
                select(JournalEvent).where(col(JournalEvent.id) < bad).order_by(col(JournalEvent.id).desc())
            ).first()
            if prev is not None and event_hash(prev) == prev.hash:
                message = (
                    f"日志第 {bad} 行与前一行（第 {prev.id} 行）的链接不符：第 {prev.id} 行被改写后重算了哈希，"
                    f"或二者之间的行被删除 (row {bad} does not link to row {prev.id}: row {prev.id} was rewritten "
                    "and re-hashed, or rows between them were deleted)"
                )
                return Verdict(False, result.checked, prev.id, message, head_id, head_hash)
            message = f"日志第 {bad} 行与前一行的链接不符 (row {bad} does not link to its predecessor)"
        else:
            message = (
                f"日志第 {bad} 行内容与其哈希不符，已被篡改 (row {bad} was altered: content does not match its hash)"
            )
        return Verdict(False, result.checked, bad, message, head_id, head_hash)
    if anchor is not None:
        anchor_id, anchor_hash = anchor
        row = session.get(JournalEvent, anchor_id)
        purge = latest_purge(session)
        if row is None and purge is not None and anchor_id <= purge.through_id:
            pass  # removed by a recorded retention purge: the chain now starts from that purge's anchor
        elif row is None or row.hash != anchor_hash:
            message = (
                f"锚点第 {anchor_id} 行缺失或不符：日志被截断或重建 (anchor row {anchor_id} missing or different: "
                "the journal was truncated or rebuilt)"
            )
            return Verdict(False, result.checked, anchor_id, message, head_id, head_hash)
    return Verdict(
        True, result.checked, None, f"日志完整，共校验 {result.checked} 行 (chain intact)", head_id, head_hash
    )


def _conditions(
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    actor: str | None = None,
    action: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    outcome: str | None = None,
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if since is not None:
        conditions.append(col(JournalEvent.ts) >= since)
    if until is not None:
        conditions.append(col(JournalEvent.ts) < until)
    if actor:
        conditions.append(col(JournalEvent.actor) == actor)
    if action:
        conditions.append(
            col(JournalEvent.action).startswith(action[:-1])
            if action.endswith("*")
            else col(JournalEvent.action) == action
        )
    if target_type:
        conditions.append(col(JournalEvent.target_type) == target_type)
    if target_id:
        conditions.append(col(JournalEvent.target_id) == target_id)
    if outcome:
        conditions.append(col(JournalEvent.outcome) == outcome)
    return conditions


def query(session: Session, *, offset: int = 0, limit: int = 100, **filters: Any) -> list[JournalEvent]:
    stmt = select(JournalEvent).where(*_conditions(**filters)).order_by(col(JournalEvent.id).desc())
    return list(session.exec(stmt.offset(offset).limit(limit)))


def row_dict(event: JournalEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "ts": event.ts.isoformat(),
        "actor": event.actor,
        "action": event.action,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "outcome": event.outcome,
        "payload": event.payload,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def export_lines(session: Session, fmt: ExportFormat = "csv", *, batch: int = 2000, **filters: Any) -> Iterator[str]:
    conditions = _conditions(**filters)
    if fmt == "csv":
        yield "\ufeff" + ",".join(COLUMNS) + "\r\n"
    last = 0
    while True:
        rows = list(
            session.exec(
                select(JournalEvent)
                .where(col(JournalEvent.id) > last, *conditions)
                .order_by(col(JournalEvent.id))
                .limit(batch)
            )
        )
        if not rows:
            return
        for event in rows:
            data = row_dict(event)
            if fmt == "jsonl":
                yield json.dumps(data, ensure_ascii=False) + "\n"
            else:
                buf = io.StringIO()
                data["payload"] = json.dumps(data["payload"], ensure_ascii=False, sort_keys=True)
                csv.writer(buf).writerow([data[c] for c in COLUMNS])
                yield buf.getvalue()
        last = rows[-1].id or last
