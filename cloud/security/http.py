"""HTTP guards as pure ASGI middlewares (no buffering of streams they do not inspect).

* :class:`BodySizeLimit`: 413 above ``max_request_bytes`` (``max_upload_bytes`` on upload paths), by the
  ``Content-Length`` header before the body is read, and by counting chunked bodies while they are read.
* :class:`RateLimit`: token bucket per client address on the public intake endpoints (login, refresh, the signed
  notification-ack link): ``rate_limit_per_minute`` with a burst of the same size; 429 with ``Retry-After``.
* :class:`PiiMaskingMiddleware`: masks personal data in every JSON response (:mod:`cloud.security.masking`),
  unless the route set ``request.state.pii_revealed`` (the journaled reveal endpoint).

:func:`install` adds all three to an app (one line in :func:`cloud.app.create_app`).
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from cloud.security.config import SecuritySettings, get_security_settings
from cloud.security.masking import may_contain_pii, redact

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


async def _answer(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"detail": detail}, ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value)
    return None


class BodySizeLimit:
    def __init__(self, app: ASGIApp, settings: SecuritySettings) -> None:
        self.app = app
        self.settings = settings

    def limit_for(self, path: str) -> int:
        if any(path.startswith(p) for p in self.settings.upload_paths):
            return self.settings.max_upload_bytes
        return self.settings.max_request_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(str(scope.get("path", "")))
        detail = f"请求体过大（上限 {limit} 字节） (request body too large)"
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                await _answer(send, 400, "Content-Length 无效 (bad Content-Length)")
                return
            if too_big:
                await _answer(send, 413, detail)
                return
        received = 0
        exceeded = False
        answered = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal answered
            if exceeded:
                if not answered:
                    answered = True
                    await _answer(send, 413, detail)
                return
            await send(message)

        await self.app(scope, counting_receive, guarded_send)
        if exceeded and not answered:
            await _answer(send, 413, detail)


class RateLimit:
    """Token buckets keyed by (client address, path prefix): in the business DB when the app has one
    (``app.state.engine``: the limit holds across instances, :mod:`cloud.core.buckets`), else in memory."""

    def __init__(self, app: ASGIApp, settings: SecuritySettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.settings = settings
        self.clock = clock
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: tuple[str, str]) -> float:
        """0 when allowed, else seconds until the next token."""
        rate = self.settings.rate_limit_per_minute / 60.0
        burst = float(self.settings.rate_limit_per_minute)
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (burst, now))
            tokens = min(burst, tokens + (now - last) * rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                if len(self._buckets) > 100_000:  # forget idle clients
                    self._buckets.clear()
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = str(scope.get("path", ""))
            prefix = next((p for p in self.settings.rate_limited_paths if path.startswith(p)), None)
            if prefix is not None:
                client = scope.get("client") or ("unknown", 0)
                engine = getattr(getattr(scope.get("app"), "state", None), "engine", None)
                if engine is not None:
                    from cloud.core.buckets import take

                    key = f"http:{client[0]}:{prefix}"
                    per_minute = self.settings.rate_limit_per_minute
                    wait = await asyncio.to_thread(take, engine, key, per_minute=per_minute)
                else:
                    wait = self.take((str(client[0]), prefix))
                if wait > 0:
                    await _answer(
                        send,
                        429,
                        "请求过于频繁，请稍后再试 (too many requests)",
                        [(b"retry-after", str(max(1, math.ceil(wait))).encode())],
                    )
                    return
        await self.app(scope, receive, send)


class PiiMaskingMiddleware:
    def __init__(self, app: ASGIApp, prefix: str = "/api") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def masking_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                content_type = dict((k.lower(), v) for k, v in message.get("headers", [])).get(b"content-type", b"")
                if content_type.startswith(b"application/json"):
                    start = message  # hold it until the body is complete
                    return
                await send(message)
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            revealed = bool((scope.get("state") or {}).get("pii_revealed"))
            if not revealed and may_contain_pii(body):
                try:
                    body = json.dumps(redact(json.loads(body)), ensure_ascii=False, separators=(",", ":")).encode()
                except ValueError:
                    pass
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, masking_send)


async def _out_of_range(_request: Any, exc: Exception) -> Any:
    """An overflow (an id beyond 64 bits, a day count beyond ``timedelta``) always comes from input: 422."""
    from fastapi.responses import JSONResponse

    return JSONResponse({"detail": f"数值超出范围 (value out of range): {exc}"[:300]}, status_code=422)


async def _integrity(_request: Any, exc: Exception) -> Any:
    """A constraint the input broke (unknown referenced id, duplicate key) that a route did not check: 409."""
    from fastapi.responses import JSONResponse

    reason = str(getattr(exc, "orig", exc)).splitlines()[0][:200]
    return JSONResponse(
        {"detail": f"引用的记录不存在或与现有记录冲突 (integrity constraint): {reason}", "code": "integrity"},
        status_code=409,
    )


def install(app: Any, settings: SecuritySettings | None = None) -> None:
    """Add the guards to a FastAPI app (outermost first: rate limit, size limit, masking) and the handlers that
    turn input-caused overflows and constraint violations into 422/409 instead of 500."""
    from sqlalchemy.exc import IntegrityError

    # a copy per app: tests and embedders tune app.state.security_settings without touching other apps
    sec = settings or getattr(app.state, "security_settings", None) or get_security_settings().model_copy(deep=True)
    app.state.security_settings = sec
    app.add_exception_handler(OverflowError, _out_of_range)
    app.add_exception_handler(IntegrityError, _integrity)
    app.add_middleware(PiiMaskingMiddleware)
    app.add_middleware(BodySizeLimit, settings=sec)
    app.add_middleware(RateLimit, settings=sec)
