"""Password hashing (argon2id) and JWT bearer tokens."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

log = logging.getLogger(__name__)

#: ``SENTINEL_PASSWORD_HASH_COST``: ``standard`` (default; argon2id with RFC 9106's low-memory parameters,
#: 64 MiB, 3 passes) or ``test`` (1 pass, 8 KiB: for test suites that create hundreds of users; never in
#: service — ``sentinel cloud serve`` warns loudly). A stored hash carries its own parameters, so a hash made
#: under ``test`` still verifies under ``standard`` and is upgraded at the next login (:func:`needs_rehash`).
PASSWORD_HASH_COST_ENV = "SENTINEL_PASSWORD_HASH_COST"
#: (time_cost passes, memory_cost KiB, parallelism lanes) per profile.
_COSTS: dict[str, tuple[int, int, int]] = {"standard": (3, 65536, 4), "test": (1, 8, 1)}


def password_hash_cost() -> str:
    """The configured cost profile; an unknown value is a configuration error naming the variable."""
    cost = os.environ.get(PASSWORD_HASH_COST_ENV, "standard").strip() or "standard"
    if cost not in _COSTS:
        raise ValueError(f"{PASSWORD_HASH_COST_ENV}={cost!r}: expected one of {', '.join(sorted(_COSTS))}")
    return cost


_passes, _memory_kib, _lanes = _COSTS[password_hash_cost()]
_hasher = PasswordHasher(time_cost=_passes, memory_cost=_memory_kib, parallelism=_lanes)
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
