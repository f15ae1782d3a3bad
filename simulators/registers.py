"""Register images of simulated devices: what a probe or controller would answer at scenario time t."""

from __future__ import annotations

from pathlib import Path

from protocols.registers import RegisterFunction, RegisterMap, encode_bits, encode_point, load_register_map
from simulators.scenario import ScenarioDevice, fault_at, values_at

FIRMWARE_CONFIG = Path(__file__).resolve().parents[1] / "firmware-config"
PROBE_FAULT = 0x8000  # -32768: the probe's "sensor broken" value


def find_register_map(name: str, extra: Path | None = None) -> RegisterMap:
    for d in ([extra] if extra else []) + [FIRMWARE_CONFIG / "registers"]:
        path = d / f"{name}.toml"
        if path.is_file():
            return load_register_map(path)
    raise FileNotFoundError(f"register map {name!r} not found")


def probe_registers(device: ScenarioDevice, t: float) -> list[int]:
    """Registers 0 (temperature ×10) and 1 (humidity ×10) of an RS-485 probe, signed 16-bit."""
    values = values_at(device, t)
    error = fault_at(device, t) == "sensor_error"
    out = []
    for name in ("temperature", "humidity"):
        if error or name not in values:
            out.append(PROBE_FAULT)
        else:
            raw = max(-32767, min(32766, round(values[name] * 10)))
            out.append(raw & 0xFFFF)
    return out


def equipment_registers(
    device: ScenarioDevice, register_map: RegisterMap, t: float
) -> dict[RegisterFunction, dict[int, int]]:
    """address → register value, per function, for every point of the map."""
    values = values_at(device, t)
    image: dict[RegisterFunction, dict[int, int]] = {f: {} for f in RegisterFunction}
    for point in register_map.points:
        if point.bits:
            words = encode_bits(point, {b.name: values.get(b.name, 0.0) for b in point.bits}, 0)
        else:
            words = encode_point(point, values.get(point.name, 0.0))
        for i, word in enumerate(words):
            image[point.function][point.address + i] = word
    return image
