"""Site configuration of one edge agent: one pydantic model per TOML section.

Validated once at load (:mod:`edge.config.loader`); unknown keys are rejected so a typo fails with
the key named. Defaults and bounds live here, in ``Field``; ``sentinel edge schema`` exports the
JSON Schema (``firmware-config/schema/site.schema.json``).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from edge.vision.config import CameraConfig, EvidenceConfig
from protocols.messages import Identifier


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsConfig(_Section):
    enabled: bool = Field(default=False, description="connect with TLS (usually port 8883)")
    ca_file: Path | None = Field(default=None, description="CA bundle; system CAs when absent")
    cert_file: Path | None = Field(default=None, description="client certificate (mutual TLS)")
    key_file: Path | None = Field(default=None, description="client private key (mutual TLS)")
    insecure: bool = Field(default=False, description="skip host-name verification (testing only)")


class MqttConfig(_Section):
    host: str = Field(default="127.0.0.1", min_length=1, description="broker host name or address")
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = Field(default=None, max_length=128)
    password: SecretStr | None = Field(
        default=None, description="broker password; prefer password_env so the file holds no secret"
    )
    password_env: str | None = Field(
        default="SENTINEL_MQTT_PASSWORD", description="environment variable read when password is not set"
    )
    protocol: Literal["auto", "5", "3.1.1"] = Field(
        default="auto",
        description="auto: MQTT 5, falling back to 3.1.1 when the broker refuses it or never answers the CONNECT",
    )
    connect_timeout_s: float = Field(
        default=10, ge=0.5, le=120, description="wait this long for the broker's CONNACK (auto: then try 3.1.1)"
    )
    keepalive_s: int = Field(default=30, ge=5, le=600)
    session_expiry_s: int = Field(default=7 * 86400, ge=0, description="MQTT 5 persistent-session lifetime")
    client_id: str | None = Field(default=None, max_length=64, description="default: edge-<site>-<agent>")
    tls: TlsConfig = Field(default_factory=TlsConfig)
    inflight_window: int = Field(
        default=64, ge=1, le=1000, description="outbox entries published but not yet acked by the cloud"
    )
    ack_timeout_s: float = Field(
        default=30, ge=1, le=3600, description="re-send unacked entries after this long without an Ack"
    )
    reconnect_min_s: float = Field(default=0.5, gt=0, le=60)
    reconnect_max_s: float = Field(default=30, gt=0, le=600)


class AgentConfig(_Section):
    site_id: Identifier = Field(description="site (supervised premises) id, e.g. pharmacy-01")
    agent_id: Identifier = Field(default="edge-1", description="this agent's id within the site")
    data_dir: Path = Field(default=Path("/var/lib/market-sentinel/edge"), description="outbox and state")
    batch_max_readings: int = Field(default=50, ge=1, le=5000, description="readings per telemetry batch")
    batch_interval_s: float = Field(default=5, gt=0, le=600, description="flush a partial batch after this")
    heartbeat_interval_s: float = Field(default=30, ge=1, le=3600)
    replay_rate_per_s: float = Field(
        default=500, gt=0, le=100_000, description="outbox entries per second published while catching up"
    )
    outbox_max_mb: float = Field(default=512, gt=0, description="disk budget of the outbox payloads")
    outbox_max_entries: int = Field(default=2_000_000, ge=100)
    fsync: Literal["full", "normal"] = Field(
        default="full", description="full: survives power loss; normal: survives a process crash"
    )
    register_dirs: list[Path] = Field(
        default_factory=list, description="where register maps are looked up (after <config dir>/registers)"
    )
    rulepack_dirs: list[Path] = Field(default_factory=list, description="where rule packs are looked up")
    config_health_deadline_s: float = Field(
        default=120,
        ge=1,
        le=3600,
        description="after a pushed configuration is applied, the agent must be healthy on it within this (every "
        "device polled successfully, the cloud acknowledging), else it rolls back by itself",
    )
    command_key: str | None = Field(
        default=None,
        description="the cloud's command public key (raw Ed25519, base64; GET /api/v1/fleet/command-key): when set, "
        "unsigned or badly signed commands are refused",
    )

    @field_validator("command_key")
    @classmethod
    def _command_key(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                raw = base64.b64decode(value, validate=True)
            except ValueError as exc:
                raise ValueError(f"command_key 不是 base64：{exc}") from exc
            if len(raw) != 32:
                raise ValueError(f"command_key 应为 32 字节的 Ed25519 公钥（base64），实际 {len(raw)} 字节")
        return value


class SerialBusConfig(_Section):
    kind: Literal["serial"]
    id: Identifier
    port: str = Field(min_length=1, description="e.g. /dev/ttyUSB0")
    baudrate: int = Field(default=9600, ge=300, le=921_600)
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    protocol: Literal["modbus_rtu", "ascii_probe"] = Field(
        default="modbus_rtu", description="what speaks on this RS-485 line"
    )
    pause_ms: int = Field(default=20, ge=0, le=5000, description="silence between two requests on the bus")
    timeout_s: float = Field(default=0.5, gt=0, le=30, description="per-request answer timeout")
    retries: int = Field(default=2, ge=0, le=10, description="retries before a slave counts as failed")
    backoff_max_s: float = Field(default=60, ge=1, le=3600, description="longest wait before retrying a dead slave")


class TcpBusConfig(_Section):
    kind: Literal["tcp"]
    id: Identifier
    host: str = Field(min_length=1)
    port: int = Field(default=502, ge=1, le=65535)
    pause_ms: int = Field(default=0, ge=0, le=5000)
    timeout_s: float = Field(default=1.0, gt=0, le=30)
    retries: int = Field(default=1, ge=0, le=10)
    backoff_max_s: float = Field(default=30, ge=1, le=3600)


BusConfig = Annotated[SerialBusConfig | TcpBusConfig, Field(discriminator="kind")]


class _Device(_Section):
    id: Identifier
    bus: Identifier = Field(description="id of the bus this device hangs on")
    label: str = Field(default="", max_length=64, description="Chinese display name / location")
    poll_interval_s: float = Field(default=10, ge=0.1, le=3600)
    points: list[Identifier] | None = Field(
        default=None, description="points to report (default: all); sensor id = <device id>.<point>"
    )


class ProbeRegisters(_Section):
    """Register numbers of a probe. **0-based by default** (the wire address in the request, as in the pymodbus
    simulator); a device manual that numbers registers from 1 (register 1 = wire address 0, or 40001 style without
    the 4) needs ``base = 1``."""

    base: Literal[0, 1] = Field(
        default=0, description="0: the numbers below are wire addresses (0-based); 1: they are 1-based (manual style)"
    )
    temperature: int | None = Field(default=0, ge=0, le=65535, description="register of the temperature (see base)")
    humidity: int | None = Field(default=1, ge=0, le=65535, description="register of the humidity (see base)")
    scale: float = Field(default=0.1, description="value = signed register × scale")

    @model_validator(mode="after")
    def _not_below_base(self) -> Self:
        for name in ("temperature", "humidity"):
            value = getattr(self, name)
            if value is not None and value < self.base:
                raise ValueError(
                    f"{name} = {value}，但 base = 1：从 1 编号的寄存器最小为 1（1-based register numbers start at 1）"
                )
        return self

    def wire(self, number: int) -> int:
        """The 0-based wire address of a configured register number."""
        return number - self.base


class ModbusProbeConfig(_Device):
    type: Literal["modbus_probe"]
    address: int = Field(ge=1, le=247, description="Modbus device (slave) id")
    function: Literal[3, 4] = Field(default=3, description="3 = holding registers, 4 = input registers")
    registers: ProbeRegisters = Field(default_factory=ProbeRegisters)


class AsciiProbeConfig(_Device):
    type: Literal["ascii_probe"]
    address: int = Field(ge=1, le=247)
    humidity: bool = Field(default=True, description="probe has a humidity sensor")


class ModbusEquipmentConfig(_Device):
    type: Literal["modbus_equipment"]
    address: int = Field(ge=0, le=247, description="Modbus device (unit) id")
    register_map: str = Field(pattern=r"^[a-z0-9_.-]+$", description="name of firmware-config/registers/<name>.toml")
    device_type: str = Field(default="controller", max_length=64, description="elevator_controller, …")


DeviceConfig = Annotated[ModbusProbeConfig | AsciiProbeConfig | ModbusEquipmentConfig, Field(discriminator="type")]


class RuleBinding(_Section):
    pack: Identifier = Field(description="rule pack id (firmware-config/rulepacks/<pack>.toml)")
    profile: Identifier | None = Field(default=None, description="profile within the pack, e.g. refrigerated")
    devices: list[Identifier] = Field(min_length=1, description="devices the pack watches")
    overrides: dict[str, dict[str, float | int | str | bool]] = Field(
        default_factory=dict, description="per rule id: parameter → value (e.g. temp_high.min_duration_s)"
    )


class SiteConfig(_Section):
    """The whole site file."""

    agent: AgentConfig
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    buses: list[BusConfig] = Field(default_factory=list)
    devices: list[DeviceConfig] = Field(default_factory=list)
    rules: list[RuleBinding] = Field(default_factory=list)
    cameras: list[CameraConfig] = Field(default_factory=list)
    evidence: EvidenceConfig = Field(
        default_factory=EvidenceConfig, description="camera snapshots: local retention and upload to the cloud"
    )

    @model_validator(mode="after")
    def _references(self) -> Self:
        bus_ids = [b.id for b in self.buses]
        if len(bus_ids) != len(set(bus_ids)):
            raise ValueError(f"总线 id 重复：{bus_ids}（bus ids must be unique）")
        buses = {b.id: b for b in self.buses}
        device_ids = [d.id for d in self.devices]
        if len(device_ids) != len(set(device_ids)):
            raise ValueError(f"设备 id 重复：{device_ids}（device ids must be unique）")
        for index, device in enumerate(self.devices):
            bus = buses.get(device.bus)
            if bus is None:
                raise ValueError(
                    f"devices[{index}] ({device.id})：总线 {device.bus} 未定义，请在 [[buses]] 中添加"
                    f"（bus {device.bus!r} is not defined in [[buses]]）"
                )
            if isinstance(device, AsciiProbeConfig) and not (
                isinstance(bus, SerialBusConfig) and bus.protocol == "ascii_probe"
            ):
                raise ValueError(
                    f'devices[{index}] ({device.id})：ascii_probe 探头须接在 protocol = "ascii_probe" 的串口总线上'
                    "（ascii_probe needs a serial bus with protocol ascii_probe）"
                )
            if not isinstance(device, AsciiProbeConfig) and isinstance(bus, SerialBusConfig):
                if bus.protocol != "modbus_rtu":
                    raise ValueError(
                        f"devices[{index}] ({device.id})：总线 {bus.id} 不是 modbus_rtu 协议"
                        f"（bus {bus.id!r} does not speak modbus_rtu）"
                    )
        known = set(device_ids)
        for index, binding in enumerate(self.rules):
            missing = [d for d in binding.devices if d not in known]
            if missing:
                raise ValueError(
                    f"rules[{index}] ({binding.pack})：设备 {'、'.join(missing)} 未在 [[devices]] 中定义"
                    f"（unknown devices {missing}）"
                )
        return self

    def device(self, device_id: str) -> ModbusProbeConfig | AsciiProbeConfig | ModbusEquipmentConfig:
        for d in self.devices:
            if d.id == device_id:
                return d
        raise KeyError(device_id)
