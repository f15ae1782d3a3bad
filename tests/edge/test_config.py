"""Site configuration: shipped examples validate, errors name file/key/reason, garbage never crashes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from edge.cli import SCHEMA_PATH, app, site_schema
from edge.config.loader import load_site, load_site_text
from edge.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
SITES = sorted((REPO / "firmware-config" / "sites").glob("*.toml"))
DEMO = sorted((REPO / "firmware-config" / "demo").glob("*.edge.toml"))
MINIMAL = '[agent]\nsite_id = "s1"\n'


@pytest.mark.parametrize("path", SITES, ids=lambda p: p.name)
def test_shipped_sites_validate(path: Path) -> None:
    assert load_site(path).config.devices


@pytest.mark.parametrize("path", DEMO, ids=lambda p: p.name)
def test_demo_templates_validate_once_rendered(path: Path, tmp_path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for key, value in {"mqtt_port": 1883, "modbus_port": 5020, "data_dir": tmp_path}.items():
        text = text.replace("{" + key + "}", str(value))
    assert load_site_text(text, path.name, path.parent).config.rules


@pytest.mark.parametrize(
    ("extra", "key", "reason"),
    [
        ("[mqtt]\nport = 70000\n", "mqtt.port", "less than or equal"),
        ("[mqtt]\nprot = 1\n", "mqtt.prot", "Extra inputs"),
        (
            '[[buses]]\nkind = "tcp"\nid = "b"\nhost = "h"\n[[devices]]\ntype = "modbus_probe"\nid = "d"\n'
            'bus = "b"\naddress = 300\n',
            "devices[0].address",
            "less than or equal",
        ),
        (
            '[[buses]]\nkind = "tcp"\nid = "b"\nhost = "h"\n[[devices]]\ntype = "modbus_equipment"\nid = "d"\n'
            'bus = "b"\naddress = 1\nregister_map = "nope"\n',
            "devices[0].register_map",
            "not found",
        ),
        (
            '[[buses]]\nkind = "tcp"\nid = "b"\nhost = "h"\n[[devices]]\ntype = "modbus_probe"\nid = "d"\n'
            'bus = "b"\naddress = 1\n[[rules]]\npack = "gsp"\nprofile = "frozen"\ndevices = ["d"]\n',
            "rules[0].profile",
            "no profile",
        ),
        (
            '[[buses]]\nkind = "tcp"\nid = "b"\nhost = "h"\n[[devices]]\ntype = "modbus_probe"\nid = "d"\n'
            'bus = "b"\naddress = 1\n[[rules]]\npack = "gsp"\nprofile = "refrigerated"\ndevices = ["d"]\n'
            "overrides = { temp_high = { min_duration_s = -1 } }\n",
            "rules[0].overrides.temp_high.min_duration_s",
            "greater than or equal",
        ),
    ],
)
def test_errors_name_file_key_and_reason(extra: str, key: str, reason: str, tmp_path: Path) -> None:
    path = tmp_path / "site.toml"
    path.write_text(MINIMAL + extra, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_site(path)
    assert info.value.source == str(path)
    assert info.value.key == key
    assert reason in info.value.reason
    assert str(path) in str(info.value) and key in str(info.value)


def test_toml_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[agent\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="<syntax>"):
        load_site(path)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_garbage_text_gives_config_error_not_a_crash(text: str) -> None:
    try:
        load_site_text(text, "fuzz.toml", REPO)
    except ConfigError as exc:
        assert exc.source == "fuzz.toml" and exc.key and exc.reason


toml_scalars = st.one_of(st.integers(-(10**6), 10**6), st.text(max_size=8), st.booleans(), st.floats(allow_nan=False))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["site_id", "agent_id", "batch_max_readings", "fsync", "x"]), toml_scalars))
def test_random_agent_sections_never_crash(section: dict[str, object]) -> None:
    import tomli_w

    try:
        text = tomli_w.dumps({"agent": section})
    except (TypeError, ValueError):
        return
    try:
        load_site_text(text, "fuzz.toml", REPO)
    except ConfigError as exc:
        assert exc.key.startswith(("agent", "<root>"))


def test_cli_validate_and_schema(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["validate", str(SITES[0])])
    assert ok.exit_code == 0 and "OK" in ok.output
    bad = tmp_path / "bad.toml"
    bad.write_text(MINIMAL + "[mqtt]\nport = 0\n", encoding="utf-8")
    failed = runner.invoke(app, ["validate", str(bad)])
    assert failed.exit_code == 1
    assert json.loads(SCHEMA_PATH.read_text(encoding="utf-8")) == json.loads(json.dumps(site_schema())), (
        "firmware-config/schema/site.schema.json is stale: regenerate it with "
        "`sentinel edge schema -o firmware-config/schema/site.schema.json`"
    )


def test_validate_warns_about_missing_sources_and_says_how_registers_count(tmp_path: Path) -> None:
    """Issue 15: validate accepted a serial port and a camera file that do not exist, and never said that probe
    register numbers are 0-based (a 1-based probe silently read the wrong registers)."""
    site = tmp_path / "site.toml"
    site.write_text(
        MINIMAL
        + f'data_dir = "{tmp_path}/data"\n'
        + f'[[buses]]\nkind = "serial"\nid = "rs485"\nport = "{tmp_path}/ttyUSB9"\n'
        + '[[devices]]\ntype = "modbus_probe"\nid = "fridge1"\nbus = "rs485"\naddress = 1\n'
        + '[[devices]]\ntype = "modbus_probe"\nid = "store1"\nbus = "rs485"\naddress = 2\n'
        + "registers = { base = 1, temperature = 1, humidity = 2 }\n"
        + '[[cameras]]\ncamera_id = "cam1"\nsource = "no-such-video.mp4"\n',
        encoding="utf-8",
    )
    out = CliRunner().invoke(app, ["validate", str(site)])
    assert out.exit_code == 0, out.output
    assert f"串口 {tmp_path}/ttyUSB9 不存在" in out.output
    assert "视频文件 no-such-video.mp4 不存在" in out.output
    assert "fridge1 寄存器编号从 0 起" in out.output and "registers.base = 1" in out.output
    assert "store1 寄存器编号从 1 起" in out.output
    loaded = load_site(site).config.devices[1]
    assert loaded.registers.wire(1) == 0  # type: ignore[union-attr]
    bad = tmp_path / "bad.toml"
    bad.write_text(site.read_text(encoding="utf-8").replace("temperature = 1,", "temperature = 0,"), encoding="utf-8")
    assert CliRunner().invoke(app, ["validate", str(bad)]).exit_code == 1
