"""Start the journal followers inside the app lifespan: notifications and supervision (clocks, spot checks).

Called from :func:`cloud.app._lifespan`; the returned tasks are owned (and cancelled) by the lifespan. Every
instance serves ``GET /notifications/stream`` from ``app.state.notify_hub`` (it reads the shared database); the
notification service and the supervision monitor run under leases ``notify`` and ``supervision`` (``leased``),
so exactly one instance follows the journal and sends. ``leased=None``: no background work here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI

from cloud.core.config import Settings
from cloud.notify.config import NotifySettings

log = logging.getLogger(__name__)
Leased = Callable[[str, Callable[[], Coroutine[Any, Any, None]]], "asyncio.Task[None]"]


def start_followers(app: FastAPI, settings: Settings, leased: Leased | None) -> list[asyncio.Task[None]]:
    from cloud.notify.channels.inapp_sse import SseHub

    nsettings = NotifySettings()
    tasks: list[asyncio.Task[None]] = []
    app.state.notify = None
    app.state.notify_hub = None
    if not nsettings.enabled:
        return tasks
    from cloud.notify.service import NotifyService

    hub = SseHub(
        app.state.engine,
        secret=nsettings.secret(settings),
        ack_base_url=nsettings.public_base_url,
        wake=getattr(app.state, "live", None),
    )
    app.state.notify_hub = hub
    if leased is None:
        return tasks
    service = NotifyService(settings, app.state.engine, nsettings=nsettings, hub=hub)
    app.state.notify = service
    tasks.append(leased("notify", service.run))
    try:
        from cloud.assessment.monitor import SupervisionMonitor
    except ModuleNotFoundError:  # assessment not installed
        return tasks
    monitor = SupervisionMonitor(app.state.engine)
    app.state.supervision = monitor
    tasks.append(leased("supervision", monitor.run))
    return tasks
