"""#13: POST /risk/recompute no longer waits on its own request's write lock ("database is locked" after the busy
timeout), works in short batches that let other writers in, and a batch refused by a busy database is retried."""

from __future__ import annotations

import sqlite3
import threading

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, func, select

from cloud.core.db import session_scope
from cloud.core.retry import is_lock_conflict, retry_locked
from cloud.journal import append
from cloud.registry.models import MarketSubject
from cloud.registry.uscc import make
from tests.utils.workflow_factories import World


def test_recompute_all_over_http_interleaves_with_other_writers(world: World) -> None:
    with Session(world.engine) as session:
        for i in range(120):
            session.add(
                MarketSubject(name=f"主体{i}", uscc=make(f"91320583MA{i:07d}"), department_id=world.department_id)
            )
        session.commit()
    stop = threading.Event()
    written: list[int] = []

    def other_writer() -> None:  # the ingest / notification side keeps writing while the recompute runs
        while not stop.is_set():
            with session_scope(world.engine, write=True) as session:
                append(session, actor="system", action="test.tick", target_type="test", target_id=len(written))
            written.append(1)

    thread = threading.Thread(target=other_writer)
    thread.start()
    try:
        resp = world.client.post("/api/v1/risk/recompute", headers=world.h("head"))
    finally:
        stop.set()
        thread.join()
    assert resp.status_code == 200, resp.text
    with Session(world.engine) as session:
        subjects = session.exec(select(func.count()).select_from(MarketSubject)).one()
    assert resp.json()["graded"] == subjects and written


def _locked() -> OperationalError:
    return OperationalError("BEGIN IMMEDIATE", {}, sqlite3.OperationalError("database is locked"))


def test_retry_locked_retries_lock_conflicts_only() -> None:
    calls: list[int] = []
    pauses: list[float] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise _locked()
        return "done"

    assert retry_locked(flaky, what="t", sleep=pauses.append) == "done" and len(calls) == 3
    assert pauses == sorted(pauses) and len(pauses) == 2  # growing pauses
    with pytest.raises(OperationalError):
        retry_locked(lambda: (_ for _ in ()).throw(_locked()), what="t", attempts=2, sleep=pauses.append)
    with pytest.raises(ValueError):  # anything else is not retried
        retry_locked(lambda: (_ for _ in ()).throw(ValueError("x")), what="t", sleep=pauses.append)
    assert is_lock_conflict(_locked()) and not is_lock_conflict(ValueError("database is locked"))
