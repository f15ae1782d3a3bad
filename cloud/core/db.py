"""Database engine and sessions: SQLite (WAL) by default, PostgreSQL by URL.

* SQLite connections run in WAL mode with ``synchronous=NORMAL`` and a busy timeout. Transactions are
  ``BEGIN DEFERRED`` unless the connection carries the execution option ``begin_mode="IMMEDIATE"``
  (see :func:`writer`), which takes the write lock up front so read-then-write code (dedup, alert upsert)
  is atomic and never fails with ``SQLITE_BUSY_SNAPSHOT``.
* Tables are SQLModel classes in their domain modules. :func:`init_db` imports :data:`MODEL_MODULES`
  (optional ones are skipped when absent) and creates what is missing. Add a module there with one line.
"""

from __future__ import annotations

import importlib
import logging
import sys
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, DateTime, Dialect, Engine, TypeDecorator, create_engine, event, inspect
from sqlmodel import Session, SQLModel

from cloud.core.config import Settings

log = logging.getLogger(__name__)

#: Modules whose SQLModel tables belong to the business DB. Optional modules may be missing.
MODEL_MODULES: list[str] = [
    "cloud.core.users",
    "cloud.core.leases",
    "cloud.core.buckets",
    "cloud.ingest.models",
    "cloud.alerts",
    "cloud.presence",
    "cloud.fleet_commands",
    "cloud.fleet_groups",
    "cloud.workflow.clues",
]
OPTIONAL_MODEL_MODULES: list[str] = [
    "cloud.registry.models",
    "cloud.registry.quarantine",
    "cloud.telemetry.gsp",
    "cloud.evidence",
    "cloud.workflow.models",
    "cloud.workflow.follow_up",
    "cloud.workflow.progress",
    "cloud.journal",
    "cloud.notify.models",
    "cloud.assessment.models",
    "cloud.internet.models",
]


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes on every backend: stored as UTC, returned as aware UTC.

    Use it for every datetime column: ``ts: datetime = Field(sa_type=UTCDateTime)``. Naive values are
    refused (they would be ambiguous in a record a regulator relies on).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: use timezone-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _sqlite_pragmas(busy_timeout_ms: int) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves (see on_begin)
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA temp_store=MEMORY")
        cur.execute("PRAGMA cache_size=-65536")
        cur.execute("PRAGMA wal_autocheckpoint=16384")  # 64 MiB: fewer, larger checkpoints under ingest load
        cur.close()

    return on_connect


def _sqlite_begin(conn: Connection) -> None:
    mode = conn.get_execution_options().get("begin_mode", "DEFERRED")
    conn.exec_driver_sql(f"BEGIN {mode}")


def make_engine(settings: Settings, *, url: str | None = None) -> Engine:
    """An engine for the business DB described by ``settings`` (or ``url``)."""
    url = url or settings.db_url
    if url.startswith("sqlite"):
        settings.ensure_data_dir()
        # pooled connections: closing the last connection of a WAL database checkpoints it (slow per commit)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": settings.sqlite_busy_timeout_ms / 1000},
            pool_size=8,
            max_overflow=16,
        )
        event.listen(engine, "connect", _sqlite_pragmas(settings.sqlite_busy_timeout_ms))
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def writer(engine: Engine) -> Engine:
    """The same engine whose SQLite transactions take the write lock at BEGIN (no-op elsewhere)."""
    return engine.execution_options(begin_mode="IMMEDIATE")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def import_model_modules() -> None:
    for name in MODEL_MODULES:
        importlib.import_module(name)
    for name in OPTIONAL_MODEL_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not name.startswith(exc.name):
                raise
            log.debug("optional model module %s absent", name)


#: Engines whose schema this process has already brought up to date (the API, the ingest and the CLI each call
#: :func:`init_db` on the engine they are given; the schema does not change under a running process).
_initialised: weakref.WeakSet[Engine] = weakref.WeakSet()


def init_db(engine: Engine) -> None:
    """Create every table of the imported model modules that does not exist yet (once per engine and process).

    Schema upgrades: a model module may define ``upgrade_schema(engine)`` (run first, for changes of a key);
    then columns added to an existing table since it was created are added when they are nullable.
    """
    if engine in _initialised:
        return
    import_model_modules()
    for name in MODEL_MODULES + OPTIONAL_MODEL_MODULES:
        module = sys.modules.get(name)
        upgrade = getattr(module, "upgrade_schema", None)
        if upgrade is not None:
            upgrade(engine)
    existing_tables = set(inspect(engine).get_table_names())
    SQLModel.metadata.create_all(engine)
    _add_missing_columns(engine, existing_tables)
    _initialised.add(engine)


def _add_missing_columns(engine: Engine, existing_tables: set[str]) -> None:
    """Add nullable columns missing from tables that existed before this start (new tables are complete)."""
    if not existing_tables:
        return
    inspector = inspect(engine)
    with engine.begin() as conn:
        for table in SQLModel.metadata.sorted_tables:
            if table.name not in existing_tables:
                continue
            present = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in present:
                    continue
                if not column.nullable or column.primary_key:
                    raise RuntimeError(
                        f"table {table.name} lacks the required column {column.name}: it needs a schema upgrade"
                    )
                kind = column.type.compile(dialect=engine.dialect)
                log.warning("schema upgrade: adding column %s.%s (%s)", table.name, column.name, kind)
                conn.exec_driver_sql(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}')


@contextmanager
def session_scope(engine: Engine, *, write: bool = False) -> Iterator[Session]:
    """A session committed on success and rolled back on error (for services and the CLI)."""
    with Session(writer(engine) if write else engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
