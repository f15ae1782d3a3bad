"""The notification service: follows the journal, routes, folds, notifies, escalates, delivers.

One follower (cursor ``notify`` in ``journal_cursor``) reads new journal events in batches; each batch is
handled in ONE write transaction together with the cursor update (exactly-once effect). A tick loop escalates
unacknowledged incidents, checks SLA clocks and re-sends grown storm summaries. One worker task per channel
sends the delivery rows (see :mod:`cloud.notify.dispatcher`). Owned by the app lifespan, cancelled on shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging

from sqlalchemy import Engine
from sqlmodel import Session

from cloud import journal
from cloud.core.config import Settings
from cloud.core.db import utcnow, writer
from cloud.notify import message
from cloud.notify.channels.base import Channel
from cloud.notify.channels.email import EmailChannel
from cloud.notify.channels.inapp_sse import InAppChannel, SseHub
from cloud.notify.channels.mqtt import MqttChannel
from cloud.notify.channels.webhook import WebhookChannel
from cloud.notify.config import NotifyRules, NotifySettings, load_rules
from cloud.notify.dispatcher import ChannelWorker
from cloud.notify.incidents import Effects, Notifier, sla_trigger_matches
from cloud.notify.models import FollowerCursor
from cloud.notify.routing import department_for, facts_from_event, resolve_recipients, site_category

log = logging.getLogger(__name__)
CURSOR = "notify"


def get_cursor(session: Session, name: str) -> FollowerCursor:
    cursor = session.get(FollowerCursor, name)
    if cursor is None:
        cursor = FollowerCursor(name=name, last_id=0)
        session.add(cursor)
    return cursor


def default_channels(settings: Settings, nsettings: NotifySettings, rules: NotifyRules, hub: SseHub) -> list[Channel]:
    timeout = rules.escalation.delivery.timeout_s
    channels: list[Channel] = [
        InAppChannel(),
        WebhookChannel(timeout_s=timeout),
        EmailChannel(
            nsettings.smtp_host,
            nsettings.smtp_port,
            sender=nsettings.smtp_from,
            username=nsettings.smtp_username,
            password=nsettings.smtp_password.get_secret_value() if nsettings.smtp_password else None,
            starttls=nsettings.smtp_starttls,
            timeout_s=timeout,
        ),
    ]
    if nsettings.mqtt_enabled:
        channels.append(
            MqttChannel(
                settings, prefix=nsettings.mqtt_topic_prefix, client_id=nsettings.mqtt_client_id, timeout_s=timeout
            )
        )
    return channels


class NotifyService:
    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        *,
        nsettings: NotifySettings | None = None,
        rules: NotifyRules | None = None,
        hub: SseHub | None = None,
        channels: list[Channel] | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.nsettings = nsettings or NotifySettings()
        self.rules = rules or load_rules(self.nsettings.rules_dir)
        self.notifier = Notifier(self.rules, self.nsettings)
        self.secret = self.nsettings.secret(settings)
        self.hub = hub or SseHub(engine, secret=self.secret, ack_base_url=self.nsettings.public_base_url)
        self._channels = channels
        self.workers: dict[str, ChannelWorker] = {}
        self.ready = asyncio.Event()
        self.met_by: dict[str, set[str]] = {
            name: set(p.sla.met_by) for name, p in self.rules.escalation.policies.items() if p.sla is not None
        }
        self.actions = sorted(
            set(self.rules.routing.events)
            | {spec.partition(":")[0] for s in self.met_by.values() for spec in s}
            | {"alert.cleared"}
        )

    # ------------------------------------------------------------------ synchronous steps (run in a thread)
    def process_batch(self, limit: int = 200) -> tuple[int, Effects]:
        """Handle the next journal events; returns (events handled, post-commit effects)."""
        effects = Effects()
        with Session(writer(self.engine)) as session:
            cursor = get_cursor(session, CURSOR)
            events = journal.read_since(session, cursor.last_id, limit=limit, actions=self.actions)
            if not events:
                session.rollback()
                return 0, effects
            now = utcnow()
            for event in events:
                effects.merge(self._handle(session, event, now))
                cursor.last_id = event.id or cursor.last_id
            cursor.updated_at = now
            session.add(cursor)
            session.commit()
        return len(events), effects

    def _handle(self, session: Session, event: journal.JournalEvent, now: dt.datetime) -> Effects:
        facts = facts_from_event(event, session)
        if event.action == "alert.cleared" or any(
            sla_trigger_matches(event, spec) for s in self.met_by.values() for spec in s
        ):
            self.notifier.sla_met(session, event, facts, self.met_by)
        if event.action not in self.rules.routing.events:
            return Effects()
        facts.site_category = site_category(session, facts.site_id)
        route = self.rules.routing.route_for(event.action, facts.as_match())
        if route is None:
            return Effects()
        message.describe(session, event, facts)
        department = department_for(session, self.rules.routing, facts)
        people = resolve_recipients(session, route, facts, department, now)
        return self.notifier.handle(session, event, facts, route, people, department, now)

    def tick(self, now: dt.datetime | None = None) -> Effects:
        now = now or utcnow()
        effects = Effects()
        with Session(writer(self.engine)) as session:
            effects.merge(self.notifier.escalate_due(session, now))
            effects.merge(self.notifier.check_sla(session, now))
            effects.merge(self.notifier.flush_summaries(session, now))
            session.commit()
        return effects

    # ------------------------------------------------------------------ async side
    async def apply(self, effects: Effects) -> None:
        for user, event in effects.sse:  # folded repeats: the new count to the user's streams on every instance
            await asyncio.to_thread(self.hub.publish_update, user, event)
        for name in effects.channels:
            worker = self.workers.get(name)
            if worker is not None:
                worker.kick.set()

    async def _follow(self) -> None:
        failing = False
        while True:
            try:
                handled, effects = await asyncio.to_thread(self.process_batch)
                await self.apply(effects)
                if failing:
                    log.info("notification follower recovered")
                failing = False
            except Exception:
                if not failing:
                    log.exception("notification follower failed (logged once until it recovers)")
                failing, handled = True, 0
            if not handled:
                await asyncio.sleep(self.nsettings.poll_s)

    async def _tick(self) -> None:
        failing = False
        while True:
            try:
                await self.apply(await asyncio.to_thread(self.tick))
                failing = False
            except Exception:
                if not failing:
                    log.exception("notification tick failed (logged once until it recovers)")
                failing = True
            await asyncio.sleep(self.nsettings.tick_s)

    async def run(self) -> None:
        channels = self._channels or default_channels(self.settings, self.nsettings, self.rules, self.hub)
        for channel in channels:
            self.workers[channel.name] = ChannelWorker(
                channel,
                self.engine,
                self.rules.escalation.delivery,
                secret=self.secret,
                ack_base_url=self.nsettings.public_base_url,
            )
        tasks = [asyncio.create_task(w.run(), name=f"notify-channel-{n}") for n, w in self.workers.items()]
        tasks.append(asyncio.create_task(self._follow(), name="notify-follow"))
        tasks.append(asyncio.create_task(self._tick(), name="notify-tick"))
        self.ready.set()
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
