"""Online, consistent backup and restore of a cloud instance (GB/T 29765; GSP: daily backup).

A backup is a directory ``sentinel-<UTC stamp>/`` holding

* ``db/sentinel.db`` — the SQLite business DB copied with SQLite's online backup API (consistent while ingest
  and API keep writing), or ``db/sentinel.pgdump`` — ``pg_dump -Fc`` of the PostgreSQL DB;
* ``files/…`` — everything else in the data dir: evidence files, the JWT and signing secrets, other SQLite files
  (each copied with the backup API);
* ``manifest.json`` — format, time, source, the journal head (id + hash: an anchor for ``sentinel audit verify``),
  per-table row counts and content digests, and every file's size and SHA-256.

``restore`` verifies every checksum first, refuses a non-empty target unless forced, restores, and then compares
the restored tables' digests with the manifest. ``run_daily`` makes a backup every day at a given local time and
keeps the newest N. The backup is written to a temp dir and renamed, so a crash never leaves a half backup that
looks complete.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, select, text
from sqlalchemy.engine import make_url

from cloud.core.config import Settings

log = logging.getLogger(__name__)

FORMAT = 1
SQLITE_MAGIC = b"SQLite format 3\x00"
SKIP_SUFFIXES = ("-wal", "-shm", "-journal")


class BackupError(RuntimeError):
    """A backup or restore could not be made; the message says what to do."""


@dataclass
class RestoreReport:
    backup: Path
    files: int
    tables: dict[str, tuple[int, int]] = field(default_factory=dict)  # name → (rows in manifest, rows restored)
    mismatched: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatched


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _is_sqlite(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(16) == SQLITE_MAGIC
    except OSError:
        return False


def sqlite_online_copy(source: Path, target: Path) -> None:
    """SQLite's online backup API: a consistent snapshot while other connections keep writing."""
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst, pages=4096)
        dst.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
    finally:
        dst.close()
        src.close()


def _libpq_url(url: str) -> str:
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def _sqlite_path(settings: Settings) -> Path | None:
    if not settings.is_sqlite:
        return None
    database = make_url(settings.db_url).database
    return Path(database) if database else None


def table_digests(engine: Engine) -> dict[str, dict[str, Any]]:
    """Row count and a SHA-256 over every row (ordered by primary key) of every table."""
    meta = MetaData()
    meta.reflect(engine)
    out: dict[str, dict[str, Any]] = {}
    with engine.connect() as conn:
        for name, table in sorted(meta.tables.items()):
            order = list(table.primary_key.columns) or list(table.columns)
            digest = hashlib.sha256()
            rows = 0
            for row in conn.execute(select(table).order_by(*order)):
                digest.update(repr(tuple(row)).encode())
                rows += 1
            out[name] = {"rows": rows, "digest": digest.hexdigest()}
    return out


def _journal_head(engine: Engine) -> dict[str, Any] | None:
    try:
        with engine.connect() as conn:
            row = conn.execute(text("SELECT id, hash FROM journal_event ORDER BY id DESC LIMIT 1")).first()
    except Exception:  # no journal table yet
        return None
    return {"id": row[0], "hash": row[1]} if row else None


def _walk(root: Path, exclude: list[Path]) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not any((here / d).resolve() == e for e in exclude))
        for name in sorted(filenames):
            path = here / name
            if name.endswith(SKIP_SUFFIXES) or name.endswith(".tmp") or path.is_symlink():
                continue
            yield path


def create_backup(settings: Settings, dest_root: Path, *, now: dt.datetime | None = None) -> Path:
    """Make one backup under ``dest_root``; returns its directory."""
    now = now or dt.datetime.now(dt.UTC)
    dest_root.mkdir(parents=True, exist_ok=True)
    name = f"sentinel-{now.strftime('%Y%m%dT%H%M%S%fZ')}"
    final = dest_root / name
    work = dest_root / f".{name}.partial"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    data_dir = settings.data_dir.resolve()
    files: list[dict[str, Any]] = []
    db_path = _sqlite_path(settings)
    try:
        if db_path is not None:
            target = work / "db" / "sentinel.db"
            sqlite_online_copy(db_path, target)
            digest_engine = create_engine(f"sqlite:///{target}")
            kind = "sqlite"
        else:
            target = work / "db" / "sentinel.pgdump"
            target.parent.mkdir(parents=True)
            _run(["pg_dump", "-Fc", "--no-owner", "-f", str(target), _libpq_url(settings.db_url)], "pg_dump")
            digest_engine = create_engine(settings.db_url)
            kind = "postgresql"
        try:
            tables = table_digests(digest_engine)
            journal = _journal_head(digest_engine)
        finally:
            digest_engine.dispose()
        files.append({"path": str(target.relative_to(work)), "kind": kind, **_stat(target)})
        exclude = [dest_root.resolve()]
        for path in _walk(data_dir, exclude) if data_dir.exists() else iter(()):
            if db_path is not None and path.resolve() == db_path.resolve():
                continue
            rel = path.relative_to(data_dir)
            copy = work / "files" / rel
            copy.parent.mkdir(parents=True, exist_ok=True)
            if _is_sqlite(path):
                sqlite_online_copy(path, copy)
                entry_kind = "sqlite"
            else:
                shutil.copy2(path, copy)
                entry_kind = "file"
            files.append({"path": str(copy.relative_to(work)), "kind": entry_kind, **_stat(copy)})
        manifest = {
            "format": FORMAT,
            "created_at": now.isoformat(),
            "source": {"data_dir": str(data_dir), "database": kind},
            "journal_head": journal,
            "tables": tables,
            "files": files,
        }
        (work / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
        os.replace(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    log.info("backup %s: %d tables, %d files", final, len(tables), len(files))
    return final


def _stat(path: Path) -> dict[str, Any]:
    return {"size": path.stat().st_size, "sha256": _sha256(path)}


def _run(argv: list[str], what: str) -> None:
    if shutil.which(argv[0]) is None:
        raise BackupError(f"{what} 未安装 (install postgresql-client)")
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode != 0:
        raise BackupError(f"{what} failed: {result.stderr.strip()[:500]}")


def load_manifest(backup_dir: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((backup_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackupError(f"{backup_dir}: no readable manifest.json ({exc})") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{backup_dir}: unknown backup format {manifest.get('format')!r}")
    return manifest


def verify_backup(backup_dir: Path) -> list[str]:
    """Problems found (missing file, size or checksum mismatch); empty when the backup is intact."""
    problems = []
    for entry in load_manifest(backup_dir)["files"]:
        path = backup_dir / entry["path"]
        if not path.is_file():
            problems.append(f"缺少文件 missing: {entry['path']}")
        elif path.stat().st_size != entry["size"] or _sha256(path) != entry["sha256"]:
            problems.append(f"校验和不符 checksum mismatch: {entry['path']}")
    return problems


def restore(backup_dir: Path, settings: Settings, *, force: bool = False) -> RestoreReport:
    """Restore ``backup_dir`` into the instance described by ``settings`` (stop the cloud first)."""
    manifest = load_manifest(backup_dir)
    problems = verify_backup(backup_dir)
    if problems:
        raise BackupError("备份已损坏，拒绝恢复 (backup damaged): " + "; ".join(problems))
    data_dir = settings.data_dir
    if data_dir.exists() and any(data_dir.iterdir()) and not force:
        raise BackupError(f"目标数据目录 {data_dir} 非空；确认覆盖请加 --force (target not empty)")
    data_dir.mkdir(parents=True, exist_ok=True)
    db_path = _sqlite_path(settings)
    restored = 0
    for entry in manifest["files"]:
        source = backup_dir / entry["path"]
        if entry["path"].startswith("db/"):
            if entry["kind"] == "sqlite":
                if db_path is None:
                    raise BackupError("备份为 SQLite，目标为 PostgreSQL：请用 SQLite 目标恢复 (backend mismatch)")
                for suffix in ("", *SKIP_SUFFIXES):
                    Path(f"{db_path}{suffix}").unlink(missing_ok=True)
                db_path.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, db_path)
            else:
                if db_path is not None:
                    raise BackupError("备份为 PostgreSQL，目标为 SQLite (backend mismatch)")
                _run(
                    [
                        "pg_restore",
                        "--clean",
                        "--if-exists",
                        "--no-owner",
                        "-d",
                        _libpq_url(settings.db_url),
                        str(source),
                    ],
                    "pg_restore",
                )
        else:
            target = data_dir / Path(entry["path"]).relative_to("files")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
            if target.name in ("jwt.secret",) or target.suffix == ".key":
                target.chmod(0o600)
        restored += 1
    engine = create_engine(settings.db_url)
    try:
        now_tables = table_digests(engine)
    finally:
        engine.dispose()
    report = RestoreReport(backup_dir, restored)
    for name, want in manifest["tables"].items():
        got = now_tables.get(name)
        report.tables[name] = (int(want["rows"]), int(got["rows"]) if got else -1)
        if got is None or got["digest"] != want["digest"]:
            report.mismatched.append(name)
    return report


def prune(dest_root: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` complete backups; returns what was deleted."""
    backups = sorted(p for p in dest_root.glob("sentinel-*") if (p / "manifest.json").is_file())
    doomed = backups[:-keep] if keep > 0 else []
    for path in doomed:
        shutil.rmtree(path)
    return doomed


def next_run(at: dt.time, now: dt.datetime) -> dt.datetime:
    candidate = now.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
    return candidate if candidate > now else candidate + dt.timedelta(days=1)


BACKUP_LEASE_S = 3600.0  # a backup host killed mid-run lets another one redo the day after this


def backup_once_for(settings: Settings, engine: Engine, dest_root: Path, period: str) -> Path | None:
    """The backup of ``period`` (a local date) once across every scheduler process (lease + job record).

    None: another process holds the backup lease, or the period's backup is done already.
    """
    import contextvars

    from cloud.core import leases

    lease = leases.Lease(engine, "backup", ttl_s=BACKUP_LEASE_S)
    if not lease.acquire():
        return None
    made: list[Path] = []

    def work() -> str:
        made.append(create_backup(settings, dest_root))
        return made[-1].name

    ctx = contextvars.copy_context()
    ctx.run(leases._current.set, lease)
    try:
        ctx.run(leases.run_period_job, engine, "backup", period, work)
    finally:
        lease.release()
    return made[0] if made else None


def run_daily(
    settings: Settings,
    dest_root: Path,
    *,
    at: dt.time,
    keep: int,
    on_done: Callable[[Path], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now().astimezone(),
    runs: int | None = None,
    engine: Engine | None = None,
) -> None:
    """Back up every day at local time ``at``, keeping the newest ``keep`` (``runs`` bounds it for tests).

    With ``engine`` the day's backup is made once however many hosts run this schedule
    (:func:`backup_once_for`; job ``backup``, period = the local date).
    """
    done = 0
    while runs is None or done < runs:
        wait = (next_run(at, clock()) - clock()).total_seconds()
        sleep(max(0.0, wait))
        try:
            if engine is None:
                path: Path | None = create_backup(settings, dest_root)
            else:
                path = backup_once_for(settings, engine, dest_root, clock().date().isoformat())
        except Exception as exc:  # keep the schedule; the next day tries again
            log.error("scheduled backup failed: %s", exc)
        else:
            if path is None:
                log.info("today's backup is made by another host (lease backup)")
            else:
                prune(dest_root, keep)
                if on_done is not None:
                    on_done(path)
        done += 1
