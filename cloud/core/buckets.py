"""Token buckets in the business database: rate limits that hold across instances behind a load balancer.

One row per key (``rate_bucket``); :func:`take` refills and takes a token in ONE atomic upsert
(``INSERT … ON CONFLICT DO UPDATE … WHERE tokens ≥ 1 RETURNING``), so concurrent requests on any instance
never both get the last token. Time is the wall clock of the instances (keep them on NTP).
"""

from __future__ import annotations

import time

from sqlalchemy import Engine, text
from sqlmodel import Field, SQLModel


class RateBucket(SQLModel, table=True):
    __tablename__ = "rate_bucket"

    key: str = Field(primary_key=True, max_length=200)
    tokens: float
    at: float = Field(description="wall-clock seconds of the last refill")


def take(engine: Engine, key: str, *, per_minute: int, now: float | None = None) -> float:
    """0 when a token was taken (allowed), else the seconds until the next token."""
    now = time.time() if now is None else now
    rate, burst = per_minute / 60.0, float(per_minute)
    least = "LEAST" if engine.dialect.name == "postgresql" else "MIN"
    refilled = f"{least}(:burst, rate_bucket.tokens + (:now - rate_bucket.at) * :rate)"
    sql = text(
        "INSERT INTO rate_bucket (key, tokens, at) VALUES (:key, :burst - 1, :now) "
        f"ON CONFLICT (key) DO UPDATE SET tokens = {refilled} - 1, at = :now WHERE {refilled} >= 1 "
        "RETURNING tokens"
    )
    params = {"key": key[:200], "burst": burst, "now": now, "rate": rate}
    with engine.begin() as conn:
        if conn.execute(sql, params).first() is not None:
            return 0.0
        row = conn.execute(text("SELECT tokens, at FROM rate_bucket WHERE key = :key"), params).first()
    tokens = 0.0 if row is None else min(burst, float(row[0]) + (now - float(row[1])) * rate)
    return max(0.0, (1.0 - tokens) / rate)
