"""Opening an existing database writes nothing for the quarantine gate's registry version (its row and triggers are
there already): an API restarted while the ingest holds SQLite's write lock must start, not fail on "database is
locked" (the fault soak's kill -9 of the API found it)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cloud.core.config import Settings
from cloud.core.db import init_db, make_engine


def test_a_second_start_needs_no_write_lock(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'sentinel.db'}")
    first = make_engine(settings)
    init_db(first)
    first.dispose()
    ingest = sqlite3.connect(tmp_path / "sentinel.db", timeout=0.1)
    try:
        ingest.execute("BEGIN IMMEDIATE")  # another process is writing
        again = make_engine(settings)  # a new engine: init_db runs once per engine
        try:
            init_db(again)
            with again.connect() as conn:
                n = conn.exec_driver_sql("SELECT n FROM registry_version WHERE id = 1").scalar()
                triggers = conn.exec_driver_sql(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'registry_version_%'"
                ).scalar()
            assert n is not None and triggers == 12  # four watched tables × insert/update/delete
        finally:
            again.dispose()
    finally:
        ingest.rollback()
        ingest.close()
