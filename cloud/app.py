"""Composition root of the cloud: ``create_app(settings)`` wires settings, DB, store, routers and tasks.

Adding a router (another module's): append one line to :data:`OPTIONAL_ROUTERS` —
``"cloud.api.routes.evidence:router"``. The module is imported when present and skipped when absent;
its router is mounted under ``/api/v1`` (give the router its own ``prefix`` and ``tags``) with the jurisdiction
guard (:func:`cloud.security.scoping.scope_guard`): its routes are scoped unless they declare
``public(...)``/``county_wide(...)``. Tables defined
in that module are created at start-up because importing it registers them.

Background tasks are started by the lifespan, owned by it and cancelled on shutdown. Ingest runs on every
instance (shared subscription); every scheduler and follower runs under a lease (:mod:`cloud.core.leases`) so
that exactly one of several instances does it, with failover.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from cloud.api.deps import API_PREFIX
from cloud.api.errors import document_errors
from cloud.core.config import Settings, get_settings
from cloud.core.db import init_db, make_engine
from cloud.core.users import ensure_admin
from cloud.security.body_scope import body_guard
from cloud.security.http import install as install_security_guards
from cloud.security.scoping import scope_guard

log = logging.getLogger(__name__)

#: Routers of this package, always mounted.
CORE_ROUTERS: list[str] = [
    "cloud.api.routes.health:router",
    "cloud.api.routes.auth:router",
    "cloud.api.routes.users:router",
    "cloud.api.routes.alerts:router",
    "cloud.api.routes.clues:router",
    "cloud.api.routes.ingest:router",
    "cloud.api.routes.fleet:router",
]
#: Routers of other modules, mounted when their module exists. One line each.
OPTIONAL_ROUTERS: list[str] = [
    "cloud.api.routes.evidence:router",
    "cloud.api.routes.registry:router",
    "cloud.api.routes.lists:router",
    "cloud.api.routes.telemetry:router",
    "cloud.api.routes.gsp:router",
    "cloud.api.routes.workflow:router",
    "cloud.api.routes.procedure:router",
    "cloud.api.routes.documents:router",
    "cloud.api.routes.notifications:router",
    "cloud.api.routes.assessment:router",
    "cloud.api.routes.audit:router",
    "cloud.api.routes.admin:router",
    "cloud.api.routes.console:router",
    "cloud.api.routes.internet:router",
    "cloud.api.routes.map:router",
]


def _load_router(target: str, *, optional: bool) -> APIRouter | None:
    module_name, attr = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if optional and exc.name is not None and module_name.startswith(exc.name):
            return None
        raise
    router: APIRouter = getattr(module, attr)
    return router


def _print_once(password: str, settings: Settings) -> None:
    banner = (
        f"\n  初始管理员账号已创建 (bootstrap admin created)\n  用户名 username: {settings.admin_username}\n"
        f"  密码 password:  {password}\n  该密码只显示这一次，请立即保存 (shown only once).\n"
    )
    print(banner, flush=True)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    from cloud.core.leases import hold
    from cloud.core.live import LiveWake

    settings: Settings = app.state.settings
    engine = app.state.engine
    tasks: list[asyncio.Task[None]] = []
    app.state.live = LiveWake(engine)
    tasks.append(asyncio.create_task(app.state.live.run(), name="live-listener"))
    app.state.leases = {}

    def leased(name: str, work: Callable[[], Coroutine[Any, Any, None]]) -> asyncio.Task[None]:
        """Run ``work`` on whichever instance holds lease ``name`` (exactly one; failover on its death)."""

        def note(held: bool) -> None:
            app.state.leases[name] = held

        coro = hold(engine, name, work, ttl_s=settings.lease_ttl_s, holder=app.state.instance_id, on_state=note)
        return asyncio.create_task(coro, name=f"lease:{name}")

    if app.state.run_background and settings.ingest_enabled:
        from cloud.ingest.service import IngestService

        service = IngestService(settings, engine, app.state.store)
        app.state.ingest = service
        tasks.append(asyncio.create_task(service.run(), name="ingest"))  # shared subscription: every instance
    if app.state.run_background and settings.presence_enabled:
        from cloud.presence import PresenceMonitor

        tasks.append(leased("presence", PresenceMonitor(settings, engine).run))
    # notifications and supervision follow the journal (SENTINEL_NOTIFY_ENABLED); the SSE stream on every instance
    from cloud.notify.lifespan import start_followers

    tasks += start_followers(app, settings, leased if app.state.run_background else None)
    if app.state.run_background:  # subjects' risk grades recomputed on a schedule (rules: workflow.toml)
        from cloud.workflow.decisions import run_periodic as regrade_periodically

        tasks.append(leased("risk_regrade", lambda: regrade_periodically(engine)))
    if app.state.run_background:  # the deadline scheduler: 复查 when a rectification order's deadline arrives
        from cloud.workflow.follow_up import run_periodically as schedule_follow_ups

        every = settings.follow_up_interval_s
        tasks.append(leased("follow_up", lambda: schedule_follow_ups(engine, interval_s=every)))
    if app.state.run_background:  # internet-monitoring sources with interval_min (cloud/internet/fetchers.py)
        from cloud.evidence import EvidenceStore
        from cloud.internet import fetchers

        path = fetchers.sources_file(settings.data_dir, settings.internet_sources_file)
        store = EvidenceStore(settings.data_dir / "evidence")
        tasks.append(asyncio.create_task(fetchers.run_periodically(app.state.engine, path, store), name="internet"))
    if app.state.run_background:  # audit and dead-letter retention (cloud.retention); one instance at a time
        from cloud.retention import run_periodically as apply_retention

        sec = app.state.security_settings
        tasks.append(leased("retention", lambda: apply_retention(engine, sec)))
    if app.state.run_background:
        from cloud.telemetry import gsp

        interval = settings.gsp_derive_interval_s
        tasks.append(leased("gsp", lambda: gsp.run_periodically(engine, app.state.store, interval_s=interval)))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        app.state.store.close()


def create_app(settings: Settings | None = None, *, run_background: bool = True) -> FastAPI:
    """Build the API app. ``run_background=False`` leaves ingest/presence to other processes (tests, scale-out)."""
    from cloud.telemetry.store import open_store

    settings = settings or get_settings()
    engine = make_engine(settings)
    init_db(engine)
    settings.jwt_key()  # generate the signing secret once, before any worker needs it
    password = ensure_admin(engine, settings)
    if password:
        _print_once(password, settings)

    app = FastAPI(
        title="Market Sentinel 基层市场监管数字化监管平台 API",
        version="1.0",
        lifespan=_lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.store = open_store(settings, engine)
    app.state.ingest = None
    app.state.run_background = run_background
    from cloud.core.leases import default_holder
    from cloud.core.live import install_triggers

    app.state.instance_id = settings.instance_id or default_holder()
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"], allow_headers=["*"]
        )
    install_security_guards(app)  # request size and rate limits, personal-data masking (cloud.security.http)
    # jurisdiction by construction: every route is scoped unless it declares itself public or county-wide
    jurisdiction = [Depends(scope_guard), Depends(body_guard)]  # path/query identifiers, body references
    for target in CORE_ROUTERS:
        router = _load_router(target, optional=False)
        assert router is not None
        app.include_router(router, prefix=API_PREFIX, dependencies=jurisdiction)
    for target in OPTIONAL_ROUTERS:
        router = _load_router(target, optional=True)
        if router is not None:
            app.include_router(router, prefix=API_PREFIX, dependencies=jurisdiction)
    # every operation declares the error statuses and body it can answer (cloud.api.errors)
    document_errors(app, rate_limited=app.state.security_settings.rate_limited_paths)
    # tables of optional modules imported with their routers
    init_db(engine)
    install_triggers(engine)  # PostgreSQL: NOTIFY on new journal events and deliveries (cloud.core.live)
    with contextlib.suppress(ModuleNotFoundError):  # the web console (cloud/web), when installed
        importlib.import_module("cloud.web").mount_console(app)
    return app
