"""The recipient's own proof for an acknowledgement link posted where others read it (WeCom/DingTalk groups).

A link in a group message is one person's (signed, expiring, single use, bound to the recipient), but everybody
in the group can open it, so holding it proves nothing. Such a link (``AckLink.proof_required``) acknowledges
only with the recipient's own proof:

* a person with a login gives their **password** (and TOTP code when enrolled), checked by the login check itself
  (:func:`cloud.security.lockout.attempt_login`: same throttling and lockout per user + client address);
* a person without a login (a pharmacy's designated staff) gives their **personal ack code** (个人确认码), issued
  once by a supervisor (``POST /notifications/contacts/{key}/ack-code``) and kept only as an argon2 hash.

Whoever names themselves as somebody else than the link's recipient is refused (``not_the_recipient``); every
refusal is journaled as ``notification.ack_refused`` (recipient, who claimed, reason) and counted on the link;
after ``link_proof_attempts`` wrong proofs the link is spent. The journal's ``notification.acked`` names the person
and the proof (``password`` / ``personal_code``), not "someone with the link".
"""

from __future__ import annotations

import datetime as dt
import secrets

from sqlmodel import Session, select

from cloud import journal
from cloud.core.security import hash_password, verify_password
from cloud.core.users import get_user_by_username
from cloud.notify.models import AckLink, Contact
from cloud.security.config import SecuritySettings
from cloud.security.lockout import LoginRefused, attempt_login

ACTOR = "system:notify"


class ProofRefused(ValueError):
    """The proof given with a group link is missing, wrong or not the recipient's (message in Chinese + English)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def recipient_name(session: Session, key: str) -> str:
    contact = session.exec(select(Contact).where(Contact.key == key)).first()
    return contact.full_name if contact and contact.full_name else key


def prove(
    session: Session,
    link: AckLink,
    *,
    claimed_by: str | None,
    secret: str | None,
    totp: str | None,
    sec: SecuritySettings,
    client: str | None,
    attempts: int,
    now: dt.datetime,
) -> str:
    """Check the recipient's own proof for ``link``; return the proof kind or raise :class:`ProofRefused`.

    Runs in the caller's write transaction; the caller commits a refusal too (the journal row, the counter)."""
    who = recipient_name(session, link.recipient)
    try:
        if claimed_by and claimed_by.strip() and claimed_by.strip() != link.recipient:
            raise ProofRefused(
                "not_the_recipient",
                f"此确认链接发给 {who}，{claimed_by.strip()} 不能用它代为确认；请使用发给您本人的链接，"
                "或登录平台确认 (this link belongs to another recipient)",
            )
        if not secret:
            raise ProofRefused(
                "proof_missing",
                f"此通知发在群内，仅 {who} 本人可以确认：请输入本人登录密码或个人确认码 (your own proof is required)",
            )
        contact = session.exec(select(Contact).where(Contact.key == link.recipient)).first()
        if contact is not None and contact.ack_code_hash and verify_password(secret, contact.ack_code_hash):
            return "personal_code"
        user = get_user_by_username(session, username=link.recipient)
        if user is not None:
            try:
                attempt_login(session, username=user.username, password=secret, code=totp, sec=sec, client=client)
            except LoginRefused as exc:
                raise ProofRefused(f"login_{exc.code}", exc.message) from None
            return "password"
        if contact is None or not contact.ack_code_hash:
            raise ProofRefused(
                "no_proof_available",
                f"{who} 没有登录账号，也没有个人确认码：请联系分管领导设置个人确认码 (no personal ack code issued)",
            )
        raise ProofRefused("bad_code", "个人确认码错误 (wrong personal ack code)")
    except ProofRefused as refusal:
        if refusal.reason != "proof_missing":
            link.failed_proofs = (link.failed_proofs or 0) + 1
            spent = link.failed_proofs >= attempts
            if spent:
                link.used_at = now
            session.add(link)
            journal.append(
                session,
                actor=(claimed_by or "").strip()[:64] or "anonymous",
                action="notification.ack_refused",
                target_type="incident",
                target_id=link.incident_id,
                outcome="denied",
                payload={
                    "recipient": link.recipient,
                    "claimed_by": (claimed_by or "").strip()[:64] or None,
                    "reason": refusal.reason,
                    "link_channel": link.channel,
                    "failed_proofs": link.failed_proofs,
                    "link_spent": spent,
                    "client": client,
                },
            )
        raise


def issue_ack_code(session: Session, contact: Contact, *, actor: str) -> str:
    """A new personal ack code for ``contact`` (shown once; only its hash is kept); journaled."""
    code = f"{secrets.randbelow(10**8):08d}"
    contact.ack_code_hash = hash_password(code)
    session.add(contact)
    journal.append(
        session,
        actor=actor,
        action="notification.ack_code_issued",
        target_type="contact",
        target_id=contact.id or 0,
        payload={"contact": contact.key},
    )
    return code
