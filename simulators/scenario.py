"""Scenario files: time-scripted device values, injected faults and the ground truth of expected alerts.

.. code-block:: toml

    [scenario]
    id = "pharmacy_demo"
    title = "药品冷藏柜温度超标"
    duration_s = 600

    [[devices]]
    id = "fridge1"            # matches the device id in the edge site file
    kind = "probe"            # probe | equipment
    unit_id = 1               # Modbus device id / ASCII probe address
    noise = 0.05              # ± uniform noise on analog probe values (deterministic)
    values = { temperature = 5.0, humidity = 50.0 }

    [[devices.script]]        # from t=15 s ramp linearly to 12 °C over 20 s
    at = 15
    ramp_s = 20
    values = { temperature = 12.0 }

    [[devices.script]]        # from t=100 s the probe stops answering; fault = "none" ends it
    at = 100
    fault = "silent"          # silent | sensor_error | none

    [[expect]]                # ground truth: this alert must be raised (and cleared) in the window
    device = "fridge1"
    rule = "gsp.temp_high"
    raise_after_s = 15
    raise_before_s = 60
    clear_before_s = 400

Times are scenario seconds; a simulator's ``time_scale`` runs them faster than real time.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from protocols.errors import ProtocolError
from protocols.topics import ID_PATTERN

Fault = Literal["silent", "sensor_error", "none"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScriptStep(_Strict):
    at: float = Field(ge=0, description="scenario second this step starts")
    ramp_s: float = Field(default=0, ge=0, description="linear ramp from the previous value")
    values: dict[str, float] = Field(default_factory=dict)
    fault: Fault | None = None


class ScenarioDevice(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    kind: Literal["probe", "equipment"]
    unit_id: int = Field(ge=1, le=247)
    register_map: str | None = Field(default=None, description="equipment: firmware-config/registers/<name>.toml")
    noise: float = Field(default=0.0, ge=0, le=10)
    values: dict[str, float] = Field(default_factory=dict)
    script: list[ScriptStep] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.kind == "equipment" and not self.register_map:
            raise ValueError(f"device {self.id}: equipment needs register_map")
        times = [s.at for s in self.script]
        if times != sorted(times):
            raise ValueError(f"device {self.id}: script steps must be in time order")
        return self


class Expectation(_Strict):
    device: str
    rule: str = Field(description="wire rule id <pack>.<rule>")
    raise_after_s: float = Field(default=0, ge=0)
    raise_before_s: float = Field(gt=0)
    clear_before_s: float | None = Field(default=None, gt=0, description="None: stays open")


class ScenarioInfo(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    title: str = ""
    duration_s: float = Field(default=600, gt=0)
    site: str | None = Field(default=None, description="site id this scenario feeds, for humans")


class Scenario(_Strict):
    scenario: ScenarioInfo
    devices: list[ScenarioDevice] = Field(min_length=1)
    expect: list[Expectation] = Field(default_factory=list)

    def device(self, device_id: str) -> ScenarioDevice:
        for d in self.devices:
            if d.id == device_id:
                return d
        raise KeyError(device_id)


def load_scenario(path: Path) -> Scenario:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return Scenario.model_validate(data)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ProtocolError("bad_scenario", f"{path}: {exc}") from None
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise ProtocolError("bad_scenario", f"{path}: {loc}: {first['msg']}") from None


def _noise(seed: str, t: float, amplitude: float) -> float:
    if amplitude == 0:
        return 0.0
    # deterministic, smooth-ish noise from the device/point name and the second
    phase = (sum(seed.encode()) % 97) / 97 * 2 * math.pi
    return amplitude * math.sin(t * 0.7 + phase) * math.cos(t * 0.13 + phase / 2)


def values_at(device: ScenarioDevice, t: float) -> dict[str, float]:
    """Every scripted value of ``device`` at scenario time ``t`` (ramps interpolated, noise added)."""
    current = dict(device.values)
    for step in device.script:
        if step.at > t:
            break
        if step.ramp_s > 0 and t < step.at + step.ramp_s:
            share = (t - step.at) / step.ramp_s
            for name, target in step.values.items():
                start = current.get(name, target)
                current[name] = start + (target - start) * share
        else:
            current.update(step.values)
    if device.kind == "probe":
        for name in current:
            current[name] += _noise(device.id + name, t, device.noise)
    return current


def fault_at(device: ScenarioDevice, t: float) -> Fault:
    fault: Fault = "none"
    for step in device.script:
        if step.at > t:
            break
        if step.fault is not None:
            fault = step.fault
    return fault
