"""Register-map schema: encode/decode round trips for every type and word order, bit fields, shipped maps."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.errors import ProtocolError
from protocols.registers import (
    DataType,
    RegisterPoint,
    WordOrder,
    decode_point,
    encode_bits,
    encode_point,
    load_register_map,
    parse_register_map,
)

REGISTERS = Path(__file__).resolve().parents[2] / "firmware-config" / "registers"
RANGES = {
    DataType.INT16: (-32768, 32767),
    DataType.UINT16: (0, 65535),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.UINT32: (0, 2**32 - 1),
}


@pytest.mark.parametrize("dtype", list(RANGES))
@pytest.mark.parametrize("order", list(WordOrder))
@given(data=st.data())
def test_integer_round_trip(dtype: DataType, order: WordOrder, data: st.DataObject) -> None:
    low, high = RANGES[dtype]
    raw = data.draw(st.integers(min_value=low, max_value=high))
    point = RegisterPoint(name="p", address=10, type=dtype, word_order=order, scale=0.1, offset=-5)
    value = raw * 0.1 - 5
    assert decode_point(point, encode_point(point, value))["p"] == pytest.approx(value)


@pytest.mark.parametrize("order", list(WordOrder))
@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
def test_float32_round_trip(order: WordOrder, value: float) -> None:
    point = RegisterPoint(name="p", address=0, type=DataType.FLOAT32, word_order=order)
    assert decode_point(point, encode_point(point, value))["p"] == pytest.approx(value, rel=1e-6, abs=1e-30)


def test_word_order_matters() -> None:
    big = RegisterPoint(name="p", address=0, type=DataType.INT32)
    little = RegisterPoint(name="p", address=0, type=DataType.INT32, word_order=WordOrder.LITTLE)
    assert encode_point(big, 0x00010002) == [1, 2]
    assert encode_point(little, 0x00010002) == [2, 1]


def test_bits() -> None:
    point = RegisterPoint.model_validate(
        {"name": "w", "address": 0, "bits": [{"bit": 0, "name": "a"}, {"bit": 3, "name": "b", "invert": True}]}
    )
    regs = encode_bits(point, {"a": 1, "b": 0})
    assert regs == [0b1001]
    assert decode_point(point, regs) == {"w": 9.0, "a": 1.0, "b": 0.0}


def test_shipped_maps_load() -> None:
    maps = [load_register_map(p) for p in sorted(REGISTERS.glob("*.toml"))]
    assert len(maps) >= 3
    elevator = load_register_map(REGISTERS / "elevator_controller.toml")
    assert {f"fault_0{i}" for i in range(1, 9)} <= set(elevator.point_names())


def test_errors_name_the_source_and_key() -> None:
    with pytest.raises(ProtocolError, match=r"m.toml: points.0.address"):
        parse_register_map('model = "x"\n[[points]]\nname = "a"\naddress = 70000\n', "m.toml")
    with pytest.raises(ProtocolError, match="defined twice"):
        parse_register_map(
            'model = "x"\n[[points]]\nname = "a"\naddress = 1\n[[points]]\nname = "a"\naddress = 2\n', "m.toml"
        )
