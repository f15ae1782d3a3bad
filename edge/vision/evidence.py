"""Evidence on the edge: a bounded snapshot directory, a durable upload queue and the uploader.

* :class:`EvidenceStore` keeps JPEG snapshots content-addressed (``<dir>/ab/<sha256>.jpg``) within a
  retention limit (bytes and count). Over the limit it removes the oldest *uploaded* snapshots first
  and only then, with a warning, the oldest pending ones: the disk is protected either way.
* :class:`UploadQueue` is a small SQLite table of pending uploads (hash, attempts, next try), so a
  restart loses nothing; per-item exponential back-off.
* :class:`EvidenceUploader` PUTs each pending blob to ``{cloud}/api/v1/evidence/{sha256}`` with the
  agent's bearer token (httpx, async). The cloud verifies the hash and dedupes, so a retry after a lost
  response is harmless.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from protocols.messages import EvidenceRef

if TYPE_CHECKING:
    from edge.vision.snapshot import Snapshot

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS evidence_upload (
    sha256 TEXT PRIMARY KEY,
    content_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try REAL NOT NULL,
    last_error TEXT
);
"""


@dataclass(frozen=True, slots=True)
class PendingUpload:
    sha256: str
    content_type: str
    size: int
    attempts: int


class UploadQueue:
    """Pending uploads in SQLite (WAL); safe to use from several threads."""

    def __init__(self, path: Path, *, backoff_s: float = 2.0, backoff_max_s: float = 600.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._backoff, self._backoff_max = backoff_s, backoff_max_s

    def add(self, sha256: str, size: int, content_type: str = "image/jpeg") -> None:
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO evidence_upload (sha256, content_type, size, created, next_try) "
                "VALUES (?,?,?,?,?)",
                (sha256, content_type, size, now, now),
            )

    def due(self, limit: int = 20, now: float | None = None) -> list[PendingUpload]:
        with self._lock:
            rows = self._db.execute(
                "SELECT sha256, content_type, size, attempts FROM evidence_upload WHERE next_try <= ? "
                "ORDER BY created LIMIT ?",
                (time.time() if now is None else now, limit),
            ).fetchall()
        return [PendingUpload(*r) for r in rows]

    def done(self, sha256: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM evidence_upload WHERE sha256 = ?", (sha256,))

    remove = done

    def failed(self, sha256: str, error: str, *, at_least_s: float = 0.0) -> None:
        with self._lock:
            row = self._db.execute("SELECT attempts FROM evidence_upload WHERE sha256 = ?", (sha256,)).fetchone()
            if row is None:
                return
            attempts = row[0] + 1
            delay = max(at_least_s, min(self._backoff_max, self._backoff * 2 ** min(attempts - 1, 20)))
            self._db.execute(
                "UPDATE evidence_upload SET attempts = ?, next_try = ?, last_error = ? WHERE sha256 = ?",
                (attempts, time.time() + delay, error[:500], sha256),
            )

    def contains(self, sha256: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM evidence_upload WHERE sha256 = ?", (sha256,)).fetchone() is not None

    def depth(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM evidence_upload").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


SUFFIXES = {"image/jpeg": ".jpg", "video/webm": ".webm", "video/x-msvideo": ".avi"}


class EvidenceStore:
    """Snapshots and clips on the edge's disk, content-addressed, within a retention limit."""

    def __init__(self, directory: Path, *, max_bytes: int, max_count: int, queue: UploadQueue | None = None) -> None:
        self.directory = directory
        self.max_bytes, self.max_count = max_bytes, max_count
        self.queue = queue
        self._lock = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True)
        self._index: dict[str, tuple[float, int]] = {}
        self._suffix: dict[str, str] = {}
        for suffix in SUFFIXES.values():
            for path in directory.glob(f"*/*{suffix}"):
                st = path.stat()
                self._index[path.stem] = (st.st_mtime, st.st_size)
                self._suffix[path.stem] = suffix
        self.evicted = 0

    def path_for(self, sha256: str, suffix: str | None = None) -> Path:
        return self.directory / sha256[:2] / f"{sha256}{suffix or self._suffix.get(sha256, '.jpg')}"

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self._index.values())

    def __len__(self) -> int:
        return len(self._index)

    def put(self, snapshot: Snapshot, label: str | None = None) -> EvidenceRef:
        """Store a snapshot, queue its upload, enforce retention; returns the alert's evidence reference."""
        return self.put_blob(snapshot.jpeg, "image/jpeg", label, sha256=snapshot.sha256)

    def put_clip(self, data: bytes, content_type: str, label: str | None = None) -> EvidenceRef:
        """Store a video clip (``video/webm`` or ``video/x-msvideo``) like a snapshot."""
        return self.put_blob(data, content_type, label)

    def put_blob(self, data: bytes, content_type: str, label: str | None, *, sha256: str | None = None) -> EvidenceRef:
        sha = sha256 or hashlib.sha256(data).hexdigest()
        suffix = SUFFIXES.get(content_type, ".bin")
        path = self.path_for(sha, suffix)
        with self._lock:
            if sha not in self._index:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".snap-")
                try:
                    with os.fdopen(fd, "wb") as fh:
                        fh.write(data)
                    os.replace(tmp, path)
                except BaseException:
                    Path(tmp).unlink(missing_ok=True)
                    raise
                self._index[sha] = (time.time(), len(data))
                self._suffix[sha] = suffix
                if self.queue is not None:
                    self.queue.add(sha, len(data), content_type)
                self._enforce_retention(keep=sha)
        return EvidenceRef(sha256=sha, size=len(data), content_type=content_type, label=(label or None) and label[:64])

    def read(self, sha256: str) -> bytes | None:
        try:
            return self.path_for(sha256).read_bytes()
        except FileNotFoundError:
            return None

    def _enforce_retention(self, keep: str) -> None:
        total = self.total_bytes
        if total <= self.max_bytes and len(self._index) <= self.max_count:
            return
        pending = self.queue.contains if self.queue is not None else (lambda _sha: False)
        by_age = sorted((mtime, sha) for sha, (mtime, _) in self._index.items() if sha != keep)
        order = [sha for _, sha in by_age if not pending(sha)] + [sha for _, sha in by_age if pending(sha)]
        for sha in order:
            if total <= self.max_bytes and len(self._index) <= self.max_count:
                break
            if pending(sha):
                log.warning("evidence retention: dropping %s before it was uploaded (disk limit)", sha)
                assert self.queue is not None
                self.queue.remove(sha)
            path = self.path_for(sha)
            total -= self._index.pop(sha)[1]
            self._suffix.pop(sha, None)
            path.unlink(missing_ok=True)
            self.evicted += 1


class EvidenceUploader:
    """Uploads pending evidence to the cloud; owned by the agent (``await uploader.run(stop)``)."""

    def __init__(
        self,
        store: EvidenceStore,
        queue: UploadQueue,
        base_url: str,
        token: Callable[[], str | None],
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_s: float = 20.0,
    ) -> None:
        self.store, self.queue = store, queue
        self._base = base_url.rstrip("/")
        self._token = token
        self._transport = transport
        self._timeout = timeout_s
        self.uploaded = 0
        self._failing = False

    async def upload_due(self, client: httpx.AsyncClient | None = None) -> int:
        """One pass over the due uploads; returns how many the cloud now has."""
        if client is None:
            async with httpx.AsyncClient(transport=self._transport, timeout=self._timeout) as own:
                return await self.upload_due(own)
        done = 0
        for item in self.queue.due():
            data = self.store.read(item.sha256)
            if data is None:
                self.queue.remove(item.sha256)  # evicted by retention meanwhile
                continue
            if hashlib.sha256(data).hexdigest() != item.sha256:
                log.error("evidence %s is corrupt on disk; not uploading it", item.sha256)
                self.queue.remove(item.sha256)
                continue
            token = self._token()
            headers = {"Content-Type": item.content_type}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            try:
                resp = await client.put(f"{self._base}/api/v1/evidence/{item.sha256}", content=data, headers=headers)
            except httpx.HTTPError as exc:
                self._fail(item.sha256, f"network: {exc!r}")
                break  # the cloud is unreachable: try the rest later
            if resp.status_code in (200, 201):
                self.queue.done(item.sha256)
                self.uploaded += 1
                done += 1
                if self._failing:
                    log.info("evidence upload works again")
                    self._failing = False
            elif resp.status_code in (401, 403):
                self._fail(item.sha256, f"HTTP {resp.status_code}: check the agent token", at_least_s=60)
                break
            else:
                self._fail(item.sha256, f"HTTP {resp.status_code}: {resp.text[:200]}")
        return done

    def _fail(self, sha256: str, error: str, at_least_s: float = 0.0) -> None:
        if not self._failing:
            log.error("evidence upload failed (%s); retrying with back-off", error)
            self._failing = True
        self.queue.failed(sha256, error, at_least_s=at_least_s)

    async def run(self, stop: asyncio.Event, interval_s: float = 2.0) -> None:
        async with httpx.AsyncClient(transport=self._transport, timeout=self._timeout) as client:
            while not stop.is_set():
                try:
                    await self.upload_due(client)
                except Exception:  # never let the uploader die
                    log.exception("evidence uploader pass failed")
                try:
                    await asyncio.wait_for(stop.wait(), timeout=interval_s)
                except TimeoutError:
                    pass
