"""A registered self-service terminal for tests that submit or look up through the public kiosk routes: the
request headers carrying its credential (``X-Kiosk-Token``), so each test terminal has its own per-terminal
bucket as a hall's real terminals do (an unregistered caller shares its address's stricter anonymous limit)."""

from __future__ import annotations

import weakref

from sqlalchemy import Engine

from cloud.core.db import session_scope
from cloud.security import kiosks

_issued: weakref.WeakKeyDictionary[Engine, dict[str, dict[str, str]]] = weakref.WeakKeyDictionary()


def terminal_headers(engine: Engine, name: str) -> dict[str, str]:
    """Headers of the terminal ``name`` (registered on first use, once per engine)."""
    mine = _issued.setdefault(engine, {})
    if name not in mine:
        with session_scope(engine, write=True) as session:
            issued = kiosks.register(session, kiosks.KioskCreate(name=name, location="测试大厅"), actor="test")
        mine[name] = {"X-Kiosk-Token": issued.credential}
    return mine[name]
