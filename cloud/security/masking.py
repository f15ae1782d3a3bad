"""Display masking of personal data (GB/T 35273 §7.2), applied server-side to every JSON response.

* Phone ``13812341234`` → ``138****1234``; ID ``110101199003071234`` → ``110101********1234`` (first 6, last 4);
  name ``张三丰`` → ``张**``; address → the first 6 characters and ``****``.
* Which keys hold personal data is data (:data:`PII_KEYS`): the complainant/reporter fields of work orders and
  any ``*_phone``/``*_id_no`` key of a member of the public. Staff contact numbers (notification contacts) are
  not in the list.
* :class:`cloud.security.http.PiiMaskingMiddleware` runs :func:`redact` over every JSON body under ``/api``.
  The only way to see the clear values is ``GET /api/v1/pii/...`` (roles and duties in
  :data:`REVEAL_ROLES`/:data:`REVEAL_DUTIES`, a reason required), and each such view is journaled
  (``pii.revealed``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_DIGITS = re.compile(r"\d")


def mask_phone(value: str) -> str:
    """Keep the first 3 and last 4 digits of an 11-digit mobile (138****1234); other numbers keep the last 4."""
    digits = "".join(_DIGITS.findall(value))
    if len(digits) >= 11:
        core = digits[-11:]
        return f"{core[:3]}****{core[-4:]}"
    if len(digits) > 4:
        return "*" * (len(digits) - 4) + digits[-4:]
    return "****"


def mask_id(value: str) -> str:
    """Resident ID / other certificate numbers: first 6 and last 4 kept (110101********1234)."""
    text = value.strip()
    if len(text) <= 10:
        return "*" * len(text) if len(text) <= 4 else text[:2] + "*" * (len(text) - 4) + text[-2:]
    return text[:6] + "*" * (len(text) - 10) + text[-4:]


def mask_name(value: str) -> str:
    text = value.strip()
    if not text:
        return text
    return text[0] + "*" * max(1, len(text) - 1)


def mask_address(value: str) -> str:
    text = value.strip()
    return text[:6] + "****" if len(text) > 6 else "****"


Masker = Callable[[str], str]

#: key → masker. Keys are exact JSON keys; extend here (data, not scattered code).
PII_KEYS: dict[str, Masker] = {
    "complainant_phone": mask_phone,
    "complainant_id_no": mask_id,
    "complainant_name": mask_name,
    "complainant_address": mask_address,
    "reporter_phone": mask_phone,
    "reporter_id_no": mask_id,
    "reporter_name": mask_name,
    "reporter_address": mask_address,
    "informant_phone": mask_phone,
    "informant_name": mask_name,
    "id_no": mask_id,
    "id_number": mask_id,
    "id_card": mask_id,
    "citizen_id": mask_id,
}
#: substrings that make a response worth parsing (cheap pre-check on the raw bytes)
MARKERS: tuple[bytes, ...] = tuple(sorted({f'"{k}"'.encode() for k in PII_KEYS}))

#: account roles and workflow duties that may open the clear values (every view journaled)
REVEAL_ROLES: frozenset[str] = frozenset({"supervisor"})
REVEAL_DUTIES: frozenset[str] = frozenset({"intake_clerk", "supervisor", "bureau_head"})


def redact(data: Any) -> Any:
    """A copy of ``data`` (JSON values) with every PII key's string value masked."""
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            masker = PII_KEYS.get(key) if isinstance(key, str) else None
            if masker is not None and isinstance(value, str) and value:
                out[key] = masker(value)
            else:
                out[key] = redact(value)
        return out
    if isinstance(data, list):
        return [redact(v) for v in data]
    return data


def may_contain_pii(body: bytes) -> bool:
    return any(marker in body for marker in MARKERS)
