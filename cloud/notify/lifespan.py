"""Start the journal followers inside the app lifespan: notifications and supervision (clocks, spot checks).

Called from :func:`cloud.app._lifespan`; the returned tasks are owned (and cancelled) by the lifespan. The
notification service is stored as ``app.state.notify`` (its SSE hub serves ``GET /notifications/stream``).
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI

from cloud.core.config import Settings
from cloud.notify.config import NotifySettings

log = logging.getLogger(__name__)


def start_followers(app: FastAPI, settings: Settings) -> list[asyncio.Task[None]]:
    nsettings = NotifySettings()
    tasks: list[asyncio.Task[None]] = []
    app.state.notify = None
    if not nsettings.enabled:
        return tasks
    from cloud.notify.service import NotifyService

    service = NotifyService(settings, app.state.engine, nsettings=nsettings)
    app.state.notify = service
    tasks.append(asyncio.create_task(service.run(), name="notify"))
    try:
        from cloud.assessment.monitor import SupervisionMonitor
    except ModuleNotFoundError:  # assessment not installed
        return tasks
    monitor = SupervisionMonitor(app.state.engine)
    app.state.supervision = monitor
    tasks.append(asyncio.create_task(monitor.run(), name="supervision"))
    return tasks
