"""``sentinel audit|device|pki|backup|restore`` (also under ``sentinel cloud …``).

Each command reads the cloud settings (``SENTINEL_*`` environment, ``.env``) like ``sentinel cloud serve``.
Administrative actions are journaled with the actor ``cli:<os user>``.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
from pathlib import Path
from typing import Annotated, Any

import typer

audit_app = typer.Typer(help="审计日志：校验、导出 (audit journal: verify, export)", no_args_is_help=True)
device_app = typer.Typer(help="设备 MQTT 账号与 broker ACL (device credentials, broker ACL)", no_args_is_help=True)
kiosk_app = typer.Typer(help="自助终端：登记、列表、停用 (self-service kiosk terminals)", no_args_is_help=True)
pki_app = typer.Typer(help="证书：CA、服务器与代理证书 (TLS certificates)", no_args_is_help=True)
backup_app = typer.Typer(help="在线一致性备份 (online consistent backup)")
restore_app = typer.Typer(help="从备份恢复 (restore a backup)")


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no user name (containers)
        return "cli"


def _engine() -> Any:
    from cloud.core.config import get_settings
    from cloud.core.db import init_db, make_engine

    engine = make_engine(get_settings())
    init_db(engine)
    return engine


# ---------------------------------------------------------------- audit
@audit_app.command("verify")
def audit_verify(
    anchor: Annotated[Path | None, typer.Option(help="JSON {id, hash} noted earlier (sentinel audit anchor)")] = None,
) -> None:
    """校验哈希链；失败时指出被篡改的行并以状态 1 退出。"""
    from sqlmodel import Session

    from cloud.security import audit
    from cloud.security.events import record_now

    engine = _engine()
    pin = None
    if anchor is not None:
        data = json.loads(anchor.read_text())
        pin = (int(data["id"]), str(data["hash"]))
    with Session(engine) as session:
        verdict = audit.verify(session, anchor=pin)
    typer.echo(verdict.message)
    record_now(
        engine,
        actor=_actor(),
        action="audit.verified",
        target_type="journal",
        target_id=verdict.head_id or 0,
        outcome="ok" if verdict.ok else "failed",
        payload={"checked": verdict.checked, "bad_row": verdict.bad_row},
    )
    if not verdict.ok:
        raise typer.Exit(1)


@audit_app.command("anchor")
def audit_anchor(out: Annotated[Path | None, typer.Option(help="write the anchor here")] = None) -> None:
    """打印日志当前末行（id 与哈希），异地保存以便发现截断。"""
    from sqlmodel import Session

    from cloud.security import audit

    with Session(_engine()) as session:
        head_id, head_hash = audit.head(session)
    text = json.dumps({"id": head_id, "hash": head_hash})
    if out:
        out.write_text(text)
    typer.echo(text)


@audit_app.command("export")
def audit_export(
    out: Annotated[Path, typer.Argument(help="output file (.csv or .jsonl)")],
    since: Annotated[dt.datetime | None, typer.Option(help="ISO time, inclusive")] = None,
    until: Annotated[dt.datetime | None, typer.Option(help="ISO time, exclusive")] = None,
    action: Annotated[str | None, typer.Option(help="action or prefix (auth.*)")] = None,
) -> None:
    """导出审计日志给审计人员（含哈希，可离线复核）。"""
    from sqlmodel import Session

    from cloud.security import audit
    from cloud.security.events import record_now

    fmt: audit.ExportFormat = "jsonl" if out.suffix == ".jsonl" else "csv"
    engine = _engine()
    since = since.astimezone(dt.UTC) if since else None
    until = until.astimezone(dt.UTC) if until else None
    record_now(
        engine,
        actor=_actor(),
        action="audit.exported",
        target_type="journal",
        target_id="export",
        payload={"format": fmt, "file": out.name, "action": action},
    )
    count = 0
    with Session(engine) as session, out.open("w", encoding="utf-8", newline="") as fh:
        for line in audit.export_lines(session, fmt, since=since, until=until, action=action):
            fh.write(line)
            count += 1
    typer.echo(f"已导出 {count - (1 if fmt == 'csv' else 0)} 条 → {out}")


# ---------------------------------------------------------------- kiosk terminals
@kiosk_app.command("add")
def kiosk_add(
    name: str,
    location: Annotated[str, typer.Option(help="安放位置，如 政务服务中心一楼")],
) -> None:
    """登记一台自助终端；凭据只显示一次（在终端浏览器中打开一次 /kiosk/#terminal=<凭据>）。"""
    from pydantic import ValidationError

    from cloud.core.db import session_scope
    from cloud.security import kiosks

    try:
        data = kiosks.KioskCreate(name=name, location=location)
        with session_scope(_engine(), write=True) as session:
            issued = kiosks.register(session, data, actor=_actor())
    except (ValidationError, kiosks.KioskError) as exc:
        raise typer.BadParameter(str(exc)) from None
    typer.echo(f"终端 {issued.id}：{issued.name}（{issued.location}）\ncredential: {issued.credential}")
    typer.echo(f"provision: {issued.provision_path}")


@kiosk_app.command("list")
def kiosk_list() -> None:
    from sqlmodel import Session

    from cloud.security import kiosks

    with Session(_engine()) as session:
        for row in kiosks.listing(session):
            state = "已停用" if row.revoked_at else "启用"
            typer.echo(f"{row.id}\t{row.name}\t{row.location}\t{state}\t{row.created_at.isoformat()}")


@kiosk_app.command("revoke")
def kiosk_revoke(kiosk_id: int) -> None:
    """停用一台终端的凭据（其请求此后按匿名来源地址从严限流）。"""
    from cloud.core.db import session_scope
    from cloud.security import kiosks

    try:
        with session_scope(_engine(), write=True) as session:
            kiosks.revoke(session, kiosk_id, actor=_actor())
    except kiosks.KioskError as exc:
        raise typer.BadParameter(str(exc)) from None
    typer.echo("已停用")


# ---------------------------------------------------------------- devices
GROUP_HELP = "broker group (e.g. mosquitto): files 0640 in that group; default: keep an existing file's mode/group"
#: the options of every command that (re)writes the broker's files: one set, so no command lacks one
RenderOpt = Annotated[Path | None, typer.Option("--render", help="then write passwd + acl here")]
ReloadOpt = Annotated[int | None, typer.Option(help="SIGHUP this mosquitto pid after rendering")]
GroupOpt = Annotated[str | None, typer.Option(help=GROUP_HELP)]


@device_app.command("provision")
def device_provision(
    site_id: str,
    agent_id: str,
    render_dir: RenderOpt = None,
    reload_pid: ReloadOpt = None,
    group: GroupOpt = None,
    host: Annotated[str, typer.Option(help="broker host for the edge snippet")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="broker port for the edge snippet")] = 1883,
) -> None:
    """签发（或轮换）一个边缘代理的 MQTT 账号；密码只显示一次。"""
    from cloud.core.db import session_scope
    from cloud.security import provisioning
    from protocols import ProtocolError

    engine = _engine()
    try:
        with session_scope(engine, write=True) as session:
            issued = provisioning.provision_agent(session, site_id, agent_id, actor=_actor())
            if render_dir is not None:
                provisioning.render(session, render_dir, reload_pid=reload_pid, group=group)
    except (ProtocolError, provisioning.UnknownSite, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from None
    typer.echo(f"username: {issued.username}\npassword: {issued.password}\n")
    typer.echo("# edge site.toml:\n" + issued.edge_snippet(host, port))


@device_app.command("cloud-user")
def device_cloud_user(render_dir: RenderOpt = None, reload_pid: ReloadOpt = None, group: GroupOpt = None) -> None:
    """签发云端接入服务账号（读全部上行主题、发布确认与命令）；设置 SENTINEL_MQTT_USERNAME/PASSWORD。"""
    from cloud.core.db import session_scope
    from cloud.security import provisioning

    try:
        with session_scope(_engine(), write=True) as session:
            issued = provisioning.provision_cloud(session, actor=_actor())
            if render_dir is not None:
                provisioning.render(session, render_dir, reload_pid=reload_pid, group=group)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    typer.echo(f"SENTINEL_MQTT_USERNAME={issued.username}\nSENTINEL_MQTT_PASSWORD={issued.password}")


@device_app.command("revoke")
def device_revoke(
    username: str, render_dir: RenderOpt = None, reload_pid: ReloadOpt = None, group: GroupOpt = None
) -> None:
    """吊销账号（重新生成 broker 文件后生效）。"""
    from cloud.core.db import session_scope
    from cloud.security import provisioning

    try:
        with session_scope(_engine(), write=True) as session:
            done = provisioning.revoke(session, username, actor=_actor())
            if render_dir is not None:
                provisioning.render(session, render_dir, reload_pid=reload_pid, group=group)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    typer.echo("已吊销" if done else "账号不存在或已吊销")


@device_app.command("list")
def device_list() -> None:
    from sqlmodel import Session

    from cloud.security import provisioning

    with Session(_engine()) as session:
        for row in provisioning.active(session):
            typer.echo(f"{row.username}\t{row.kind}\t{row.site_id or '-'}\t{row.agent_id or '-'}\t{row.created_at}")


@device_app.command("render")
def device_render(
    out_dir: Path,
    reload_pid: ReloadOpt = None,
    group: GroupOpt = None,
) -> None:
    """生成 mosquitto 的 password_file 与 acl_file。"""
    from sqlmodel import Session

    from cloud.security import provisioning

    with Session(_engine()) as session:
        try:
            passwd, acl = provisioning.render(session, out_dir, reload_pid=reload_pid, group=group)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
    typer.echo(f"password_file {passwd}\nacl_file {acl}")


# ---------------------------------------------------------------- PKI
@pki_app.command("init")
def pki_init(
    directory: Path,
    host: Annotated[list[str], typer.Option(help="server host names / IPs (repeat)")] = ["localhost", "127.0.0.1"],  # noqa: B006
    force: Annotated[bool, typer.Option(help="replace an existing CA")] = False,
) -> None:
    """创建 CA 与服务器证书（MQTT 与 HTTPS 共用）。"""
    from cloud.security import pki

    try:
        ca = pki.init_ca(directory, force=force)
    except FileExistsError as exc:
        raise typer.BadParameter(str(exc)) from None
    server = pki.issue_server(directory, host)
    _journal_pki("ca+server", {"hosts": host})
    typer.echo(f"CA: {ca.cert}\nserver: {server.cert} {server.key}")
    typer.echo("# mosquitto (mutual TLS):\n" + pki.mosquitto_listener(directory, 8883, mutual=True))
    typer.echo(
        "# HTTPS: uvicorn --factory cloud.app:create_app "
        f"--ssl-certfile {server.cert} --ssl-keyfile {server.key} [--ssl-ca-certs {ca.cert} --ssl-cert-reqs 2]"
    )


@pki_app.command("issue-server")
def pki_issue_server(
    directory: Path,
    host: Annotated[list[str], typer.Option(help="host names / IPs (repeat)")],
    name: Annotated[str, typer.Option(help="file stem")] = "server",
) -> None:
    from cloud.security import pki

    pair = pki.issue_server(directory, host, stem=name)
    _journal_pki(name, {"hosts": host})
    typer.echo(f"{pair.cert}\n{pair.key}")


@pki_app.command("issue-agent")
def pki_issue_agent(directory: Path, site_id: str, agent_id: str) -> None:
    """边缘代理客户端证书（CN = MQTT 用户名，配合 use_identity_as_username）。"""
    from cloud.security import pki

    pair = pki.issue_agent(directory, site_id, agent_id)
    _journal_pki(pair.cert.stem, {"site_id": site_id, "agent_id": agent_id})
    typer.echo(f"{pair.cert}\n{pair.key}")


def _journal_pki(name: str, payload: dict[str, Any]) -> None:
    from cloud.security.events import record_now

    try:
        record_now(
            _engine(), actor=_actor(), action="pki.issued", target_type="certificate", target_id=name, payload=payload
        )
    except Exception as exc:  # certificates can be made on a host without the cloud DB
        typer.echo(f"(未记入审计日志 not journaled: {exc})", err=True)


# ---------------------------------------------------------------- backup / restore
@backup_app.callback(invoke_without_command=True)
def backup(
    dest: Annotated[Path, typer.Argument(help="备份根目录 (backups are created inside)")],
    daily_at: Annotated[str | None, typer.Option(help="HH:MM: keep running, back up every day at this time")] = None,
    keep: Annotated[int, typer.Option(help="with --daily-at: keep the newest N backups")] = 30,
) -> None:
    """在线一致性备份：数据库（SQLite 在线备份 / pg_dump）+ 数据目录文件 + 清单与校验和。"""
    from cloud import backup as backups
    from cloud.core.config import get_settings
    from cloud.security.events import record_now

    settings = get_settings()
    engine = _engine()

    def done(path: Path) -> None:
        manifest = backups.load_manifest(path)
        record_now(
            engine,
            actor=_actor(),
            action="backup.created",
            target_type="backup",
            target_id=path.name,
            payload={"files": len(manifest["files"]), "journal_head": manifest["journal_head"]},
        )
        typer.echo(f"备份完成 backup: {path}")

    if daily_at:
        hour, minute = (int(x) for x in daily_at.split(":"))
        typer.echo(f"每日 {daily_at} 备份到 {dest}，保留 {keep} 份 (Ctrl-C to stop)")
        backups.run_daily(settings, dest, at=dt.time(hour, minute), keep=keep, on_done=done, engine=engine)
        return
    try:
        done(backups.create_backup(settings, dest))
    except backups.BackupError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None


@restore_app.callback(invoke_without_command=True)
def restore(
    backup_dir: Annotated[Path, typer.Argument(help="a sentinel-<time> backup directory")],
    force: Annotated[bool, typer.Option(help="overwrite a non-empty data dir")] = False,
) -> None:
    """恢复备份到当前配置的实例（先停止云端服务），恢复后逐表比对。"""
    from cloud import backup as backups
    from cloud.core.config import get_settings
    from cloud.security.events import record_now

    settings = get_settings()
    try:
        report = backups.restore(backup_dir, settings, force=force)
    except backups.BackupError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None
    for name, (want, got) in sorted(report.tables.items()):
        mark = "✗" if name in report.mismatched else "✓"
        typer.echo(f"  {mark} {name}: {want} → {got}")
    engine = _engine()
    record_now(
        engine,
        actor=_actor(),
        action="backup.restored",
        target_type="backup",
        target_id=backup_dir.name,
        outcome="ok" if report.ok else "failed",
        payload={"mismatched": report.mismatched},
    )
    if not report.ok:
        typer.echo(f"恢复后比对不一致 (mismatch): {', '.join(report.mismatched)}", err=True)
        raise typer.Exit(1)
    typer.echo(f"恢复完成，{len(report.tables)} 张表与备份一致 (restore verified)")
