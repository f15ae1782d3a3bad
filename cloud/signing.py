"""Electronic signatures (电子签名) on generated documents: Ed25519 over the document's SHA-256.

What is signed is not the bare hash but a canonical statement binding the hash to the signer, the key and the
time, so that a signature cannot be re-attributed to another person or moment::

    market-sentinel-signature-v1
    {"document_sha256": "...", "key_id": "...", "signed_at": "2026-03-02T10:50:00+08:00", "signer": {...}}

(the JSON is canonical: sorted keys, no spaces, UTF-8). Anyone with the public key can verify a record against
the document bytes with :func:`verify_signature`; the public key travels in the record (base64) and its
``key_id`` (first 16 hex digits of SHA-256 over the raw public key) must match the key the verifier trusts.

Keys are PKCS#8 PEM files (optionally encrypted with a passphrase) created by :func:`generate_key_file` with
mode 0600; the public key is written next to it as ``<name>.pub.pem``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

__all__ = [
    "DOMAIN_TAG",
    "SignatureInvalid",
    "SignatureRecord",
    "Signer",
    "SigningKey",
    "generate_key_file",
    "key_id_of",
    "load_public_key",
    "load_signing_key",
    "sign_document",
    "verify_signature",
]

DOMAIN_TAG = b"market-sentinel-signature-v1\n"
ALGORITHM = "Ed25519"


class SignatureInvalid(ValueError):
    """Verification failed; ``reason`` is ``hash_mismatch``, ``bad_signature``, ``key_mismatch`` or ``malformed``."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}")


class Signer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    user_id: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=50)
    role: str = Field(min_length=1, max_length=40)


class SignatureRecord(BaseModel):
    """What is stored (and journaled) for one signature."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    algorithm: str = ALGORITHM
    signer: Signer
    key_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    public_key: str = Field(description="raw Ed25519 public key, base64")
    signed_at: AwareDatetime
    document_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    signature: str = Field(description="Ed25519 signature over the canonical statement, base64")


def key_id_of(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class SigningKey:
    private_key: Ed25519PrivateKey
    key_id: str

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    def public_pem(self) -> bytes:
        return self.public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _encryption(passphrase: bytes | None) -> serialization.KeySerializationEncryption:
    if passphrase:
        return serialization.BestAvailableEncryption(passphrase)
    return serialization.NoEncryption()


def generate_key_file(path: Path, *, passphrase: bytes | None = None, overwrite: bool = False) -> SigningKey:
    """Create a new Ed25519 key at ``path`` (0600) and its public key at ``<stem>.pub.pem``."""
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; refusing to replace a signing key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, _encryption(passphrase))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    signing = SigningKey(key, key_id_of(key.public_key()))
    path.with_name(path.stem + ".pub.pem").write_bytes(signing.public_pem())
    return signing


def load_signing_key(path: Path, *, passphrase: bytes | None = None) -> SigningKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=passphrase)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not a usable private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 key")
    return SigningKey(key, key_id_of(key.public_key()))


def load_public_key(data: bytes | str) -> Ed25519PublicKey:
    """A public key from PEM bytes or a raw base64 string (as in :attr:`SignatureRecord.public_key`)."""
    if isinstance(data, bytes) and data.lstrip().startswith(b"-----BEGIN"):
        key = serialization.load_pem_public_key(data)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        return key
    raw = base64.b64decode(data, validate=True)
    return Ed25519PublicKey.from_public_bytes(raw)


def _statement(document_sha256: str, key_id: str, signed_at: dt.datetime, signer: Signer) -> bytes:
    body = {
        "document_sha256": document_sha256,
        "key_id": key_id,
        "signed_at": signed_at.isoformat(),
        "signer": signer.model_dump(),
    }
    return DOMAIN_TAG + json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_document(document: bytes, key: SigningKey, signer: Signer, *, at: dt.datetime) -> SignatureRecord:
    """Sign ``document`` (e.g. PDF bytes) as ``signer`` at ``at`` (timezone-aware)."""
    if at.tzinfo is None:
        raise ValueError("signing time must be timezone-aware")
    digest = hashlib.sha256(document).hexdigest()
    signature = key.private_key.sign(_statement(digest, key.key_id, at, signer))
    raw_public = key.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return SignatureRecord(
        signer=signer,
        key_id=key.key_id,
        public_key=base64.b64encode(raw_public).decode(),
        signed_at=at,
        document_sha256=digest,
        signature=base64.b64encode(signature).decode(),
    )


def verify_signature(document: bytes, record: SignatureRecord, trusted_key: Ed25519PublicKey | None = None) -> None:
    """Raise :class:`SignatureInvalid` unless ``record`` is a valid signature over ``document``.

    With ``trusted_key`` the record's embedded key must be that key (otherwise anyone could sign with a key of
    their own); without it, only the internal consistency and the signature are checked.
    """
    if record.algorithm != ALGORITHM:
        raise SignatureInvalid("malformed", f"unsupported algorithm {record.algorithm!r}")
    try:
        embedded = load_public_key(record.public_key)
        signature = base64.b64decode(record.signature, validate=True)
    except ValueError as exc:
        raise SignatureInvalid("malformed", str(exc)) from exc
    if key_id_of(embedded) != record.key_id:
        raise SignatureInvalid("key_mismatch", "key_id does not match the embedded public key")
    if trusted_key is not None and key_id_of(trusted_key) != record.key_id:
        raise SignatureInvalid("key_mismatch", f"signed with key {record.key_id}, not the trusted key")
    digest = hashlib.sha256(document).hexdigest()
    if digest != record.document_sha256:
        raise SignatureInvalid("hash_mismatch", "文书内容已被修改 / the document differs from the signed one")
    try:
        embedded.verify(signature, _statement(digest, record.key_id, record.signed_at, record.signer))
    except InvalidSignature:
        raise SignatureInvalid("bad_signature", "签名无效 / signature does not match the record") from None
