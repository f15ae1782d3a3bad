"""Leases (cloud.core.leases): one holder at a time, takeover after expiry with a new fencing token, a fenced-out
holder cannot commit, periodic jobs recorded once per period. On SQLite and on a real PostgreSQL."""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from cloud.core import leases
from cloud.core.config import Settings
from cloud.core.db import init_db, make_engine
from cloud.core.leases import JobRun, Lease, LeaseLost, LeaseRow, hold, run_in_period, run_period_job
from cloud.journal import JournalEvent, append
from sentinel_cli.servers import Server
from tests.utils.registry_db import fresh_postgres, let_postgres_user_in


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        eng = make_engine(Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'l.db'}"))
        init_db(eng)
        yield eng
        eng.dispose()
        return
    let_postgres_user_in(tmp_path)
    server: Server = request.getfixturevalue("postgres_server")
    with fresh_postgres(server.extra["dsn"]) as url:
        eng = make_engine(Settings(data_dir=tmp_path, database_url=url))
        init_db(eng)
        yield eng
        eng.dispose()


def _expire(engine: Engine, name: str) -> None:
    """What the passing of ``ttl`` does to a dead holder's lease (no waiting in tests)."""
    with Session(engine) as session:
        row = session.get(LeaseRow, name)
        assert row is not None
        row.expires_at = row.acquired_at
        session.add(row)
        session.commit()


def _journal_under(lease: Lease, engine: Engine, action: str) -> None:
    ctx = contextvars.copy_context()
    ctx.run(leases._current.set, lease)

    def write() -> None:
        with Session(engine) as session:
            append(session, actor="test", action=action, target_type="t", target_id="1")
            session.commit()

    ctx.run(write)


def _under(lease: Lease, fn, *args):  # type: ignore[no-untyped-def]
    ctx = contextvars.copy_context()
    ctx.run(leases._current.set, lease)
    return ctx.run(fn, *args)


def test_one_holder_takeover_after_expiry_and_fencing(engine: Engine) -> None:
    a = Lease(engine, "notify", holder="a", ttl_s=30)
    b = Lease(engine, "notify", holder="b", ttl_s=30)
    assert a.acquire() and a.token == 1
    assert not b.acquire(), "a live lease has one holder"
    assert a.acquire() and a.token == 1, "renewal keeps the token"
    _journal_under(a, engine, "by.a")  # the holder commits

    _expire(engine, "notify")  # a died: its lease ran out
    assert b.acquire() and b.token == 2, "takeover bumps the fencing token"
    assert not a.acquire(), "the old holder does not get it back while b holds it"
    with pytest.raises(LeaseLost):
        _journal_under(a, engine, "by.a.late")  # a paused holder waking up cannot commit anything
    _journal_under(b, engine, "by.b")
    with Session(engine) as session:
        actions = [e.action for e in session.exec(select(JournalEvent).order_by(JournalEvent.id))]  # type: ignore[arg-type]
    assert actions == ["by.a", "by.b"]

    b.release()
    assert a.acquire() and a.token == 3, "a released lease is free at once"


def test_job_runs_once_per_period(engine: Engine) -> None:
    calls: list[str] = []

    def work(session: Session) -> str:
        calls.append("in")
        return "did it"

    assert run_in_period(engine, "spot_check", "100", work)
    assert not run_in_period(engine, "spot_check", "100", work), "same period: not again"
    assert run_in_period(engine, "spot_check", "101", work)
    assert calls == ["in", "in"]

    def crash() -> str:
        raise RuntimeError("killed mid-run")

    a = Lease(engine, "backup", holder="a", ttl_s=30)
    b = Lease(engine, "backup", holder="b", ttl_s=30)
    assert a.acquire()
    with pytest.raises(RuntimeError):
        _under(a, run_period_job, engine, "backup", "2026-12-01", crash)
    assert not run_period_job(engine, "backup", "2026-12-01", lambda: "x"), "a claimed run is not started twice"
    _expire(engine, "backup")
    assert b.acquire()
    assert _under(b, run_period_job, engine, "backup", "2026-12-01", lambda: "ok"), "the new holder re-runs it"
    assert not _under(b, run_period_job, engine, "backup", "2026-12-01", lambda: "twice")
    with Session(engine) as session:
        row = session.get(JobRun, ("backup", "2026-12-01"))
        assert row is not None and row.status == "done" and row.attempts == 2 and row.detail == "ok"


async def test_hold_runs_work_on_one_instance_and_fails_over(engine: Engine) -> None:
    running: dict[str, int] = {"a": 0, "b": 0}

    def worker(name: str):  # type: ignore[no-untyped-def]
        async def work() -> None:
            running[name] += 1
            try:
                await asyncio.Event().wait()
            finally:
                running[name] -= 1

        return work

    a = asyncio.create_task(hold(engine, "presence", worker("a"), ttl_s=1.5, holder="a"))
    b = asyncio.create_task(hold(engine, "presence", worker("b"), ttl_s=1.5, holder="b"))
    try:
        deadline = time.monotonic() + 20
        while running["a"] + running["b"] == 0:
            assert time.monotonic() < deadline, "nobody took the lease"
            await asyncio.sleep(0.05)
        first = "a" if running["a"] else "b"
        other = "b" if first == "a" else "a"
        await asyncio.sleep(1.0)  # several renewals
        assert running == {first: 1, other: 0}, "exactly one instance works"
        (a if first == "a" else b).cancel()  # graceful stop releases the lease
        while not running[other]:
            assert time.monotonic() < deadline, "no failover"
            await asyncio.sleep(0.05)
        assert running[first] == 0
    finally:
        for t in (a, b):
            t.cancel()
        await asyncio.gather(a, b, return_exceptions=True)


def test_daily_backup_once_per_day_across_schedulers(tmp_path: Path) -> None:
    from cloud import backup

    settings = Settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path / 'data' / 'sentinel.db'}")
    eng = make_engine(settings)
    init_db(eng)
    try:
        first = backup.backup_once_for(settings, eng, tmp_path / "backups", "2026-12-01")
        second = backup.backup_once_for(settings, eng, tmp_path / "backups", "2026-12-01")  # the other host
        assert first is not None and (first / "manifest.json").is_file()
        assert second is None
        assert len(list((tmp_path / "backups").glob("sentinel-*"))) == 1
        assert backup.backup_once_for(settings, eng, tmp_path / "backups", "2026-12-02") is not None
    finally:
        eng.dispose()
