"""Line-oriented ASCII protocol of simple RS-485 temperature/humidity probes (protocol version 1).

Frames are single ASCII lines terminated by CR LF, NMEA style: a ``$`` start, comma-separated
fields, ``*`` and a two-digit upper-case hex checksum = XOR of every byte between ``$`` and ``*``.

==========  ==========================================  =========================================
direction   frame                                       meaning
==========  ==========================================  =========================================
host→probe  ``$RD,<addr>*CS``                           read probe ``addr`` (1–247)
probe→host  ``$TH,<addr>,<temp>,<hum>*CS``              temperature °C (``-12.5``), humidity %RH;
                                                        a field is ``ERR`` when that sensor failed,
                                                        ``--`` when the probe has no such sensor
probe→host  ``$ER,<addr>,<code>*CS``                    probe-level error code (e.g. ``E01``)
==========  ==========================================  =========================================

Example: ``$RD,3*09`` → ``$TH,3,4.5,51.2*34``. Decoders reject anything else with :class:`ProbeFrameError`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final

from protocols.errors import ProtocolError

TERMINATOR: Final = b"\r\n"
MAX_LINE: Final = 80
MIN_ADDRESS: Final = 1
MAX_ADDRESS: Final = 247
FAULT: Final = "ERR"
ABSENT: Final = "--"

_FRAME_RE: Final = re.compile(r"^\$([A-Z]{2}(?:,[A-Za-z0-9.+\-]{1,12}){1,3})\*([0-9A-F]{2})$")
_NUMBER_RE: Final = re.compile(r"^[+-]?\d{1,4}(?:\.\d{1,3})?$")


class ProbeFrameError(ProtocolError):
    """A line that is not a valid probe frame (bad syntax, checksum or field)."""

    def __init__(self, detail: str) -> None:
        super().__init__("bad_probe_frame", detail)


@dataclass(frozen=True, slots=True)
class ProbeRequest:
    address: int


@dataclass(frozen=True, slots=True)
class ProbeReading:
    """A probe's answer. ``None`` with ``*_fault`` true means the sensor reported ERR."""

    address: int
    temperature: float | None
    humidity: float | None
    temperature_fault: bool = False
    humidity_fault: bool = False


@dataclass(frozen=True, slots=True)
class ProbeErrorReply:
    address: int
    code: str


def checksum(body: str) -> str:
    """XOR of the bytes of ``body`` (the text between ``$`` and ``*``) as two upper-case hex digits."""
    value = 0
    for byte in body.encode("ascii"):
        value ^= byte
    return f"{value:02X}"


def _frame(body: str) -> bytes:
    return f"${body}*{checksum(body)}".encode("ascii") + TERMINATOR


def _check_address(address: int) -> int:
    if not MIN_ADDRESS <= address <= MAX_ADDRESS:
        raise ProbeFrameError(f"address {address} outside {MIN_ADDRESS}..{MAX_ADDRESS}")
    return address


def _format_value(value: float | None, *, fault: bool) -> str:
    if fault:
        return FAULT
    if value is None:
        return ABSENT
    if not math.isfinite(value) or abs(value) >= 10_000:
        raise ProbeFrameError(f"value {value!r} cannot be encoded")
    return f"{value:.1f}"


def encode_request(address: int) -> bytes:
    return _frame(f"RD,{_check_address(address)}")


def encode_reading(reading: ProbeReading) -> bytes:
    t = _format_value(reading.temperature, fault=reading.temperature_fault)
    h = _format_value(reading.humidity, fault=reading.humidity_fault)
    return _frame(f"TH,{_check_address(reading.address)},{t},{h}")


def encode_error(reply: ProbeErrorReply) -> bytes:
    if not re.fullmatch(r"[A-Z0-9]{1,8}", reply.code):
        raise ProbeFrameError(f"error code {reply.code!r} must be 1–8 of A-Z 0-9")
    return _frame(f"ER,{_check_address(reply.address)},{reply.code}")


def _split(line: bytes | str) -> list[str]:
    if isinstance(line, bytes):
        if len(line) > MAX_LINE:
            raise ProbeFrameError(f"line of {len(line)} bytes exceeds {MAX_LINE}")
        try:
            text = line.decode("ascii")
        except UnicodeDecodeError:
            raise ProbeFrameError("line is not ASCII") from None
    else:
        text = line
    text = text.strip("\r\n")
    if len(text) > MAX_LINE:
        raise ProbeFrameError(f"line of {len(text)} characters exceeds {MAX_LINE}")
    match = _FRAME_RE.match(text)
    if match is None:
        raise ProbeFrameError(f"not a probe frame: {text[:40]!r}")
    body, received = match.group(1), match.group(2)
    expected = checksum(body)
    if received != expected:
        raise ProbeFrameError(f"checksum {received} != computed {expected}")
    return body.split(",")


def _parse_address(text: str) -> int:
    if not text.isdigit() or len(text) > 3:
        raise ProbeFrameError(f"address {text!r} is not a number")
    return _check_address(int(text))


def _parse_value(text: str) -> tuple[float | None, bool]:
    if text == FAULT:
        return None, True
    if text == ABSENT:
        return None, False
    if not _NUMBER_RE.match(text):
        raise ProbeFrameError(f"value {text!r} is not a number")
    return float(text), False


def decode_request(line: bytes | str) -> ProbeRequest:
    fields = _split(line)
    if fields[0] != "RD" or len(fields) != 2:
        raise ProbeFrameError(f"expected RD,<addr>, got {','.join(fields)!r}")
    return ProbeRequest(_parse_address(fields[1]))


def decode_reply(line: bytes | str) -> ProbeReading | ProbeErrorReply:
    fields = _split(line)
    if fields[0] == "TH" and len(fields) == 4:
        temperature, t_fault = _parse_value(fields[2])
        humidity, h_fault = _parse_value(fields[3])
        return ProbeReading(_parse_address(fields[1]), temperature, humidity, t_fault, h_fault)
    if fields[0] == "ER" and len(fields) == 3:
        return ProbeErrorReply(_parse_address(fields[1]), fields[2])
    raise ProbeFrameError(f"unknown reply {fields[0]!r} with {len(fields)} fields")
