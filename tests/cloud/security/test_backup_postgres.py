"""Backup and restore on a real PostgreSQL: ``pg_dump -Fc`` of the business DB plus the data dir, restored into an
empty database and an empty data dir, then compared table by table; the journal chain must verify afterwards."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, select

from cloud import backup, journal
from cloud.core.config import Settings
from cloud.core.db import init_db, make_engine, session_scope
from cloud.security import audit
from sentinel_cli.servers import Server
from tests.cloud.security.test_audit_backup import fill
from tests.utils.registry_db import fresh_postgres, let_postgres_user_in

pytestmark = [pytest.mark.postgres]


def pg_settings(data_dir: Path, url: str) -> Settings:
    return Settings(data_dir=data_dir, database_url=url, jwt_secret="x" * 40, ingest_enabled=False)


def dump_tables(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, ordered by primary key."""
    meta = MetaData()
    meta.reflect(engine)
    with engine.connect() as conn:
        return {
            name: [
                tuple(row)
                for row in conn.execute(select(table).order_by(*(list(table.primary_key.columns) or table.columns)))
            ]
            for name, table in sorted(meta.tables.items())
        }


@pytest.fixture
def two_databases(tmp_path_factory: pytest.TempPathFactory, postgres_server: Server) -> Iterator[tuple[str, str]]:
    let_postgres_user_in(tmp_path_factory.getbasetemp())
    with fresh_postgres(postgres_server.extra["dsn"]) as source, fresh_postgres(postgres_server.extra["dsn"]) as target:
        yield source, target


def test_postgres_backup_restores_into_an_empty_database(two_databases: tuple[str, str], tmp_path: Path) -> None:
    source_url, target_url = two_databases
    source = pg_settings(tmp_path / "data", source_url)
    engine = make_engine(source)
    init_db(engine)
    try:
        fill(engine, 30)
        evidence = source.data_dir / "evidence" / "ab" / "abc.jpg"
        evidence.parent.mkdir(parents=True)
        evidence.write_bytes(os.urandom(5000))
        (source.data_dir / "jwt.secret").write_text("signing-secret")
        bdir = backup.create_backup(source, tmp_path / "backups")
        before = dump_tables(engine)
    finally:
        engine.dispose()

    manifest = backup.load_manifest(bdir)
    assert manifest["source"]["database"] == "postgresql"
    assert (bdir / "db" / "sentinel.pgdump").is_file()
    assert not (bdir / "db" / "sentinel.db").exists()
    assert manifest["tables"]["journal_event"]["rows"] == 30
    assert manifest["journal_head"]["id"] == 30
    assert backup.verify_backup(bdir) == []
    assert before["journal_event"], "the source must have journal rows to compare"

    # restore into an EMPTY database (no init_db) and an empty data dir
    target = pg_settings(tmp_path / "restored", target_url)
    report = backup.restore(bdir, target)
    assert report.ok, report.mismatched
    assert report.tables["journal_event"] == (30, 30)
    assert (target.data_dir / "evidence" / "ab" / "abc.jpg").read_bytes() == evidence.read_bytes()
    assert (target.data_dir / "jwt.secret").read_text() == "signing-secret"
    assert (target.data_dir / "jwt.secret").stat().st_mode & 0o777 == 0o600

    restored = make_engine(target)
    try:
        after = dump_tables(restored)
        assert sorted(after) == sorted(before)
        for name in before:
            assert after[name] == before[name], f"table {name} differs after restore"
        with session_scope(restored) as session:
            assert journal.verify(session).ok
            assert audit.verify(session, anchor=(30, manifest["journal_head"]["hash"])).ok
        # sequences came back too: the restored instance keeps appending to the chain
        init_db(restored)
        fill(restored, 1)
        with session_scope(restored) as session:
            assert audit.head(session)[0] == 31
            assert journal.verify(session).ok
    finally:
        restored.dispose()

    # a PostgreSQL backup is refused by a SQLite target
    with pytest.raises(backup.BackupError, match="backend mismatch"):
        backup.restore(bdir, Settings(data_dir=tmp_path / "sqlite-target"))
