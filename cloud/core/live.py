"""Live wake-ups across instances: PostgreSQL LISTEN/NOTIFY, so an SSE stream on any instance sees every event.

The live streams (``/console/live``, ``/notifications/stream``) read what they send from the shared database
(the journal, the in-app deliveries) after a cursor (``?after=`` / ``Last-Event-ID``): no gap, whichever
instance a client reconnects to. This module only tells them *when* to look:

* on PostgreSQL, statement triggers on ``journal_event`` (insert) and ``notify_delivery`` (update) run
  ``pg_notify('ms_live', '<topic>')``; NOTIFY is transactional, so a wake-up arrives after the commit that made
  the rows visible. Every instance runs one :class:`LiveWake` listener (a psycopg 3 connection, reconnected
  with back-off); a stream waits for its topic or, as a safety net, ``fallback_s``;
* on SQLite (one machine, one process serving) there is no listener: streams poll every ``poll_s``.

Small ephemeral messages that are not rows (a folded repeat's new count) go through :meth:`LiveWake.publish`:
``pg_notify`` with ``<topic>:<data>`` on PostgreSQL, a direct call in-process on SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from sqlalchemy import Engine, text

log = logging.getLogger(__name__)

CHANNEL = "ms_live"
JOURNAL = "journal"
INAPP = "inapp"
_TRIGGERS = {JOURNAL: ("journal_event", "INSERT"), INAPP: ("notify_delivery", "UPDATE")}


def install_triggers(engine: Engine) -> None:
    """Create the NOTIFY triggers (PostgreSQL only; idempotent, safe when instances start together)."""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('sentinel:live-triggers'))"))
        conn.execute(
            text(
                "CREATE OR REPLACE FUNCTION ms_live_notify() RETURNS trigger AS $$ "
                f"BEGIN PERFORM pg_notify('{CHANNEL}', TG_ARGV[0]); RETURN NULL; END $$ LANGUAGE plpgsql"
            )
        )
        for topic, (table, op) in _TRIGGERS.items():
            conn.execute(text(f"DROP TRIGGER IF EXISTS ms_live_{topic} ON {table}"))
            conn.execute(
                text(
                    f"CREATE TRIGGER ms_live_{topic} AFTER {op} ON {table} "
                    f"FOR EACH STATEMENT EXECUTE FUNCTION ms_live_notify('{topic}')"
                )
            )


class LiveWake:
    """Per-instance fan-out of wake-ups to the open streams of this instance."""

    def __init__(self, engine: Engine, *, poll_s: float = 0.5, fallback_s: float = 5.0) -> None:
        self.engine = engine
        self.poll_s = poll_s
        self.fallback_s = fallback_s
        self.listening = False
        self._waiters: dict[str, set[asyncio.Event]] = {}
        self._handlers: dict[str, Callable[[str], None]] = {}

    @property
    def timeout_s(self) -> float:
        """How long a stream may wait without a wake-up before it looks anyway."""
        return self.fallback_s if self.listening else self.poll_s

    def subscribe(self, topic: str) -> asyncio.Event:
        event = asyncio.Event()
        self._waiters.setdefault(topic, set()).add(event)
        return event

    def unsubscribe(self, topic: str, event: asyncio.Event) -> None:
        self._waiters.get(topic, set()).discard(event)

    def wake(self, topic: str) -> None:
        for event in list(self._waiters.get(topic, ())):
            event.set()

    def on_message(self, topic: str, handler: Callable[[str], None]) -> None:
        self._handlers[topic] = handler

    def _dispatch(self, payload: str) -> None:
        topic, sep, data = payload.partition(":")
        if not sep:
            self.wake(topic)
        elif (handler := self._handlers.get(topic)) is not None:
            handler(data)

    def publish(self, topic: str, data: str) -> None:
        """Send ``data`` to the ``topic`` handler of every instance (blocking: call it in a thread on PostgreSQL)."""
        if self.engine.dialect.name != "postgresql":
            self._dispatch(f"{topic}:{data}")
            return
        with self.engine.begin() as conn:
            conn.execute(text("SELECT pg_notify(:c, :p)"), {"c": CHANNEL, "p": f"{topic}:{data}"})

    async def wait(self, event: asyncio.Event) -> None:
        """Wait for a wake-up (or the fallback timeout); the caller clears ``event`` before it reads."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), self.timeout_s)

    async def run(self) -> None:
        """LISTEN until cancelled (PostgreSQL); reconnects with back-off, streams poll meanwhile."""
        if self.engine.dialect.name != "postgresql":
            return
        import psycopg

        dsn = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        backoff, failing = 0.5, False
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening, backoff = True, 0.5
                    if failing:
                        log.info("live listener reconnected")
                    failing = False
                    for topic in _TRIGGERS:  # whatever happened while we were away
                        self.wake(topic)
                    async for note in conn.notifies():
                        self._dispatch(note.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not failing:
                    log.warning("live listener lost (%s): streams poll until it is back", exc)
                failing = True
            finally:
                self.listening = False
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)
