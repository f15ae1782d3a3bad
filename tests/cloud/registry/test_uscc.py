"""统一社会信用代码 check character (GB 32100-2015): known codes and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud.registry import uscc

# Codes published by the companies themselves (business licences on their websites / annual reports),
# plus the sample code used in GB 32100 explanations.
KNOWN_VALID = [
    "91350100M000100Y43",
    "914403001922038216",  # 华为技术有限公司
    "9144030071526726XG",  # 深圳市腾讯计算机系统有限公司
    "91330100799655058B",  # 阿里巴巴（中国）有限公司 (Hangzhou)
    "91110108551385082Q",  # 北京小米科技有限责任公司
]

bodies = st.builds(
    lambda head, division, org: head + division + org,
    st.text(alphabet=uscc.ALPHABET, min_size=2, max_size=2),
    st.text(alphabet="0123456789", min_size=6, max_size=6),
    st.text(alphabet=uscc.ALPHABET, min_size=9, max_size=9),
)


@pytest.mark.parametrize("code", KNOWN_VALID)
def test_known_codes_validate(code: str) -> None:
    assert uscc.validate(code).code == code
    assert uscc.validate(code.lower() + " ").code == code  # normalised


def test_weights_are_powers_of_three_mod_31() -> None:
    assert uscc.WEIGHTS == tuple(pow(3, i, 31) for i in range(17))
    assert len(uscc.ALPHABET) == 31 and not set("IOSVZ") & set(uscc.ALPHABET)


@given(bodies)
def test_completed_body_always_validates(body: str) -> None:
    code = uscc.make(body)
    assert len(code) == 18 and uscc.is_valid(code)
    assert uscc.validate(code).division == body[2:8]


@given(bodies, st.integers(0, 16), st.sampled_from(uscc.ALPHABET))
def test_any_single_substitution_is_detected(body: str, pos: int, ch: str) -> None:
    code = uscc.make(body)
    if code[pos] == ch or (2 <= pos < 8 and not ch.isdigit()):
        return
    tampered = code[:pos] + ch + code[pos + 1 :]
    assert not uscc.is_valid(tampered)


@given(bodies, st.integers(0, 15))
def test_adjacent_transposition_is_detected(body: str, pos: int) -> None:
    code = uscc.make(body)
    a, b = code[pos], code[pos + 1]
    if a == b:
        return
    swapped = code[:pos] + b + a + code[pos + 2 :]
    assert not uscc.is_valid(swapped)


@pytest.mark.parametrize(
    ("code", "fragment"),
    [
        ("91350100M000100Y4", "应为 18 位"),
        ("91350100M000100Y4I", "不在代码字符集内"),
        ("9135O100M000100Y43", "不在代码字符集内"),
        ("913501A0M000100Y43", "行政区划码"),
        ("91350100M000100Y44", "校验码错误：第 18 位应为 '3'"),
    ],
)
def test_reasons(code: str, fragment: str) -> None:
    with pytest.raises(uscc.InvalidUSCC) as info:
        uscc.validate(code)
    assert fragment in info.value.reason
