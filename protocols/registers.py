"""Register-map schema for Modbus equipment (data files in ``firmware-config/registers/*.toml``).

A register map names the points of one controller model: where each value lives (address, function
03 holding / 04 input), how to decode it (int16, uint16, int32, uint32, float32; word order; scale and
offset) and which bits of a status or fault word mean what. The edge agent decodes with it; the
simulators encode with it, so both sides share one definition.

Decoded value = raw × scale + offset. Bit fields produce one 0/1 value per named bit.
"""

from __future__ import annotations

import math
import struct
import tomllib
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Final, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from protocols.errors import ProtocolError
from protocols.topics import ID_PATTERN
from protocols.validation import problems

MAX_ADDRESS: Final = 65535


class RegisterFunction(IntEnum):
    HOLDING = 3
    INPUT = 4


class DataType(StrEnum):
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    FLOAT32 = "float32"


class WordOrder(StrEnum):
    BIG = "big"  # high word first (Modbus convention, "ABCD")
    LITTLE = "little"  # low word first ("CDAB")


WORDS: Final = {
    DataType.INT16: 1,
    DataType.UINT16: 1,
    DataType.INT32: 2,
    DataType.UINT32: 2,
    DataType.FLOAT32: 2,
}
_STRUCT: Final = {
    DataType.INT16: ">h",
    DataType.UINT16: ">H",
    DataType.INT32: ">i",
    DataType.UINT32: ">I",
    DataType.FLOAT32: ">f",
}


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BitField(_Strict):
    bit: int = Field(ge=0, le=31, description="bit number, 0 = least significant")
    name: str = Field(pattern=ID_PATTERN, description="point name of this bit (value 0 or 1)")
    label: str = Field(default="", max_length=64, description="human label (Chinese)")
    invert: bool = Field(default=False, description="report 1 when the bit is 0")


class RegisterPoint(_Strict):
    name: str = Field(pattern=ID_PATTERN, description="point name, referenced by site configs")
    label: str = Field(default="", max_length=64)
    address: int = Field(ge=0, le=MAX_ADDRESS, description="0-based wire address")
    function: RegisterFunction = Field(default=RegisterFunction.HOLDING, description="3 holding, 4 input")
    type: DataType = DataType.UINT16
    word_order: WordOrder = WordOrder.BIG
    scale: float = Field(default=1.0, allow_inf_nan=False)
    offset: float = Field(default=0.0, allow_inf_nan=False)
    unit: str = Field(default="", max_length=16)
    bits: list[BitField] = Field(default_factory=list, max_length=32)

    @property
    def words(self) -> int:
        return WORDS[self.type]

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.scale == 0:
            raise ValueError("scale must not be 0")
        if self.address + self.words - 1 > MAX_ADDRESS:
            raise ValueError("point runs past register 65535")
        width = 16 * self.words
        for field in self.bits:
            if field.bit >= width:
                raise ValueError(f"bit {field.bit} of {field.name!r} exceeds a {width}-bit {self.type.value}")
        if self.bits and self.type is DataType.FLOAT32:
            raise ValueError("bit fields need an integer type")
        return self


class RegisterMap(_Strict):
    model: str = Field(min_length=1, max_length=128, description="controller model this map describes")
    description: str = Field(default="", max_length=500)
    points: list[RegisterPoint] = Field(min_length=1, max_length=500)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        seen: set[str] = set()
        for name in self.point_names():
            if name in seen:
                raise ValueError(f"point or bit name {name!r} is defined twice")
            seen.add(name)
        return self

    def point_names(self) -> list[str]:
        names: list[str] = []
        for point in self.points:
            names.append(point.name)
            names.extend(b.name for b in point.bits)
        return names

    def units(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for point in self.points:
            out[point.name] = point.unit
            for b in point.bits:
                out[b.name] = "bool"
        return out


def _words_to_bytes(point: RegisterPoint, registers: list[int]) -> bytes:
    if len(registers) != point.words:
        raise ProtocolError("bad_registers", f"{point.name} needs {point.words} registers, got {len(registers)}")
    words = list(registers)
    if point.word_order is WordOrder.LITTLE:
        words.reverse()
    for w in words:
        if not 0 <= w <= 0xFFFF:
            raise ProtocolError("bad_registers", f"register value {w} is not 16-bit")
    return b"".join(w.to_bytes(2, "big") for w in words)


def decode_raw(point: RegisterPoint, registers: list[int]) -> float:
    """The raw number in ``registers`` (without scale/offset)."""
    value: float = struct.unpack(_STRUCT[point.type], _words_to_bytes(point, registers))[0]
    return value


def decode_point(point: RegisterPoint, registers: list[int]) -> dict[str, float]:
    """Decode one point: ``{name: scaled value}`` plus ``{bit name: 0/1}`` for each bit field."""
    raw = decode_raw(point, registers)
    out: dict[str, float] = {}
    if math.isfinite(raw):
        out[point.name] = raw * point.scale + point.offset
    else:
        out[point.name] = math.nan
    if point.bits:
        unsigned = int.from_bytes(_words_to_bytes(point, registers), "big")
        for field in point.bits:
            bit = (unsigned >> field.bit) & 1
            out[field.name] = float(bit ^ int(field.invert))
    return out


def encode_point(point: RegisterPoint, value: float) -> list[int]:
    """Registers that make ``decode_point`` return ``value`` (rounded to the point's resolution)."""
    raw = (value - point.offset) / point.scale
    if point.type is DataType.FLOAT32:
        data = struct.pack(">f", raw)
    else:
        try:
            data = struct.pack(_STRUCT[point.type], round(raw))
        except (struct.error, OverflowError, ValueError):
            raise ProtocolError("out_of_range", f"{value} does not fit {point.name} ({point.type.value})") from None
    words = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    if point.word_order is WordOrder.LITTLE:
        words.reverse()
    return words


def encode_bits(point: RegisterPoint, bits: dict[str, float], base: int = 0) -> list[int]:
    """Registers of a status word with the named bit fields set (others taken from ``base``)."""
    word = base
    for field in point.bits:
        if field.name in bits:
            on = bool(bits[field.name]) ^ field.invert
            word = (word | (1 << field.bit)) if on else (word & ~(1 << field.bit))
    data = word.to_bytes(2 * point.words, "big")
    words = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    if point.word_order is WordOrder.LITTLE:
        words.reverse()
    return words


def parse_register_map(text: str, source: str = "<string>") -> RegisterMap:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProtocolError("bad_register_map", f"{source}: TOML 语法错误（TOML syntax: {exc}）") from None
    try:
        return RegisterMap.model_validate(data)
    except ValidationError as exc:
        found = problems(exc, lambda loc: ".".join(str(p) for p in loc) or "<root>")
        raise ProtocolError("bad_register_map", "; ".join(f"{source}: {loc}: {why}" for loc, why in found)) from None


def load_register_map(path: Path) -> RegisterMap:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProtocolError("bad_register_map", f"{path}: cannot read: {exc.strerror}") from None
    return parse_register_map(text, str(path))
