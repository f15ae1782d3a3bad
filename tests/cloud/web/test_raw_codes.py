"""The one raw-code detector (tests/utils/raw_codes.py) finds what the issue #19 screenshots showed and lets
through what is meant to be read."""

from __future__ import annotations

from tests.utils.raw_codes import KNOWN_LIST, raw_codes


def test_the_detector_catches_the_known_list() -> None:
    found = raw_codes(KNOWN_LIST)
    for code in ("accepted", "checked_in", "submitted", "task.assessed", "agent", "edge-pharmacy", "clue_collection"):
        assert code in found
    assert {"kind", "complaint", "repeats_90d_at_most", "lisi", "pharmacy-01/fridge1.temperature"} <= set(found)


def test_what_is_meant_to_be_read_passes() -> None:
    assert raw_codes("统一社会信用代码 91320508MA1XR6H1P7　姑苏市监责改〔2026〕001号　DR-STO-01　8.0 °C　45 %RH") == []
    assert raw_codes("9.3 ℃　限值 8 ℃　12 km　3 kg　1013 hPa") == []
