"""Content-addressed evidence storage (camera snapshots) under ``<data_dir>/evidence``.

A blob is stored under its SHA-256: ``evidence/ab/cd/abcd…``. The hash is verified on upload, so a
blob can never be stored under a name that does not match its content; uploading the same content
again is a no-op (dedupe). Files are written to a temporary name and renamed into place, so a
reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
MAX_EVIDENCE_BYTES = 20 * 1024 * 1024

_MAGIC: list[tuple[bytes, str]] = [
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\x1aE\xdf\xa3", "video/webm"),  # EBML: the edge's VP8 evidence clips
]


class EvidenceError(ValueError):
    """An upload is refused; ``reason`` is a short code (bad_hash, hash_mismatch, too_large, empty)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class StoredEvidence:
    sha256: str
    size: int
    content_type: str
    created: bool
    """False when the blob was already there."""


def sniff_content_type(data: bytes) -> str:
    for magic, content_type in _MAGIC:
        if data.startswith(magic):
            return content_type
    if data[:4] == b"RIFF" and data[8:12] == b"AVI ":
        return "video/x-msvideo"  # MJPEG clips
    return "application/octet-stream"


class EvidenceStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, sha256: str) -> Path:
        if not SHA256_RE.match(sha256):
            raise EvidenceError("bad_hash", f"{sha256!r} is not a lower-case hex SHA-256")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, sha256: str, data: bytes) -> StoredEvidence:
        path = self.path_for(sha256)
        if not data:
            raise EvidenceError("empty", "empty upload")
        if len(data) > MAX_EVIDENCE_BYTES:
            raise EvidenceError("too_large", f"{len(data)} bytes exceeds {MAX_EVIDENCE_BYTES}")
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise EvidenceError("hash_mismatch", f"content hashes to {actual}, not {sha256}")
        content_type = sniff_content_type(data)
        if path.exists():
            return StoredEvidence(sha256, len(data), content_type, created=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return StoredEvidence(sha256, len(data), content_type, created=True)

    def get(self, sha256: str) -> bytes | None:
        path = self.path_for(sha256)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def exists(self, sha256: str) -> bool:
        return self.path_for(sha256).is_file()
