"""``sentinel fleet`` against the real cloud app on uvicorn over HTTP (issue 15: CLI and group targets).

One cloud per module. Agents become known to it the way they do in production: their heartbeats go through the
real ingest writer (no broker: delivery to an agent is proved by tests/cloud/test_fleet_commands.py); their
answers (``cmd_result``) go through the same writer. What this proves: every target kind resolves to the right
agents (a department includes its sub-departments; a domain is the sites' category; an explicit list may name an
agent not seen yet), a group fans out into one signed, journaled command per agent with one group id, the CLI
shows its progress and each agent's result (a rollback is a failure of the command's purpose: exit code 1), a
command can be cancelled (and is then neither delivered nor counted as desired), bad payloads are refused with a
reason before anything is signed, and only an administrator may create or cancel.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from cloud.core.db import make_engine
from cloud.fleet_commands import FleetCommand, due_for_delivery
from cloud.ingest.writer import IngestWriter, RawMessage
from cloud.journal import JournalEvent
from cloud.telemetry.store import TelemetryStore, open_store
from protocols import Channel, encode, topic_for
from protocols.messages import CommandResult
from sentinel_cli.fleet import app
from tests.cloud.test_fleet_view import heartbeat
from tests.cloud.web.conftest import ADMIN_PASSWORD, PASSWORD, LiveCloud, live_cloud
from tests.utils.threads import no_leaked_threads  # noqa: F401 (the module server's worker pool is not a leak)

REPO = Path(__file__).resolve().parents[2]
AGENTS = [("drug-a", "edge-1"), ("drug-a", "edge-2"), ("food-b", "edge-1"), ("drug-c", "edge-1")]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveCloud, Engine, TelemetryStore]]:
    with live_cloud(tmp_path_factory.mktemp("fleet-cli")) as cloud:
        admin = cloud.client()
        county = admin.post("/registry/departments", json={"code": "county", "name": "某县市场监督管理局"}).json()
        town = admin.post(
            "/registry/departments", json={"code": "town-1", "name": "城关市场监督管理所", "parent_id": county["id"]}
        ).json()
        other = admin.post("/registry/departments", json={"code": "town-2", "name": "河西市场监督管理所"}).json()
        cloud.ids.update(county=county["id"], town=town["id"], other=other["id"])
        for site_id, category, dep in (("drug-a", "drug", town), ("food-b", "food", town), ("drug-c", "drug", other)):
            r = admin.post(
                "/registry/sites",
                json={"site_id": site_id, "name": f"场所 {site_id}", "category": category, "department_id": dep["id"]},
            )
            assert r.status_code == 201, r.text
        r = admin.post(
            "/users",
            json={"username": "chief", "password": PASSWORD, "full_name": "周科长", "role": "supervisor"},
        )
        assert r.status_code == 201, r.text
        engine = make_engine(cloud.settings)
        store = open_store(cloud.settings, engine)
        IngestWriter(engine, store).commit([heartbeat(s, a) for s, a in AGENTS])
        try:
            yield cloud, engine, store
        finally:
            store.close()
            engine.dispose()


def run(cloud: LiveCloud, *args: str, user: str = "admin", password: str = ADMIN_PASSWORD) -> Any:
    env = {"SENTINEL_URL": cloud.base, "SENTINEL_USER": user, "SENTINEL_PASSWORD": password}
    return CliRunner().invoke(app, list(args), env=env)


def answer(engine: Engine, store: TelemetryStore, row: FleetCommand, ok: bool, **extra: Any) -> None:
    result = CommandResult(
        site_id=row.site_id,
        agent_id=row.agent_id,
        command_id=row.id,
        ok=ok,
        detail=extra.pop("detail", "配置已应用" if ok else "新配置健康检查未通过，已回滚"),
        ts=datetime.now(UTC),
        **extra,
    )
    IngestWriter(engine, store).commit(
        [RawMessage(topic_for(row.site_id, row.agent_id, Channel.COMMAND_RESULT), encode(result))]
    )


def group_rows(engine: Engine, group_id: str) -> list[FleetCommand]:
    with Session(engine) as session:
        return list(session.exec(select(FleetCommand).where(FleetCommand.group_id == group_id)))


def group_id_of(output: str) -> str:
    return output.split("组命令 ", 1)[1].split("：", 1)[0]


def test_targets_resolve_to_the_right_agents(world: tuple[LiveCloud, Engine, TelemetryStore]) -> None:
    cloud = world[0]
    admin = cloud.client()

    def agents(target: dict[str, Any]) -> list[str]:
        r = admin.post("/fleet/groups", json={"name": "ping", "why": "范围检查", "target": target})
        assert r.status_code == 201, r.text
        return sorted(f"{c['site_id']}/{c['agent_id']}" for c in r.json()["commands"])

    assert agents({"site_id": "drug-a"}) == ["drug-a/edge-1", "drug-a/edge-2"]
    assert agents({"category": "drug"}) == ["drug-a/edge-1", "drug-a/edge-2", "drug-c/edge-1"]
    assert agents({"department_id": cloud.ids["town"]}) == ["drug-a/edge-1", "drug-a/edge-2", "food-b/edge-1"]
    assert agents({"department_id": cloud.ids["county"]}) == agents({"department_id": cloud.ids["town"]})
    assert agents({"agents": ["food-b/edge-1", "new-site/edge-9", "food-b/edge-1"]}) == [
        "food-b/edge-1",
        "new-site/edge-9",
    ]
    r = admin.post("/fleet/groups", json={"name": "ping", "why": "范围检查", "target": {"category": "special"}})
    assert r.status_code == 422 and "没有已知的边缘代理" in r.json()["detail"]
    r = admin.post(
        "/fleet/groups", json={"name": "ping", "why": "两种目标", "target": {"site_id": "x", "category": "y"}}
    )
    assert r.status_code == 422 and "只须给出一种" in r.text


def test_group_push_via_cli_shows_progress_and_each_result(
    world: tuple[LiveCloud, Engine, TelemetryStore], tmp_path: Path
) -> None:
    cloud, engine, store = world
    pack = tmp_path / "gsp-cold-chain.toml"
    text = (REPO / "firmware-config" / "rulepacks" / "cold_chain.toml").read_text(encoding="utf-8")
    pack.write_text(text, encoding="utf-8")
    out = run(cloud, "push-rule-pack", "--file", str(pack), "--why", "收紧冷链上限", "--site", "drug-a")
    assert out.exit_code == 0, out.output
    group_id = group_id_of(out.output)
    rows = group_rows(engine, group_id)
    assert {(r.site_id, r.agent_id) for r in rows} == {("drug-a", "edge-1"), ("drug-a", "edge-2")}
    assert {r.name for r in rows} == {"push_rule_pack"} and len({r.signature for r in rows}) == 2
    assert all(r.payload == {"text": text, "name": "gsp-cold-chain"} for r in rows)
    assert len({r.config_version for r in rows}) == 1 and rows[0].config_version

    out = run(cloud, "group", group_id)
    assert out.exit_code == 0 and "共 2 台：待发送 2" in out.output, out.output
    first, second = sorted(rows, key=lambda r: r.agent_id)
    answer(engine, store, first, True, version=first.config_version)
    out = run(cloud, "group", group_id)
    assert "已执行 1" in out.output and "待发送 1" in out.output, out.output
    answer(engine, store, second, False, version="0ld0ld0ld0ld", rolled_back=True)
    out = run(cloud, "group", group_id, "--wait", "--timeout", "5")
    assert out.exit_code == 1, out.output  # one agent rolled back
    assert (
        "其中自动回滚 1" in out.output and "失败（已自动回滚）" in out.output and "生效版本 0ld0ld0ld0ld" in out.output
    )
    with Session(engine) as session:
        journal = [e.action for e in session.exec(select(JournalEvent).where(JournalEvent.target_id == group_id))]
    assert journal == ["fleet.group_created"]
    out = run(cloud, "agents")  # desired vs reported per file: the rolled-back agent still runs the previous one
    assert out.exit_code == 0, out.output
    block = out.output.split("drug-a/edge-2", 1)[1].split("drug-c/", 1)[0]
    assert "≠ 有未同步的文件" in block and "规则包 gsp-cold-chain.toml" in block and "≠ 未同步" in block, block
    assert "已自动回滚；生效版本 0ld0ld0ld0ld" in block, block


def test_one_agent_command_status_logs_output_and_cancel(world: tuple[LiveCloud, Engine, TelemetryStore]) -> None:
    cloud, engine, store = world
    out = run(cloud, "logs", "food-b/edge-1", "-n", "50", "--no-wait")
    assert out.exit_code == 0, out.output
    command_id = out.output.split("命令 ", 1)[1].split("：", 1)[0]
    with Session(engine) as session:
        row = session.get(FleetCommand, command_id)
        assert row is not None and row.payload == {"lines": 50} and row.group_id is None
    answer(engine, store, row, True, detail="最近 2 行日志", output="line one\nline two\n")
    out = run(cloud, "status", command_id, "--wait")
    assert out.exit_code == 0 and "已执行" in out.output and "line one\nline two" in out.output, out.output

    out = run(cloud, "push-config", "food-b/edge-1", "--file", "/nonexistent.toml", "--why", "缺文件")
    assert out.exit_code == 2 and "无法读取 /nonexistent.toml" in out.output
    out = run(cloud, "reload", "food-b/edge-1", "--no-wait")
    reload_id = out.output.split("命令 ", 1)[1].split("：", 1)[0]
    out = run(cloud, "cancel", reload_id, "--why", "误操作")
    assert out.exit_code == 0 and "已取消" in out.output, out.output
    out = run(cloud, "cancel", reload_id, "--why", "再取消")
    assert out.exit_code == 2 and "不能取消" in out.output
    with engine.begin() as conn:  # even with the agent online, a cancelled command is not delivered
        due = due_for_delivery(conn, cloud.settings, datetime.now(UTC))
    assert reload_id not in {command_id for command_id, _topic, _payload in due}

    out = run(cloud, "agents")
    assert out.exit_code == 0 and "food-b/edge-1" in out.output and "在线" in out.output


def test_bad_requests_are_refused_before_signing(world: tuple[LiveCloud, Engine, TelemetryStore]) -> None:
    cloud, engine, _ = world
    admin = cloud.client()
    url = "/fleet/agents/drug-c/edge-1/commands"
    with Session(engine) as session:
        before = len(session.exec(select(FleetCommand)).all())
    cases = [
        ({"name": "push_rule_pack", "payload": {"text": "id = 'x'"}, "why": "缺名称"}, "payload.name"),
        ({"name": "push_register_map", "payload": {"name": "../etc", "text": "x"}, "why": "路径"}, "payload.name"),
        ({"name": "push_config", "payload": {"config": "x" * 300_000}, "why": "过长"}, "过长"),
        ({"name": "logs", "payload": {"lines": 5000}, "why": "行数"}, "1 至 1000"),
        ({"name": "snapshot", "payload": {}, "why": "无摄像头"}, "payload.camera"),
        (
            {
                "name": "export_range",
                "payload": {"camera": "cam1", "start": "2026-12-01T09:00:00+08:00", "end": "2026-12-01T10:00:00+08:00"},
                "why": "时段过长",
            },
            "不超过 30 分钟",
        ),
        (
            {
                "name": "export_range",
                "payload": {"camera": "c", "start": "2026-12-01T09:00", "end": "x"},
                "why": "格式",
            },
            "ISO 8601",
        ),
    ]
    for body, expected in cases:
        r = admin.post(url, json=body)
        assert r.status_code == 422 and expected in r.text, (body["name"], r.text)
    out = run(cloud, "ping", "drug-c/edge-1", user="chief", password=PASSWORD)
    assert out.exit_code == 2 and "HTTP 403" in out.output, out.output
    with Session(engine) as session:
        assert len(session.exec(select(FleetCommand)).all()) == before


@pytest.mark.parametrize(
    ("command", "text", "key", "reason"),
    [
        ("push-config", '[agent]\nsite_id = "food-b"\nagnet_id = "edge-1"\n', "agent.agnet_id", "未知的键"),
        ("push-rule-pack", 'id = "x"\ntitle = "t"\ncategory = "food"\nrules = 3\n', "rules", "应为列表"),
        ("push-register-map", 'model = "m"\n[[points]]\nname = "p"\naddress = -1\n', "points.0.address", "不能小于 0"),
    ],
)
def test_a_bad_file_is_refused_before_it_is_sent(
    world: tuple[LiveCloud, Engine, TelemetryStore], tmp_path: Path, command: str, text: str, key: str, reason: str
) -> None:
    """Session 4 (stranger walk): `sentinel fleet push-config -f bad.toml` signed and sent a file the box could
    only refuse -- an offline box answers when it returns, and names its own copy, not the operator's file. The
    CLI now runs the push trial's first check (the file alone) and refuses, naming file, key and reason."""
    cloud, engine, _store = world
    bad = tmp_path / "bad.toml"
    bad.write_text(text, encoding="utf-8")
    with Session(engine) as session:
        before = len(session.exec(select(FleetCommand)).all())
    out = run(cloud, command, "food-b/edge-1", "--file", str(bad), "--why", "坏文件")
    assert out.exit_code == 2, out.output
    assert "未下发" in out.output and f"{bad}: {key}: {reason}" in out.output, out.output
    with Session(engine) as session:
        assert len(session.exec(select(FleetCommand)).all()) == before
