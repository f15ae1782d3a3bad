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
    # session 4 (stranger walk): the warnings name the file and the key to change, like the errors do
    assert f"{site}: buses[0].port: 串口" in out.output and f"{site}: cameras[0].source: 摄像头" in out.output
    assert "fridge1 寄存器编号从 0 起" in out.output and "registers.base = 1" in out.output
    assert "store1 寄存器编号从 1 起" in out.output
    loaded = load_site(site).config.devices[1]
    assert loaded.registers.wire(1) == 0  # type: ignore[union-attr]
    bad = tmp_path / "bad.toml"
    bad.write_text(site.read_text(encoding="utf-8").replace("temperature = 1,", "temperature = 0,"), encoding="utf-8")
    assert CliRunner().invoke(app, ["validate", str(bad)]).exit_code == 1


@pytest.mark.parametrize(
    ("extra", "key", "chinese"),
    [
        ("[mqtt]\nport = 70000\n", "mqtt.port", "不能大于 65535"),
        ("[mqtt]\nprot = 1\n", "mqtt.prot", "未知的键"),
        ('[mqtt]\nprotocol = "4"\n', "mqtt.protocol", "应为以下之一"),
        ("[mqtt]\nport = 'x'\n", "mqtt.port", "应为整数"),
        (
            '[[buses]]\nkind = "tcp"\nid = "b"\nhost = "h"\n[[devices]]\ntype = "modbus_probe"\nid = "d"\n'
            'bus = "b"\naddress = 1\nregisters = { temperature = 0, base = 7 }\n',
            "devices[0].registers.base",
            "应为以下之一：0、1",
        ),
        (
            '[[buses]]\nkind = "tcp"\nid = "b"\nhost = "h"\n[[devices]]\ntype = "modbus_probe"\nid = "d"\n'
            'bus = "nobus"\naddress = 1\n',
            "<root>",
            "未定义",
        ),
        (
            '[[buses]]\nkind = "tcp"\nid = "b"\nhost = "h"\n[[devices]]\ntype = "modbus_equipment"\nid = "d"\n'
            'bus = "b"\naddress = 1\nregister_map = "nope"\n',
            "devices[0].register_map",
            "找不到寄存器映射",
        ),
        (
            '[[buses]]\nkind = "tcp"\nid = "b"\nhost = "h"\n[[devices]]\ntype = "modbus_probe"\nid = "d"\n'
            'bus = "b"\naddress = 1\n[[rules]]\npack = "nope"\ndevices = ["d"]\n',
            "rules[0].pack",
            "找不到规则包",
        ),
        (
            '[[buses]]\nkind = "tcp"\nid = "b"\nhost = "h"\n[[devices]]\ntype = "modbus_probe"\nid = "d"\n'
            'bus = "b"\naddress = 1\n[[rules]]\npack = "gsp"\nprofile = "frozen"\ndevices = ["d"]\n',
            "rules[0].profile",
            "没有配置档",
        ),
        (
            '[[buses]]\nkind = "tcp"\nid = "b"\nhost = "h"\n[[devices]]\ntype = "modbus_probe"\nid = "d"\n'
            'bus = "b"\naddress = 1\n[[rules]]\npack = "gsp"\nprofile = "refrigerated"\ndevices = ["d"]\n'
            "overrides = { temp_hgih = { limit = 9 } }\n",
            "rules[0].overrides.temp_hgih",
            "没有这条规则",
        ),
    ],
)
def test_errors_say_why_in_chinese(extra: str, key: str, chinese: str, tmp_path: Path) -> None:
    """Session 4 (stranger walk): `sentinel edge validate` named file and key but gave pydantic's English reason
    ("Extra inputs are not permitted", "Input should be 0 or 1"); an installer reads Chinese first."""
    path = tmp_path / "site.toml"
    path.write_text(MINIMAL + extra, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_site(path)
    assert info.value.key == key
    assert chinese in info.value.reason, info.value.reason


def test_every_problem_is_listed_not_counted(tmp_path: Path) -> None:
    """A typo copied into two devices was reported as one problem '(+1 more)': the installer fixed one, ran
    validate again and only then learned of the second. Every problem is named with its key."""
    path = tmp_path / "site.toml"
    device = '[[devices]]\ntype = "modbus_probe"\nid = "{id}"\nbus = "b"\naddress = {a}\npoll_intervall_s = 5\n'
    path.write_text(
        MINIMAL
        + '[[buses]]\nkind = "tcp"\nid = "b"\nhost = "h"\n'
        + device.format(id="d1", a=1)
        + device.format(id="d2", a=2),
        encoding="utf-8",
    )
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    for key in ("devices[0].poll_intervall_s", "devices[1].poll_intervall_s"):
        assert f"{path}: {key}: 未知的键" in result.output, result.output
    assert "more)" not in result.output


def test_bad_register_map_is_explained_in_chinese(tmp_path: Path) -> None:
    (tmp_path / "registers").mkdir()
    (tmp_path / "registers" / "mymap.toml").write_text(
        'model = "m"\n[[points]]\nname = "p"\nlabel = "压力"\naddress = 0\ntype = "int17"\n', encoding="utf-8"
    )
    path = tmp_path / "site.toml"
    path.write_text(
        MINIMAL + '[[buses]]\nkind = "tcp"\nid = "b"\nhost = "h"\n[[devices]]\ntype = "modbus_equipment"\n'
        'id = "d"\nbus = "b"\naddress = 1\nregister_map = "mymap"\ndevice_type = "x"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_site(path)
    assert "mymap.toml" in info.value.reason and "points.0.type" in info.value.reason
    assert "应为以下之一" in info.value.reason, info.value.reason
