"""E-mail channel over SMTP (stdlib smtplib in a worker thread; STARTTLS and login when configured)."""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from cloud.notify.channels.base import ChannelError, OutboundMessage


class EmailChannel:
    name = "email"

    def __init__(
        self,
        host: str | None,
        port: int,
        *,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout_s: float = 5.0,
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.username = username
        self.password = password
        self.starttls = starttls
        self.timeout_s = timeout_s

    def _build(self, message: OutboundMessage) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.address
        mail["Subject"] = message.headline()
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = make_msgid(idstring=f"n{message.delivery_id}", domain="sentinel")
        mail["X-Sentinel-Incident"] = str(message.incident_id)
        mail.set_content(message.text(), cte="base64")  # long CJK lines stay within RFC 5321 limits
        return mail

    def _send_sync(self, mail: EmailMessage) -> str:
        assert self.host is not None
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username and self.password:
                smtp.login(self.username, self.password)
            smtp.ehlo_or_helo_if_needed()
            code, resp = smtp.mail(self.sender)
            if code != 250:
                raise smtplib.SMTPSenderRefused(code, resp, self.sender)
            code, resp = smtp.rcpt(str(mail["To"]))
            if code not in (250, 251):
                raise smtplib.SMTPRecipientsRefused({str(mail["To"]): (code, resp)})
            # bytes are sent as they are: they must already use CRLF line ends (RFC 5321)
            code, resp = smtp.data(mail.as_bytes(policy=mail.policy.clone(linesep="\r\n")))
            if code != 250:
                raise smtplib.SMTPDataError(code, resp)
            return f"{code} {resp.decode(errors='replace')} {mail['Message-ID']}"

    async def send(self, message: OutboundMessage) -> str:
        if not self.host:
            raise ChannelError("SMTP not configured (SENTINEL_NOTIFY_SMTP_HOST)", retry=False)
        if not message.address:
            raise ChannelError("no e-mail address", retry=False)
        mail = self._build(message)
        try:
            return await asyncio.to_thread(self._send_sync, mail)
        except smtplib.SMTPRecipientsRefused as exc:
            raise ChannelError(f"recipient refused: {exc.recipients}"[:400], retry=False) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise ChannelError(f"{type(exc).__name__}: {exc}"[:400]) from exc

    async def close(self) -> None:
        return None
