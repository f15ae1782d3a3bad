"""Leases: every scheduler and follower runs on exactly one instance, with failover and fencing.

One mechanism on every database: a row per lease in ``cloud_lease`` (name, holder, fencing ``token``,
``expires_at``). :func:`hold` acquires the lease, runs the work while renewing it every ``ttl/3`` and cancels
the work when the lease is lost. A holder killed with ``kill -9`` stops renewing; its lease expires after
``ttl`` and another instance, which retries every ``ttl/3``, takes it over with ``token + 1``: **takeover
within 4/3 × ttl** (``SENTINEL_LEASE_TTL_S``, default 15 s → ≤ 20 s).

Fencing, by construction: while a task runs under a lease, *every* ORM transaction it (or any thread or task
it starts) commits is checked first — a ``before_commit`` hook locks the lease row (``SELECT … FOR UPDATE`` on
PostgreSQL; SQLite's write lock serialises anyway) and refuses to commit (:class:`LeaseLost`) unless this
holder still has the lease with the same token and it has not expired. A paused holder that wakes up after a
takeover therefore cannot commit anything: the followers' "work + cursor in one transaction" is exactly once
across instances.

Periodic jobs record their runs by period (``cloud_job_run``, primary key (job, period)):
:func:`run_in_period` does the job's work in the same transaction as the row that marks the period done
(exactly once); :func:`run_period_job` is for work that cannot share the transaction (a backup): the period is
claimed, the work runs, the period is marked done; a run interrupted by a crash is re-run by the next holder
(a claim left ``running`` by an older fencing token), never by a second process while the first still runs.

Time is the database server's clock on PostgreSQL (instances may disagree; the database is one), the local
clock on SQLite (one machine).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Coroutine, Iterator
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Field, Session, SQLModel

from cloud.core.db import UTCDateTime, utcnow, writer

log = logging.getLogger(__name__)
T = TypeVar("T")


class LeaseLost(RuntimeError):
    """This instance no longer holds the lease: the transaction is refused (another instance took over)."""


class LeaseRow(SQLModel, table=True):
    __tablename__ = "cloud_lease"

    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=120)
    token: int = Field(default=1, description="fencing token: +1 at every change of holder")
    acquired_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)


class JobRun(SQLModel, table=True):
    """One run of a periodic job for one period (unique): the record that a period's job has been done."""

    __tablename__ = "cloud_job_run"

    job: str = Field(primary_key=True, max_length=64)
    period: str = Field(primary_key=True, max_length=64)
    status: str = Field(default="running", max_length=16, description="running | done")
    holder: str = Field(max_length=120)
    token: int = 0
    attempts: int = 1
    started_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    detail: str | None = Field(default=None, max_length=500)


def default_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _db_now(conn: Connection) -> datetime:
    if conn.dialect.name == "postgresql":
        value = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
        assert isinstance(value, datetime)
        return value
    return utcnow()


_TABLE = LeaseRow.__table__  # type: ignore[attr-defined]
_current: contextvars.ContextVar[Lease | None] = contextvars.ContextVar("sentinel_lease", default=None)


def current() -> Lease | None:
    """The lease the running task works under (None outside :func:`hold`)."""
    return _current.get()


class Lease:
    def __init__(self, engine: Engine, name: str, *, holder: str | None = None, ttl_s: float = 15.0) -> None:
        self.engine = engine
        self.name = name
        self.holder = holder or default_holder()
        self.ttl = timedelta(seconds=ttl_s)
        self.ttl_s = ttl_s
        self.token = 0
        self.local_deadline = 0.0  # monotonic: when our lease surely expired, even if the DB is unreachable

    @property
    def renew_s(self) -> float:
        return self.ttl_s / 3

    def acquire(self) -> bool:
        """Take the lease (free or expired), or renew it if we hold it. True when we hold it afterwards."""
        started = time.monotonic()
        try:
            with writer(self.engine).begin() as conn:
                row = conn.execute(_TABLE.select().where(_TABLE.c.name == self.name).with_for_update()).first()
                now = _db_now(conn)
                if row is None:
                    conn.execute(
                        _TABLE.insert().values(
                            name=self.name, holder=self.holder, token=1, acquired_at=now, expires_at=now + self.ttl
                        )
                    )
                    token = 1
                elif row.holder == self.holder and row.token == self.token:
                    # ours, even if it expired while a busy database held this renewal back: nobody took it over
                    # (a takeover changes holder and token), so it is renewed with the same token
                    conn.execute(_TABLE.update().where(_TABLE.c.name == self.name).values(expires_at=now + self.ttl))
                    token = self.token
                elif row.expires_at <= now:
                    token = int(row.token) + 1
                    conn.execute(
                        _TABLE.update()
                        .where(_TABLE.c.name == self.name)
                        .values(holder=self.holder, token=token, acquired_at=now, expires_at=now + self.ttl)
                    )
                else:
                    return False
        except IntegrityError:  # another instance inserted the row first
            return False
        self.token = token
        self.local_deadline = started + self.ttl_s
        return True

    def release(self) -> None:
        """Let the lease go now (graceful shutdown): the next instance takes over without waiting for ``ttl``."""
        with writer(self.engine).begin() as conn:
            conn.execute(
                _TABLE.update()
                .where(_TABLE.c.name == self.name, _TABLE.c.holder == self.holder, _TABLE.c.token == self.token)
                .values(expires_at=_db_now(conn))
            )
        self.token = 0

    def check(self, conn: Connection) -> None:
        """Raise :class:`LeaseLost` unless we still hold the lease; locks its row until the transaction ends."""
        row = conn.execute(_TABLE.select().where(_TABLE.c.name == self.name).with_for_update()).first()
        if row is None or row.holder != self.holder or row.token != self.token or row.expires_at <= _db_now(conn):
            raise LeaseLost(f"lease {self.name!r} (token {self.token}) is no longer held by {self.holder}")


@contextlib.contextmanager
def unfenced() -> Iterator[None]:
    """Commit without the lease fence, for a transaction fenced by its own row instead: recording the result of a
    send that has already happened, conditional on the send's claim still being this holder's
    (``cloud.notify.dispatcher``). A fact about the outside world must not be lost because the lease ran out
    meanwhile — losing it is what makes the next holder repeat the send."""
    token = _current.set(None)
    try:
        yield
    finally:
        _current.reset(token)


@event.listens_for(OrmSession, "before_commit")
def _fence(session: OrmSession) -> None:
    lease = _current.get()
    if lease is not None:
        lease.check(session.connection())


async def hold(
    engine: Engine,
    name: str,
    work: Callable[[], Coroutine[Any, Any, None]],
    *,
    ttl_s: float = 15.0,
    holder: str | None = None,
    on_state: Callable[[bool], None] | None = None,
) -> None:
    """Run ``work()`` whenever this instance holds lease ``name``; until cancelled (then the lease is released).

    The work is cancelled when the lease is lost (not renewed in time, or taken over); it is started again
    when the lease is regained. A work coroutine that ends or fails is restarted after ``ttl/3``.
    """
    lease = Lease(engine, name, holder=holder, ttl_s=ttl_s)
    failing = False
    try:
        while True:
            try:
                held = await asyncio.to_thread(lease.acquire)
                failing = False
            except Exception:
                if not failing:
                    log.exception("lease %s: acquiring failed (logged once until it recovers)", name)
                failing, held = True, False
            if not held:
                await asyncio.sleep(lease.renew_s)
                continue
            log.info("lease %s acquired by %s (token %d)", name, lease.holder, lease.token)
            if on_state is not None:
                on_state(True)
            ctx = contextvars.copy_context()
            ctx.run(_current.set, lease)
            task = asyncio.create_task(work(), name=f"lease-{name}", context=ctx)
            try:
                await _renew_while(lease, task)
            finally:
                if on_state is not None:
                    on_state(False)
                if not task.done():
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                me = asyncio.current_task()
                if me is not None and me.cancelling():  # hold itself was cancelled meanwhile: not swallowed above
                    raise asyncio.CancelledError
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("lease %s: work failed: %s", name, task.exception())
            await asyncio.sleep(lease.renew_s)
    finally:
        if lease.token:
            with contextlib.suppress(Exception):
                lease.release()


async def _renew_while(lease: Lease, task: asyncio.Task[None]) -> None:
    while not task.done():
        await asyncio.wait({task}, timeout=lease.renew_s)
        if task.done():
            return
        try:
            if not await asyncio.to_thread(lease.acquire):
                log.warning("lease %s lost (taken over): stopping its work here", lease.name)
                return
        except Exception as exc:  # DB unreachable: keep working until our lease surely expired
            if time.monotonic() >= lease.local_deadline:
                log.warning("lease %s could not be renewed (%s): stopping its work here", lease.name, exc)
                return


# ---------------------------------------------------------------- periodic jobs, recorded by period
def period_key(now: datetime, every_s: float) -> str:
    """The period ``now`` falls in, for a job that runs every ``every_s`` seconds (UTC epoch aligned)."""
    return str(int(now.timestamp() // every_s))


def _claim(session: Session, job: str, period: str) -> JobRun | None:
    lease = _current.get()
    row = session.get(JobRun, (job, period), with_for_update=True)
    if row is not None and row.status == "done":
        return None
    if row is None:
        row = JobRun(
            job=job,
            period=period,
            holder=lease.holder if lease else "",
            token=lease.token if lease else 0,
            started_at=utcnow(),
        )
    elif lease is None or row.token >= lease.token:
        return None  # running right now (or no lease to tell a dead run from a live one): not twice
    else:  # started by a holder that has since lost the lease (killed mid-run): run it again
        row.attempts += 1
        row.holder, row.token = (lease.holder, lease.token) if lease else (row.holder, row.token)
        row.started_at = utcnow()
    return row


def run_in_period(engine: Engine, job: str, period: str, work: Callable[[Session], str | None]) -> bool:
    """Do ``work(session)`` once for ``(job, period)``, in the transaction that records it done. False: done before."""
    with Session(writer(engine)) as session:
        row = _claim(session, job, period)
        if row is None:
            return False
        detail = work(session)
        row.status, row.finished_at, row.detail = "done", utcnow(), (detail or "")[:500] or None
        session.add(row)
        try:
            session.commit()
        except IntegrityError:  # the same period recorded concurrently (only without a lease)
            return False
    return True


def run_period_job(engine: Engine, job: str, period: str, work: Callable[[], str | None]) -> bool:
    """Claim ``(job, period)``, run ``work()`` outside the transaction, mark it done. False: done before."""
    with Session(writer(engine)) as session:
        row = _claim(session, job, period)
        if row is None:
            return False
        session.add(row)
        try:
            session.commit()
        except IntegrityError:
            return False
    detail = work()
    with Session(writer(engine)) as session:
        done = session.get(JobRun, (job, period))
        assert done is not None
        done.status, done.finished_at, done.detail = "done", utcnow(), (detail or "")[:500] or None
        session.add(done)
        session.commit()
    return True
