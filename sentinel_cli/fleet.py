"""``sentinel fleet …``: operate the edge fleet through the cloud's API (issue 15, remote configuration).

Talks HTTP to a running cloud (``--url`` / ``SENTINEL_URL``) with a bearer token (``--token`` /
``SENTINEL_TOKEN``) or an account (``--user`` / ``SENTINEL_USER`` and ``SENTINEL_PASSWORD``; creating and cancelling
commands needs an administrator). A target is one or more ``site/agent`` arguments, or ``--site``, ``--category``
(domain) or ``--department`` (township/department id, sub-departments included): one agent makes one command, more
make a group (one command per agent, one group id). ``--wait`` follows the command or group until every agent has
answered (or the timeout), printing each change; the exit code is 0 only if all succeeded without a rollback.

This module imports none of cloud/simulators: it is an HTTP client. A pushed file is first checked with the edge's
own validators (the file alone: syntax and schema, as the box's push trial does first) and refused here, naming
the file, the key and the reason, before anything is signed.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from sentinel_cli.demo import Api

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="边缘代理运维：远程配置、命令、进度 (fleet operations)"
)

OPEN = {"pending", "sent"}


class FleetCliError(RuntimeError):
    pass


@dataclass
class Ctx:
    api: Api


def _api(ctx: typer.Context) -> Api:
    obj = ctx.obj
    assert isinstance(obj, Ctx)
    return obj.api


@app.callback()
def main(
    ctx: typer.Context,
    url: Annotated[str, typer.Option(envvar="SENTINEL_URL", help="云端地址 (cloud API base URL)")] = (
        "http://127.0.0.1:8000"
    ),
    token: Annotated[str | None, typer.Option(envvar="SENTINEL_TOKEN", help="访问令牌 (bearer token)")] = None,
    user: Annotated[str | None, typer.Option(envvar="SENTINEL_USER", help="用户名 (instead of --token)")] = None,
) -> None:
    """边缘代理运维：列出代理、下发配置/规则包/寄存器映射、ping、reload、抓拍、日志、查看与取消命令。"""
    api = Api(url.rstrip("/"))
    if token:
        api.token = token
    elif user:
        password = os.environ.get("SENTINEL_PASSWORD")
        if password is None:
            password = typer.prompt(f"{user} 的密码", hide_input=True)
        _call(lambda: api.login(user, password))
    ctx.obj = Ctx(api)


def _call(fn: Any) -> Any:
    try:
        return fn()
    except urllib.error.HTTPError as exc:
        body = exc.read().decode("utf-8", "replace")
        try:
            detail = json.loads(body).get("detail", body)
        except ValueError:
            detail = body
        typer.echo(f"错误：HTTP {exc.code}：{detail}", err=True)
        raise typer.Exit(2) from None
    except urllib.error.URLError as exc:
        typer.echo(f"错误：无法连接云端：{exc.reason}（检查 --url / SENTINEL_URL）", err=True)
        raise typer.Exit(2) from None


# -- target ----------------------------------------------------------------------------------------
TargetsArg = Annotated[list[str] | None, typer.Argument(help="目标代理 site/agent（可多个）", show_default=False)]
SiteOpt = Annotated[str | None, typer.Option("--site", help="该场所的全部代理")]
CategoryOpt = Annotated[str | None, typer.Option("--category", help="该领域的全部代理 (drug/food/special_equipment)")]
DepartmentOpt = Annotated[int | None, typer.Option("--department", help="该部门（乡镇所）及下级的全部代理")]
WhyOpt = Annotated[str, typer.Option("--why", help="原因（记入审计日志）")]
WaitOpt = Annotated[bool, typer.Option("--wait/--no-wait", help="等待执行结果并显示进度")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="--wait 的最长等待秒数")]
TtlOpt = Annotated[float | None, typer.Option("--ttl", help="命令有效期（秒），过期未执行则作废")]


def _target(targets: list[str] | None, site: str | None, category: str | None, department: int | None) -> Any:
    given = sum(x is not None and x != [] for x in (targets, site, category, department))
    if given != 1:
        typer.echo("错误：目标须且只须给出一种：site/agent…、--site、--category 或 --department", err=True)
        raise typer.Exit(2)
    if targets:
        return targets[0] if len(targets) == 1 else {"agents": targets}
    if site is not None:
        return {"site_id": site}
    if category is not None:
        return {"category": category}
    return {"department_id": department}


def _send(
    ctx: typer.Context,
    target: Any,
    name: str,
    payload: dict[str, Any],
    why: str,
    wait: bool,
    timeout: float,
    ttl: float | None,
) -> None:
    api = _api(ctx)
    body: dict[str, Any] = {"name": name, "payload": payload, "why": why}
    if ttl is not None:
        body["ttl_s"] = ttl
    if isinstance(target, str):
        site, sep, agent = target.partition("/")
        if not sep or not site or not agent:
            typer.echo(f"错误：代理须写作 site/agent：{target!r}", err=True)
            raise typer.Exit(2)
        row = _call(lambda: api.call("POST", f"/api/v1/fleet/agents/{site}/{agent}/commands", body))
        typer.echo(f"命令 {row['id']}：{row['name_label']} → {site}/{agent}，{row['state_label']}")
        if wait:
            raise typer.Exit(_follow_command(api, row["id"], timeout))
        return
    body["target"] = target
    group = _call(lambda: api.call("POST", "/api/v1/fleet/groups", body))
    typer.echo(f"组命令 {group['id']}：{group['target_label']}，{group['summary']}")
    if wait:
        raise typer.Exit(_follow_group(api, group["id"], timeout))


def _outcome(row: dict[str, Any]) -> int:
    return 0 if row["state"] == "done" and not row.get("rolled_back") else 1


def _print_result(row: dict[str, Any]) -> None:
    typer.echo(f"{row['site_id']}/{row['agent_id']}：{row['state_label']} {row.get('reason') or ''}".rstrip())
    if row.get("version_in_force"):
        typer.echo(f"  生效版本 {row['version_in_force']}")
    for ev in row.get("evidence") or []:
        typer.echo(f"  证据：{ev['kind_label']} {ev['sha256']}（{ev['size']} 字节）下载：{ev['url']}")
    if row.get("output"):
        typer.echo(row["output"].rstrip("\n"))


def _follow_command(api: Api, command_id: str, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    last = None
    while True:
        row = _call(lambda: api.get(f"/api/v1/fleet/commands/{command_id}"))
        if row["state"] != last:
            last = row["state"]
            typer.echo(f"… {row['state_label']}", err=True)
        if row["state"] not in OPEN:
            _print_result(row)
            return _outcome(row)
        if time.monotonic() > deadline:
            typer.echo(
                f"等待超时（{timeout:g} 秒），命令仍为「{row['state_label']}」；稍后用 fleet status 查看", err=True
            )
            return 3
        time.sleep(1.0)


def _follow_group(api: Api, group_id: str, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    last = None
    while True:
        group = _call(lambda: api.get(f"/api/v1/fleet/groups/{group_id}"))
        if group["summary"] != last:
            last = group["summary"]
            typer.echo(f"… {group['summary']}", err=True)
        if group["finished"]:
            for row in group["commands"]:
                _print_result(row)
            return max((_outcome(r) for r in group["commands"]), default=0)
        if time.monotonic() > deadline:
            typer.echo(f"等待超时（{timeout:g} 秒）：{group['summary']}；稍后用 fleet group 查看", err=True)
            return 3
        time.sleep(1.0)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        typer.echo(f"错误：无法读取 {path}：{exc}", err=True)
        raise typer.Exit(2) from None


# -- commands --------------------------------------------------------------------------------------
@app.command("agents")
def agents(ctx: typer.Context, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """列出边缘代理：在线状态、软件版本、缓存深度；站点配置、每个规则包和寄存器映射的版本（期望/上报，≠ 未同步）。"""
    rows = _call(lambda: _api(ctx).get("/api/v1/fleet/agents"))
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        typer.echo("没有已知的边缘代理")
        return
    typer.echo(f"{'代理':<27} {'状态':<6}{'软件':<10}{'缓存':<6}版本")
    for a in rows:
        drift = "" if a.get("versions_in_sync", True) else "  ≠ 有未同步的文件"
        typer.echo(
            f"{a['site_id'] + '/' + a['agent_id']:<27} {a['online_label']:<6}{a['agent_version'] or '—':<10}"
            f"{a['outbox_depth'] or 0:<6}{drift}"
        )
        for v in a.get("versions", []):
            mark = " ≠ 未同步" if v["in_sync"] is False else ""
            note = f"（{v['note']}）" if v["note"] else ""
            typer.echo(f"    {v['label']:<30}期望 {v['desired'] or '—':<14}上报 {v['reported'] or '—':<14}{mark}{note}")


def _check(name: str, file: Path, text: str) -> None:
    """Refuse a pushed file that the box would refuse anyway, before anything is signed or sent: an offline box
    answers only when it returns (days later), and it names its own copy, not the file the operator edited. The
    checks are those of the push trial's first step -- the file alone (syntax and schema); the whole site, with the
    box's own register maps and packs, is still checked on the box."""
    try:
        from edge.config.loader import parse_toml, validate_artifact, validate_model
        from edge.config.models import SiteConfig
        from edge.errors import ConfigError
    except ImportError:  # pragma: no cover - an installation without the edge package: the box checks it
        return
    try:
        if name == "push_config":
            validate_model(SiteConfig, parse_toml(text, str(file)), str(file))
        else:
            validate_artifact("registers" if name == "push_register_map" else "rulepacks", text, str(file))
    except ConfigError as exc:
        typer.echo(f"配置无效，未下发 (invalid, not sent):\n{exc}", err=True)
        raise typer.Exit(2) from None


def _pusher(name: str, key: str, help_text: str) -> None:
    def push(
        ctx: typer.Context,
        file: Annotated[Path, typer.Option("--file", "-f", help="要下发的 TOML 文件")],
        why: WhyOpt,
        targets: TargetsArg = None,
        site: SiteOpt = None,
        category: CategoryOpt = None,
        department: DepartmentOpt = None,
        wait: WaitOpt = False,
        timeout: TimeoutOpt = 120.0,
        ttl: TtlOpt = None,
    ) -> None:
        payload: dict[str, Any] = {key: _read(file)}
        _check(name, file, payload[key])
        if name != "push_config":
            payload["name"] = file.stem
        _send(ctx, _target(targets, site, category, department), name, payload, why, wait, timeout, ttl)

    push.__doc__ = help_text
    app.command(name.replace("_", "-"))(push)


_pusher("push_config", "config", "下发站点配置（整个站点 TOML；边缘校验后应用，健康检查未通过则自动回滚）。")
_pusher("push_rule_pack", "text", "下发规则包（文件名即规则包名；边缘用 edge validate 的校验器检查后应用）。")
_pusher("push_register_map", "text", "下发寄存器映射（文件名即映射名；边缘校验后应用）。")


def _simple(name: str, help_text: str) -> None:
    def run(
        ctx: typer.Context,
        why: WhyOpt = "运维检查",
        targets: TargetsArg = None,
        site: SiteOpt = None,
        category: CategoryOpt = None,
        department: DepartmentOpt = None,
        wait: WaitOpt = True,
        timeout: TimeoutOpt = 60.0,
        ttl: TtlOpt = None,
    ) -> None:
        _send(ctx, _target(targets, site, category, department), name, {}, why, wait, timeout, ttl)

    run.__doc__ = help_text
    app.command(name)(run)


_simple("ping", "连通测试：代理回复其软件版本。")
_simple("reload", "让代理从磁盘重新加载站点配置。")


@app.command("logs")
def logs(
    ctx: typer.Context,
    targets: TargetsArg = None,
    lines: Annotated[int, typer.Option("--lines", "-n", min=1, max=1000, help="行数")] = 200,
    why: WhyOpt = "查看日志",
    wait: WaitOpt = True,
    timeout: TimeoutOpt = 60.0,
) -> None:
    """取回代理最近 N 行日志（大小有上限）。"""
    _send(ctx, _target(targets, None, None, None), "logs", {"lines": lines}, why, wait, timeout, None)


@app.command("snapshot")
def snapshot(
    ctx: typer.Context,
    camera: Annotated[str, typer.Option("--camera", help="摄像头 ID")],
    targets: TargetsArg = None,
    why: WhyOpt = "远程抓拍",
    wait: WaitOpt = True,
    timeout: TimeoutOpt = 60.0,
) -> None:
    """请求摄像头抓拍一帧（经证据通道上传，结果给出证据 SHA-256）。"""
    _send(ctx, _target(targets, None, None, None), "snapshot", {"camera": camera}, why, wait, timeout, None)


@app.command("export-range")
def export_range(
    ctx: typer.Context,
    camera: Annotated[str, typer.Option("--camera", help="摄像头 ID")],
    start: Annotated[str, typer.Option("--start", help="起（ISO 8601，带时区，如 2026-12-01T09:00:00+08:00）")],
    end: Annotated[str, typer.Option("--end", help="止（至多 30 分钟）")],
    targets: TargetsArg = None,
    why: WhyOpt = "调取录像",
    wait: WaitOpt = True,
    timeout: TimeoutOpt = 300.0,
) -> None:
    """导出一段录像（经证据通道上传，结果给出证据 SHA-256）。"""
    payload = {"camera": camera, "start": start, "end": end}
    _send(ctx, _target(targets, None, None, None), "export_range", payload, why, wait, timeout, None)


@app.command("status")
def status(
    ctx: typer.Context,
    command_id: Annotated[str, typer.Argument(help="命令 ID")],
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 60.0,
) -> None:
    """查看一条命令的状态与结果。"""
    api = _api(ctx)
    if wait:
        raise typer.Exit(_follow_command(api, command_id, timeout))
    row = _call(lambda: api.get(f"/api/v1/fleet/commands/{command_id}"))
    typer.echo(f"命令 {row['id']}：{row['name_label']} {row['payload_summary']}，{row['created_by']}：{row['why']}")
    _print_result(row)


@app.command("history")
def history(ctx: typer.Context, agent: Annotated[str, typer.Argument(help="site/agent")]) -> None:
    """一台代理的命令记录（最新在前）。"""
    site, _, agent_id = agent.partition("/")
    rows = _call(lambda: _api(ctx).get(f"/api/v1/fleet/agents/{site}/{agent_id}/commands"))
    for row in rows:
        typer.echo(f"{row['issued_at']}  {row['id']}  {row['name_label']:<8} {row['state_label']:<10} {row['why']}")


@app.command("group")
def group(
    ctx: typer.Context,
    group_id: Annotated[str, typer.Argument(help="组命令 ID")],
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 120.0,
) -> None:
    """查看组命令的进度（每台代理的状态）。"""
    api = _api(ctx)
    if wait:
        raise typer.Exit(_follow_group(api, group_id, timeout))
    g = _call(lambda: api.get(f"/api/v1/fleet/groups/{group_id}"))
    typer.echo(f"组命令 {g['id']}：{g['target_label']}，{g['summary']}")
    for row in g["commands"]:
        _print_result(row)


@app.command("cancel")
def cancel(
    ctx: typer.Context,
    command_id: Annotated[str, typer.Argument(help="命令 ID 或组命令 ID（加 --group）")],
    why: WhyOpt,
    is_group: Annotated[bool, typer.Option("--group", help="取消整个组内未执行的命令")] = False,
) -> None:
    """取消尚未执行的命令（不再发送）。"""
    api = _api(ctx)
    if is_group:
        g = _call(lambda: api.call("POST", f"/api/v1/fleet/groups/{command_id}/cancel", {"why": why}))
        typer.echo(f"组命令 {g['id']}：{g['summary']}")
        return
    row = _call(lambda: api.call("POST", f"/api/v1/fleet/commands/{command_id}/cancel", {"why": why}))
    typer.echo(f"命令 {row['id']}：{row['state_label']}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
