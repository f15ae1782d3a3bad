"""Optional TOTP second factor (RFC 6238, 30 s steps, ±1 step), replay of an accepted code refused."""

from __future__ import annotations

import hmac
import time

import pyotp


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, *, username: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)


def current_code(secret: str, at: float | None = None) -> str:
    """The code an authenticator app shows now (tests, enrolment checks)."""
    return pyotp.TOTP(secret).at(int(at if at is not None else time.time()))


def accepted_step(secret: str, code: str, *, last_step: int | None, at: float | None = None) -> int | None:
    """The time step ``code`` belongs to (now ±1), or None; a step at or before ``last_step`` is refused."""
    code = (code or "").strip()
    if not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    now = int(at if at is not None else time.time())
    step = now // totp.interval
    for candidate in (step, step - 1, step + 1):
        if hmac.compare_digest(totp.generate_otp(candidate), code):
            if last_step is not None and candidate <= last_step:
                return None
            return candidate
    return None
