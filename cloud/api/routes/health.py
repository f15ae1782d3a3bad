"""Liveness/readiness (anonymous)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import text

from cloud.api.deps import EngineDep

router = APIRouter(prefix="/health", tags=["health"])


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
