"""ASCII probe codec: round trips, checksum, and no crash on garbage (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.probe_ascii import (
    ProbeErrorReply,
    ProbeFrameError,
    ProbeReading,
    checksum,
    decode_reply,
    decode_request,
    encode_error,
    encode_reading,
    encode_request,
)

addresses = st.integers(min_value=1, max_value=247)
values = st.one_of(st.none(), st.floats(min_value=-999, max_value=999, allow_nan=False).map(lambda v: round(v, 1)))


@given(addresses)
def test_request_round_trip(address: int) -> None:
    assert decode_request(encode_request(address)).address == address


@given(addresses, values, values, st.booleans(), st.booleans())
def test_reading_round_trip(address: int, t: float | None, h: float | None, tf: bool, hf: bool) -> None:
    reading = ProbeReading(address, None if tf else t, None if hf else h, tf, hf)
    decoded = decode_reply(encode_reading(reading))
    assert decoded == reading


def test_error_reply_and_documented_example() -> None:
    assert decode_reply(encode_error(ProbeErrorReply(7, "E01"))) == ProbeErrorReply(7, "E01")
    assert encode_request(3) == b"$RD,3*09\r\n"
    assert decode_reply(b"$TH,3,4.5,51.2*34\r\n") == ProbeReading(3, 4.5, 51.2)


def test_bad_checksum_is_named() -> None:
    line = encode_reading(ProbeReading(3, 4.5, 51.2)).replace(b"4.5", b"9.5")
    with pytest.raises(ProbeFrameError, match="checksum"):
        decode_reply(line)


@pytest.mark.parametrize("address", [0, 248, -1])
def test_address_out_of_range(address: int) -> None:
    with pytest.raises(ProbeFrameError, match="address"):
        encode_request(address)


@given(st.binary(max_size=120))
def test_garbage_never_crashes(data: bytes) -> None:
    for decoder in (decode_reply, decode_request):
        try:
            decoder(data)
        except ProbeFrameError as exc:
            assert exc.reason == "bad_probe_frame"


@given(st.text(alphabet="$,*0123456789ABCDEFRDTHER.-+\r\n", max_size=40))
def test_near_miss_text_never_crashes(text: str) -> None:
    try:
        decode_reply(text)
    except ProbeFrameError:
        pass


def test_checksum_is_xor() -> None:
    assert checksum("RD,3") == f"{ord('R') ^ ord('D') ^ ord(',') ^ ord('3'):02X}"
