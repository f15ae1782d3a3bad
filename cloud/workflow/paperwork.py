"""Legal documents of the workflow: numbered, rendered to PDF, stored content-addressed, signed, verified.

* PDFs are stored like evidence (:class:`cloud.evidence.EvidenceStore`) under ``<data_dir>/documents``: the name
  is the SHA-256, so a stored document cannot change without its name changing.
* The bureau's Ed25519 key is generated on first use into ``<data_dir>/keys/bureau-signing.pem`` (0600, optional
  passphrase from ``SENTINEL_SIGNING_PASSPHRASE``); its public key is served by the API so anyone can verify.
* Each signature is a :class:`~cloud.signing.SignatureRecord` naming the signing person (journal:
  ``document.generated``, ``document.signed``).
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlmodel import Session, col, select

from cloud.core.config import Settings
from cloud.core.db import utcnow
from cloud.documents import document_sha256, render_pdf
from cloud.documents.models import DocumentData
from cloud.evidence import EvidenceStore
from cloud.signing import (
    SignatureInvalid,
    SignatureRecord,
    Signer,
    SigningKey,
    generate_key_file,
    load_signing_key,
    sign_document,
    verify_signature,
)
from cloud.workflow.config import workflow_rules
from cloud.workflow.models import DocumentCounter, DocumentRecord, DocumentSignature
from cloud.workflow.service import Actor, NotFound, record

BEIJING = ZoneInfo("Asia/Shanghai")
_key_lock = threading.Lock()


#: printed after a due date computed on a calendar year without official holiday data (2027 fallback …)
PROVISIONAL_MARK = "（预计，以官方公布为准）"


def due_text(due: str | dt.date | None, warnings: list[str] | tuple[str, ...] | None) -> str:
    """A due date as a document prints it: ``2027-01-05（预计，以官方公布为准）`` when the calendar behind it is not
    official (``warnings`` of the :class:`~cloud.workflow.deadlines.Deadline`), else the bare date."""
    if not due:
        return ""
    text = due.isoformat() if isinstance(due, dt.date) else due
    return f"{text}{PROVISIONAL_MARK}" if warnings else text


def today() -> dt.date:
    return dt.datetime.now(BEIJING).date()


def document_store(settings: Settings) -> EvidenceStore:
    return EvidenceStore(settings.data_dir / "documents")


def key_path(settings: Settings) -> Path:
    return settings.data_dir / "keys" / "bureau-signing.pem"


def bureau_key(settings: Settings) -> SigningKey:
    """The bureau's signing key, generated on first use."""
    path = key_path(settings)
    passphrase = os.environ.get("SENTINEL_SIGNING_PASSPHRASE")
    secret = passphrase.encode() if passphrase else None
    with _key_lock:
        if not path.exists():
            try:
                return generate_key_file(path, passphrase=secret)
            except FileExistsError:  # another process created it first
                pass
        return load_signing_key(path, passphrase=secret)


def next_doc_no(session: Session, kind: str, year: int) -> str:
    key = f"{kind}:{year}"
    if session.get(DocumentCounter, key) is None:
        session.add(DocumentCounter(key=key, last=0))
        session.flush()
    session.execute(
        update(DocumentCounter).where(col(DocumentCounter.key) == key).values(last=DocumentCounter.last + 1)
    )
    counter = session.get(DocumentCounter, key)
    assert counter is not None
    session.refresh(counter)
    return workflow_rules().bureau.doc_no(kind, year, counter.last)


def store_document(
    session: Session,
    settings: Settings,
    data: DocumentData,
    actor: Actor,
    *,
    task_id: int | None = None,
    case_id: int | None = None,
    clue_id: int | None = None,
) -> DocumentRecord:
    pdf = render_pdf(data)
    sha = document_sha256(pdf)
    document_store(settings).put(sha, pdf)
    row = DocumentRecord(
        kind=data.template,
        title=data.title,
        doc_no=data.doc_no,
        sha256=sha,
        size=len(pdf),
        task_id=task_id,
        case_id=case_id,
        clue_id=clue_id,
        data=data.model_dump(mode="json"),
        created_by=actor.username,
    )
    session.add(row)
    session.flush()
    record(
        session,
        actor,
        "document.generated",
        "document",
        row.id or 0,
        {
            "kind": row.kind,
            "doc_no": row.doc_no,
            "sha256": sha,
            "task_id": task_id,
            "case_id": case_id,
            "clue_id": clue_id,
        },
    )
    return row


def document_bytes(settings: Settings, doc: DocumentRecord) -> bytes:
    data = document_store(settings).get(doc.sha256)
    if data is None:
        raise NotFound(f"文书文件缺失（{doc.sha256[:12]}…）/ document file missing")
    return data


def sign(session: Session, settings: Settings, doc: DocumentRecord, actor: Actor, role: str) -> DocumentSignature:
    pdf = document_bytes(settings, doc)
    signer = Signer(user_id=actor.username, name=actor.name[:50] or actor.username, role=role)
    sig = sign_document(pdf, bureau_key(settings), signer, at=utcnow())
    row = DocumentSignature(
        document_id=doc.id or 0, record=sig.model_dump(mode="json"), signed_by=actor.username, signed_at=sig.signed_at
    )
    session.add(row)
    session.flush()
    record(
        session,
        actor,
        "document.signed",
        "document",
        doc.id or 0,
        {"doc_no": doc.doc_no, "kind": doc.kind, "role": role, "key_id": sig.key_id, "sha256": sig.document_sha256},
    )
    return row


def signatures(session: Session, document_id: int) -> list[DocumentSignature]:
    return list(
        session.exec(
            select(DocumentSignature)
            .where(DocumentSignature.document_id == document_id)
            .order_by(col(DocumentSignature.id))
        )
    )


def verify(session: Session, settings: Settings, doc: DocumentRecord, pdf: bytes) -> dict[str, Any]:
    """Verify ``pdf`` against the document's stored signatures with the bureau's public key."""
    trusted = bureau_key(settings).public_key
    results: list[dict[str, Any]] = []
    for sig in signatures(session, doc.id or 0):
        rec = SignatureRecord.model_validate(sig.record)
        try:
            verify_signature(pdf, rec, trusted)
            results.append({"signer": rec.signer.name, "role": rec.signer.role, "valid": True, "reason": None})
        except SignatureInvalid as exc:
            results.append({"signer": rec.signer.name, "role": rec.signer.role, "valid": False, "reason": exc.reason})
    valid = bool(results) and all(r["valid"] for r in results)
    matches = document_sha256(pdf) == doc.sha256
    return {
        "document_id": doc.id,
        "doc_no": doc.doc_no,
        "valid": valid and matches,
        "sha256": document_sha256(pdf),
        "expected_sha256": doc.sha256,
        "signatures": results,
        "reason": None if valid and matches else ("unsigned" if not results else "hash_mismatch"),
    }
