"""Liveness/readiness (anonymous)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import text

from cloud.api.deps import EngineDep
from cloud.security.scoping import public

router = APIRouter(prefix="/health", tags=["health"], dependencies=[public("liveness probe, no data")])


@router.get("", summary="健康检查 (health)")
def health(engine: EngineDep, request: Request) -> dict[str, object]:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    ingest = request.app.state.ingest
    return {
        "status": "ok",
        "database": engine.dialect.name,
        "ingest": None if ingest is None else ("connected" if ingest.connected else "disconnected"),
    }
