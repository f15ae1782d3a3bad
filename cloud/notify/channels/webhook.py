"""Webhook channel: generic JSON, WeCom (企业微信) and DingTalk (钉钉) group-robot formats.

* generic: ``POST`` the message JSON; any 2xx is a receipt.
* wecom:  ``{"msgtype": "markdown", "markdown": {"content": …}}``; the reply ``{"errcode": 0}`` is the receipt.
* dingtalk: ``{"msgtype": "markdown", "markdown": {"title": …, "text": …}}``; with a robot secret the URL gets
  ``timestamp`` and ``sign`` = base64(HMAC-SHA256(secret, "<ts>\\n<secret>")) (加签); reply ``errcode`` 0.

Every POST carries ``Idempotency-Key: sentinel-delivery-<delivery id>``: the same key on every retry of one
delivery, including the resend by a new lease holder after the old one died mid-send, so a receiver that honours
the header (or stores the key) drops the repeat. WeCom/DingTalk robots ignore it: a repeat there stays possible
(the window is one send); the 通知编号 in the text lets people see it is the same notification.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse
from typing import Any

import httpx

from cloud.notify.channels.base import ChannelError, OutboundMessage


def _markdown(message: OutboundMessage) -> str:
    # the body names the place (场所名称、地址) itself: the site id is for machines (the generic JSON's site_id)
    lines = [f"### {message.headline()}", "", *[f"{line}  " for line in message.body.splitlines()]]
    lines.append(f"> 通知编号：{message.incident_id}")
    if message.ack_url:
        lines.append(f"\n[{message.ack_label()}]({message.ack_url})")
    return "\n".join(lines)


def render(message: OutboundMessage) -> dict[str, Any]:
    if message.webhook_format == "wecom":
        return {"msgtype": "markdown", "markdown": {"content": _markdown(message)}}
    if message.webhook_format == "dingtalk":
        return {"msgtype": "markdown", "markdown": {"title": message.headline()[:60], "text": _markdown(message)}}
    return message.as_json()


def dingtalk_signed_url(url: str, secret: str, now_ms: int | None = None) -> str:
    ts = str(now_ms if now_ms is not None else int(time.time() * 1000))
    digest = hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
    sign = urllib.parse.quote_plus(base64.b64encode(digest).decode())
    return f"{url}{'&' if '?' in url else '?'}timestamp={ts}&sign={sign}"


def idempotency_headers(message: OutboundMessage) -> dict[str, str]:
    """One key per delivery (notification × channel), stable across retries and across instances."""
    return {"Idempotency-Key": f"sentinel-delivery-{message.delivery_id}"}


class WebhookChannel:
    name = "webhook"

    def __init__(self, timeout_s: float = 5.0) -> None:
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(timeout_s), follow_redirects=False)

    async def send(self, message: OutboundMessage) -> str:
        if not message.address:
            raise ChannelError("no webhook URL", retry=False)
        url = message.address
        if message.webhook_format == "dingtalk" and message.webhook_secret:
            url = dingtalk_signed_url(url, message.webhook_secret)
        try:
            response = await self._client.post(url, json=render(message), headers=idempotency_headers(message))
        except httpx.HTTPError as exc:
            raise ChannelError(f"{type(exc).__name__}: {exc}"[:400]) from exc
        if response.status_code >= 300:
            raise ChannelError(f"HTTP {response.status_code}: {response.text[:200]}", retry=response.status_code >= 500)
        if message.webhook_format in ("wecom", "dingtalk"):
            try:
                reply = response.json()
            except ValueError:
                raise ChannelError(f"robot reply is not JSON: {response.text[:200]}") from None
            if reply.get("errcode", 0) != 0:
                raise ChannelError(f"robot errcode {reply.get('errcode')}: {reply.get('errmsg')}")
        return f"HTTP {response.status_code} {response.text[:200]}"

    async def close(self) -> None:
        await self._client.aclose()
