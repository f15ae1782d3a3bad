"""The administrator's part of installing a box, for tests that run a real agent: its site is registered and its
announced devices are approved as they appear (until then the cloud holds their data in quarantine, #13;
approval replays what was held, in order)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from sqlalchemy import Engine
from sqlmodel import Session, select

from cloud.core.db import writer
from cloud.core.retry import is_lock_conflict
from cloud.registry import quarantine
from cloud.registry.models import ApprovalState, PendingDevice
from cloud.registry.service import approve_pending, register_installation


def _approve_once(engine: Engine, store: object, site_ids: tuple[str, ...]) -> None:
    with Session(writer(engine)) as session:
        for site_id in site_ids:  # the site as an installer registers it; its devices come from the announcement
            register_installation(session, site_id=site_id, devices={}, name=f"测试场所 {site_id}", category="drug")
        waiting = session.exec(
            select(PendingDevice).where(
                PendingDevice.state == ApprovalState.PENDING,
                PendingDevice.site_id.in_(site_ids),  # type: ignore[attr-defined]
            )
        ).all()
        for item in waiting:
            assert item.id is not None
            approve_pending(session, pending_id=item.id, by="admin")
            quarantine.release(session, store, item, by="admin")
        session.commit()


@contextlib.asynccontextmanager
async def approving(engine: Engine, store: object, *site_ids: str, every_s: float = 0.3) -> AsyncIterator[None]:
    """While the block runs, register ``site_ids`` and approve their announced devices every ``every_s``."""

    async def loop() -> None:
        while True:
            try:
                await asyncio.to_thread(_approve_once, engine, store, site_ids)
            except Exception as exc:
                if not is_lock_conflict(exc):
                    raise
            await asyncio.sleep(every_s)

    task = asyncio.create_task(loop(), name="test-approver")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
