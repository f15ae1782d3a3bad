"""Password hashing (argon2id) and JWT bearer tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
#: A hash of a random password, verified against when a user does not exist (constant-time login).
_DUMMY_HASH = _hasher.hash("not-a-real-password-8c1f")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


class TokenError(ValueError):
    """A bearer token is missing, expired, or not signed by us."""


def create_token(
    *,
    subject: str,
    role: str,
    key: str,
    lifetime: timedelta,
    algorithm: str = "HS256",
    typ: str = "access",
    extra: dict[str, Any] | None = None,
) -> str:
    """A signed token; ``extra`` adds claims (``sid`` session id, ``jti``, ``typ=refresh``)."""
    now = datetime.now(UTC)
    claims: dict[str, Any] = {"sub": subject, "role": role, "typ": typ, "iat": now, "exp": now + lifetime}
    claims.update(extra or {})
    return jwt.encode(claims, key, algorithm=algorithm)


def decode_token(token: str, *, key: str, algorithm: str = "HS256") -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token, key, algorithms=[algorithm], options={"require": ["sub", "exp", "role"]}
        )
    except jwt.PyJWTError as exc:
        raise TokenError(str(exc)) from None
    return claims
