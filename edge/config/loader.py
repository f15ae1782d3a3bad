"""Load a site file with everything it references (register maps, rule packs) and check it as a whole.

Every problem becomes one :class:`ConfigError` naming the file, the key and the reason, e.g.
``site.toml: devices[2].address: Input should be less than or equal to 247``.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from edge.config.models import (
    AsciiProbeConfig,
    ModbusEquipmentConfig,
    ModbusProbeConfig,
    SiteConfig,
)
from edge.errors import ConfigError
from edge.rules.models import RulePack
from protocols.errors import ProtocolError
from protocols.messages import content_version
from protocols.registers import RegisterMap, parse_register_map
from protocols.validation import problems

M = TypeVar("M", bound=BaseModel)

#: The register maps, rule packs, schema and example sites shipped with us: ``edge/shipped`` is a link to
#: ``firmware-config/`` in a checkout, and a copy of it inside an installed wheel (an edge-only box has no checkout).
SHIPPED = Path(__file__).resolve().parents[1] / "shipped"


@dataclass(frozen=True)
class LoadedSite:
    """A validated site with its register maps and rule packs resolved."""

    path: Path
    config: SiteConfig
    register_maps: dict[str, RegisterMap] = field(default_factory=dict)
    rule_packs: dict[str, RulePack] = field(default_factory=dict)
    text: str = ""
    #: name → :func:`protocols.messages.content_version` of the file as loaded (what is in force once applied)
    register_map_versions: dict[str, str] = field(default_factory=dict)
    rule_pack_versions: dict[str, str] = field(default_factory=dict)

    @property
    def version(self) -> str:
        """The site file's version (content_version of its text)."""
        return content_version(self.text)

    def device_points(self, device_id: str) -> dict[str, str]:
        """point → unit of one device, after the ``points`` filter."""
        device = self.config.device(device_id)
        return points_of(device, self.register_maps)


def points_of(
    device: ModbusProbeConfig | AsciiProbeConfig | ModbusEquipmentConfig, maps: dict[str, RegisterMap]
) -> dict[str, str]:
    if isinstance(device, ModbusEquipmentConfig):
        available = maps[device.register_map].units()
    elif isinstance(device, ModbusProbeConfig):
        available = {}
        if device.registers.temperature is not None:
            available["temperature"] = "°C"
        if device.registers.humidity is not None:
            available["humidity"] = "%RH"
    else:
        available = {"temperature": "°C"}
        if device.humidity:
            available["humidity"] = "%RH"
    if device.points is None:
        return available
    return {p: available[p] for p in device.points if p in available}


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in {"serial", "tcp", "modbus_probe", "ascii_probe", "modbus_equipment"} or part.startswith(
            ("threshold", "rate_of_change", "stale", "sensor_fault", "flag", "code", "all_of")
        ):
            continue  # discriminator tags pydantic adds to the location
        else:
            out += ("." if out else "") + part
    return out or "<root>"


def explain(error: ValidationError, source: str) -> ConfigError:
    """Every problem of ``error`` (Chinese reason, English in brackets), the first as the error's key."""
    (key, reason), *more = problems(error, _loc)
    return ConfigError(source, key, reason, tuple(more))


def _read_toml(path: Path) -> tuple[str, dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), "<file>", f"无法读取文件（cannot read: {exc.strerror}）") from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), "<file>", "不是 UTF-8 文本（not UTF-8 text）") from None
    return text, parse_toml(text, str(path))


def parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, "<syntax>", f"TOML 语法错误（{exc}）") from None


def validate_model(model: type[M], data: dict[str, Any], source: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise explain(exc, source) from None
    except ValueError as exc:  # raised outside pydantic's wrapping, e.g. by an imported validator
        raise ConfigError(source, "<root>", str(exc)) from None


def _search_dirs(base: Path, config: SiteConfig, kind: str) -> list[Path]:
    extra = config.agent.register_dirs if kind == "registers" else config.agent.rulepack_dirs
    dirs = [base / kind, base.parent / kind, *[(base / d) for d in extra], SHIPPED / kind]
    env = os.environ.get("SENTINEL_FIRMWARE_CONFIG")
    if env:
        dirs.insert(0, Path(env) / kind)
    return dirs


def _find(dirs: list[Path], name: str) -> Path | None:
    for d in dirs:
        candidate = d / f"{name}.toml"
        if candidate.is_file():
            return candidate
    return None


#: what a pushed file is: the search-dir kind and how its text is validated (as ``sentinel edge validate`` does)
ARTIFACT_KINDS = ("registers", "rulepacks")


def locate(site: LoadedSite, kind: str, name: str) -> Path:
    """Where a pushed register map / rule pack ``name`` goes: the file the site resolves it to today, unless that
    is a shipped one (never overwritten: ``<config dir>/<kind>/`` comes first in the search and is used)."""
    base = site.path.resolve().parent
    found = _find(_search_dirs(base, site.config, kind), name)
    if found is not None and SHIPPED.resolve() not in found.resolve().parents:
        return found
    return base / kind / f"{name}.toml"


def validate_artifact(kind: str, text: str, source: str) -> None:
    """Raise :class:`ConfigError` unless ``text`` is a valid register map (``registers``) or rule pack."""
    if kind == "registers":
        try:
            parse_register_map(text, source)
        except ProtocolError as exc:
            raise ConfigError(source, "<root>", f"寄存器映射无效：{exc.detail}") from None
    else:
        validate_model(RulePack, parse_toml(text, source), source)


def load_rule_pack(path: Path) -> RulePack:
    return _load_rule_pack(path)[0]


def _load_rule_pack(path: Path) -> tuple[RulePack, str]:
    text, data = _read_toml(path)
    return validate_model(RulePack, data, str(path)), content_version(text)


def _load_register_map(path: Path) -> tuple[RegisterMap, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProtocolError("bad_register_map", f"{path}: cannot read: {exc.strerror}") from None
    return parse_register_map(text, str(path)), content_version(text)


def load_site_text(text: str, source: str, base_dir: Path) -> LoadedSite:
    """Validate a site file given as text (``push_config``) relative to ``base_dir``."""
    data = parse_toml(text, source)
    config = validate_model(SiteConfig, data, source)
    maps: dict[str, RegisterMap] = {}
    versions: dict[str, dict[str, str]] = {"registers": {}, "rulepacks": {}}
    for index, device in enumerate(config.devices):
        if isinstance(device, ModbusEquipmentConfig) and device.register_map not in maps:
            found = _find(_search_dirs(base_dir, config, "registers"), device.register_map)
            key = f"devices[{index}].register_map"
            if found is None:
                raise ConfigError(
                    source,
                    key,
                    f"找不到寄存器映射 {device.register_map}.toml（register map {device.register_map!r} not found; "
                    f"searched {', '.join(str(d) for d in _search_dirs(base_dir, config, 'registers'))}）",
                )
            try:
                maps[device.register_map], versions["registers"][device.register_map] = _load_register_map(found)
            except ProtocolError as exc:
                raise ConfigError(source, key, f"寄存器映射无效：{exc.detail}") from None
    packs: dict[str, RulePack] = {}
    for index, binding in enumerate(config.rules):
        key = f"rules[{index}]"
        if binding.pack not in packs:
            found = _find(_search_dirs(base_dir, config, "rulepacks"), binding.pack)
            if found is None:
                raise ConfigError(
                    source,
                    f"{key}.pack",
                    f"找不到规则包 {binding.pack}.toml（rule pack {binding.pack!r} not found; "
                    f"searched {', '.join(str(d) for d in _search_dirs(base_dir, config, 'rulepacks'))}）",
                )
            packs[binding.pack], versions["rulepacks"][binding.pack] = _load_rule_pack(found)
        pack = packs[binding.pack]
        if binding.profile is not None and binding.profile not in pack.profiles:
            raise ConfigError(
                source,
                f"{key}.profile",
                f"规则包 {pack.id} 没有配置档 {binding.profile}，可选：{'、'.join(pack.profiles)}"
                f"（pack {pack.id!r} has no profile {binding.profile!r}）",
            )
        if pack.profiles and binding.profile is None:
            raise ConfigError(
                source,
                f"{key}.profile",
                f"规则包 {pack.id} 须指定配置档 profile，可选：{'、'.join(pack.profiles)}"
                f"（pack {pack.id!r} needs a profile）",
            )
        rule_ids = {r.id for r in pack.rules}
        for rule_id, params in binding.overrides.items():
            if rule_id not in rule_ids:
                raise ConfigError(
                    source,
                    f"{key}.overrides.{rule_id}",
                    f"规则包 {pack.id} 没有这条规则，可选：{'、'.join(sorted(rule_ids))}"
                    f"（pack {pack.id!r} has no such rule）",
                )
            rule = next(r for r in pack.rules if r.id == rule_id)
            merged = {**rule.model_dump(), **params}
            try:
                type(rule).model_validate(merged)
            except ValidationError as exc:
                err = explain(exc, source)
                raise ConfigError(source, f"{key}.overrides.{rule_id}.{err.key}", err.reason) from None
        for device_id in binding.devices:
            device = config.device(device_id)
            limit = pack.max_record_interval_s
            interval = getattr(device, "poll_interval_s", None)
            if limit is not None and interval is not None and interval > limit:
                raise ConfigError(
                    source,
                    f"devices[{config.devices.index(device)}].poll_interval_s",
                    f"测点记录间隔 {interval:g} 秒超过规则包 {pack.id} 的法定上限 {limit:g} 秒"
                    f"（{pack.record_interval_basis or pack.basis}；{interval:g} s exceeds the maximum record "
                    f"interval {limit:g} s of pack {pack.id!r}）",
                )
            points = points_of(device, maps)
            usable = [r for r in pack.rules_for(binding.profile) if all(i in points for i in r.inputs())]
            if not usable:
                raise ConfigError(
                    source,
                    f"{key}.devices",
                    f"设备 {device_id} 没有规则包 {pack.id} 读取的任何测点（它有：{'、'.join(sorted(points)) or '无'}）"
                    f"（device {device_id!r} has none of the points pack {pack.id!r} reads）",
                )
    return LoadedSite(Path(source), config, maps, packs, text, versions["registers"], versions["rulepacks"])


def load_site(path: Path) -> LoadedSite:
    text, _ = _read_toml(path)
    return load_site_text(text, str(path), path.resolve().parent)
