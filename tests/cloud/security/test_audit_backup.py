"""The journal as audit log (`sentinel audit verify` names an edited row; export for auditors) and backup/restore
into an empty instance compared table by table."""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine

from cloud import backup
from cloud.core.config import Settings
from cloud.core.db import init_db, make_engine, session_scope
from cloud.journal import append
from cloud.security import audit


def sentinel(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SENTINEL_DATA_DIR": str(settings.data_dir), "SENTINEL_ADMIN_PASSWORD": "Admin-Passw0rd!"}
    return subprocess.run(
        [sys.executable, "-m", "sentinel_cli.main", *args], capture_output=True, text=True, env=env, timeout=120
    )


def fill(engine: Engine, n: int = 20) -> None:
    with session_scope(engine, write=True) as session:
        for i in range(n):
            append(
                session,
                actor=f"user{i % 3}",
                action="clue.transition",
                target_type="clue",
                target_id=i,
                payload={"to": "analysed", "note": "测试"},
            )


def test_audit_verify_names_the_edited_row(cloud_settings: Settings, cloud_engine: Engine) -> None:
    fill(cloud_engine)
    ok = sentinel(cloud_settings, "audit", "verify")
    assert ok.returncode == 0, ok.stderr
    assert "chain intact" in ok.stdout
    db = sqlite3.connect(cloud_settings.data_dir / "sentinel.db")
    db.execute("UPDATE journal_event SET actor = 'mallory' WHERE id = 7")
    db.commit()
    db.close()
    bad = sentinel(cloud_settings, "audit", "verify")
    assert bad.returncode == 1
    assert "row 7" in bad.stdout and "第 7 行" in bad.stdout, bad.stdout


def test_deleted_row_and_truncation_are_detected(cloud_settings: Settings, cloud_engine: Engine) -> None:
    fill(cloud_engine)
    with session_scope(cloud_engine) as session:
        head_id, head_hash = audit.head(session)
    assert head_id is not None and head_hash is not None
    db = sqlite3.connect(cloud_settings.data_dir / "sentinel.db")
    db.execute(f"DELETE FROM journal_event WHERE id = {head_id}")  # the newest row: the chain alone cannot see it
    db.commit()
    with session_scope(cloud_engine) as session:
        assert audit.verify(session).ok
        verdict = audit.verify(session, anchor=(head_id, head_hash))
        assert not verdict.ok and verdict.bad_row == head_id
    db.execute("DELETE FROM journal_event WHERE id = 5")
    db.commit()
    db.close()
    with session_scope(cloud_engine) as session:
        verdict = audit.verify(session)
    assert not verdict.ok and verdict.bad_row == 4 and "row 6" in verdict.message


def test_export_for_auditors_can_be_reverified(cloud_settings: Settings, cloud_engine: Engine, tmp_path: Path) -> None:
    fill(cloud_engine, 5)
    out = tmp_path / "audit.jsonl"
    r = sentinel(cloud_settings, "audit", "export", str(out))
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["action"] for r in rows][:5] == ["clue.transition"] * 5
    assert rows[-1]["action"] == "audit.exported"  # the export itself is journaled first
    for prev, row in itertools.pairwise(rows):
        assert row["prev_hash"] == prev["hash"]
    csv_out = tmp_path / "audit.csv"
    assert sentinel(cloud_settings, "audit", "export", str(csv_out)).returncode == 0
    assert csv_out.read_text(encoding="utf-8").startswith("\ufeffid,ts,actor")


def test_backup_restores_into_an_empty_instance(cloud_settings: Settings, cloud_engine: Engine, tmp_path: Path) -> None:
    fill(cloud_engine, 50)
    evidence = cloud_settings.data_dir / "evidence" / "ab" / "abc.jpg"
    evidence.parent.mkdir(parents=True)
    evidence.write_bytes(os.urandom(5000))
    (cloud_settings.data_dir / "jwt.secret").write_text("signing-secret")
    (cloud_settings.data_dir / "other.db").write_bytes(b"")  # an empty file is copied as a file
    made = sentinel(cloud_settings, "backup", str(tmp_path / "backups"))
    assert made.returncode == 0, made.stderr + made.stdout
    [bdir] = list((tmp_path / "backups").glob("sentinel-*"))
    manifest = backup.load_manifest(bdir)
    assert manifest["tables"]["journal_event"]["rows"] == 50
    assert manifest["journal_head"]["id"] == 50
    assert backup.verify_backup(bdir) == []
    # restore into an empty instance and compare
    target = Settings(data_dir=tmp_path / "restored", jwt_secret="x" * 40, ingest_enabled=False)
    r = sentinel(target, "restore", str(bdir))
    assert r.returncode == 0, r.stderr + r.stdout
    assert "restore verified" in r.stdout
    assert (target.data_dir / "evidence" / "ab" / "abc.jpg").read_bytes() == evidence.read_bytes()
    assert (target.data_dir / "jwt.secret").read_text() == (cloud_settings.data_dir / "jwt.secret").read_text()
    engine = make_engine(target)
    init_db(engine)
    try:
        with session_scope(engine) as session:
            assert audit.verify(session, anchor=(50, manifest["journal_head"]["hash"])).ok
    finally:
        engine.dispose()
    # a second restore into the now non-empty instance is refused; a damaged backup is refused
    assert sentinel(target, "restore", str(bdir)).returncode == 1
    (bdir / "files" / "evidence" / "ab" / "abc.jpg").write_bytes(b"tampered")
    assert any("checksum" in p for p in backup.verify_backup(bdir))
    with pytest.raises(backup.BackupError):
        backup.restore(bdir, Settings(data_dir=tmp_path / "again"))


def test_backup_is_consistent_while_writes_continue(
    cloud_settings: Settings, cloud_engine: Engine, tmp_path: Path
) -> None:
    import threading

    fill(cloud_engine, 10)
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            fill(cloud_engine, 1)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        path = backup.create_backup(cloud_settings, tmp_path / "b")
    finally:
        stop.set()
        thread.join()
    copy = make_engine(Settings(data_dir=path / "db"))
    try:
        with session_scope(copy) as session:
            assert audit.verify(session).ok  # a consistent snapshot: the chain is whole
    finally:
        copy.dispose()


def test_daily_schedule_runs_and_prunes(cloud_settings: Settings, cloud_engine: Engine, tmp_path: Path) -> None:
    import datetime as dt

    fill(cloud_engine, 3)
    slept: list[float] = []
    made: list[Path] = []
    backup.run_daily(
        cloud_settings, tmp_path / "daily", at=dt.time(2, 30), keep=2, on_done=made.append, sleep=slept.append, runs=3
    )
    assert len(made) == 3 and len(list((tmp_path / "daily").glob("sentinel-*"))) == 2
    assert all(0 <= s <= 86400 for s in slept)
