"""Secrets kept out of the logs: the access log's request line loses the values of secret query parameters.

A browser's ``EventSource`` cannot set an ``Authorization`` header, so the console's live feeds carry the access
token as ``?access_token=``; signed acknowledgement links carry ``?token=``. uvicorn's access log writes the whole
request target, so without this filter every live-feed connection put a valid bearer token into the cloud's log.
:data:`SECRET_PARAMS` is the list (data); :class:`SecretQueryFilter` is installed on the ``uvicorn.access`` logger
by :func:`uvicorn_log_config` (``sentinel cloud serve``).
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

#: query parameters whose values are credentials
SECRET_PARAMS = ("access_token", "refresh_token", "token", "code", "password")
_SECRET = re.compile(r"([?&](?:" + "|".join(SECRET_PARAMS) + r")=)[^&#\s]*")


def redact_target(target: str) -> str:
    """``/live?access_token=eyJ…&after=3`` → ``/live?access_token=***&after=3``."""
    return _SECRET.sub(r"\1***", target)


class SecretQueryFilter(logging.Filter):
    """Rewrites uvicorn's access record (args: client, method, target, http version, status) in place."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_target(args[2]), *args[3:])
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's default logging configuration with :class:`SecretQueryFilter` on the access handler."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["secret_query"] = {"()": f"{__name__}.SecretQueryFilter"}
    config["handlers"]["access"].setdefault("filters", []).append("secret_query")
    return config
