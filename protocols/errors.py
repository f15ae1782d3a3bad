"""Errors raised at the protocol edge."""


class ProtocolError(ValueError):
    """A topic or payload does not follow the wire contract.

    ``reason`` is a short machine-friendly code (``malformed_json``, ``invalid_payload``,
    ``unknown_channel`` ...); ``str(error)`` is a human explanation naming the offending field.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
