"""``sentinel cloud registry …`` (CSV import, licence expiry) and ``sentinel cloud records …`` (GSP records:
derive, verify, export, retention purge). There is deliberately no command that edits or deletes a record;
``purge-expired`` removes only records past their retention and records the purge."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from sqlalchemy import Engine

app = typer.Typer(help="登记：市场主体、许可证、场所、设备 (registry)", no_args_is_help=True)
records_app = typer.Typer(help="GSP 温湿度合规记录：生成、校验、导出 (compliance records)", no_args_is_help=True)


def _engine() -> Engine:
    from cloud.core.config import get_settings
    from cloud.core.db import init_db, make_engine

    engine = make_engine(get_settings())
    import cloud.registry.models
    import cloud.telemetry.gsp  # noqa: F401 - registers the tables

    init_db(engine)
    return engine


def _parse_ts(text: str) -> datetime:
    ts = datetime.fromisoformat(text)
    if ts.tzinfo is None:
        from zoneinfo import ZoneInfo

        from cloud.telemetry.gsp_profiles import load_file

        ts = ts.replace(tzinfo=ZoneInfo(load_file().defaults.timezone))
    return ts


@app.command("import-csv")
def import_csv_command(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV 文件（UTF-8 或 GBK）")],
    department_id: Annotated[int | None, typer.Option(help="导入的主体归属部门")] = None,
) -> None:
    """批量导入市场主体与许可证；逐行报告被拒绝的行。"""
    from cloud.core.db import session_scope
    from cloud.registry.csv_import import ImportFormatError, import_csv

    engine = _engine()
    try:
        with session_scope(engine, write=True) as session:
            report = import_csv(session, path.read_bytes(), department_id=department_id)
    except ImportFormatError as exc:
        typer.echo(f"导入失败：{exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"共 {report.rows} 行：接受 {report.accepted} 行，拒绝 {len(report.errors)} 行；"
        f"新增主体 {report.subjects_created}，更新主体 {report.subjects_updated}，"
        f"新增许可证 {report.licences_created}，更新许可证 {report.licences_updated}"
    )
    for err in report.errors:
        typer.echo(f"  第 {err.line} 行：{err.reason}")
    if report.errors:
        raise typer.Exit(1)


@app.command("licences")
def licences_command(
    within_days: Annotated[int, typer.Option(help="列出 N 天内到期的许可证")] = 30,
    expired: Annotated[bool, typer.Option(help="同时列出已过期的许可证")] = True,
) -> None:
    """即将到期 / 已过期的许可证。"""
    from sqlmodel import Session

    from cloud.registry.service import expiring_licences

    with Session(_engine()) as session:
        rows = expiring_licences(session, today=date.today(), within_days=within_days, include_expired=expired)
    for lic in rows:
        state = "已过期" if (lic.days_left or 0) < 0 else f"{lic.days_left} 天后到期"
        typer.echo(f"{lic.licence_no}\t{lic.subject_name}\t{lic.valid_to}\t{state}")


@records_app.command("derive")
def derive_command() -> None:
    """从已存储的读数生成到期的记录（增量；仅追加）。"""
    from cloud.core.config import get_settings
    from cloud.telemetry.gsp import derive_all
    from cloud.telemetry.store import open_store

    engine = _engine()
    store = open_store(get_settings(), engine)
    try:
        report = derive_all(engine, store)
    finally:
        store.close()
    typer.echo(f"测点 {report.points} 个，新增记录 {report.records} 条")
    for item in report.skipped or []:
        typer.echo(f"  失败：测点 {item}", err=True)


@records_app.command("verify")
def verify_command() -> None:
    """校验记录哈希链；失败时指出第一条有问题的记录，退出码 1。"""
    from sqlmodel import Session

    from cloud.telemetry.gsp import verify_chain

    with Session(_engine()) as session:
        result = verify_chain(session)
    typer.echo(result.message())
    if not result.ok:
        raise typer.Exit(1)


@records_app.command("export")
def export_command(
    site_id: Annotated[str, typer.Option(help="场所 ID")],
    start: Annotated[str, typer.Option(help="开始时间 ISO 8601（无时区按记录时区）")],
    end: Annotated[str, typer.Option(help="结束时间 ISO 8601")],
    out: Annotated[Path, typer.Option(help="输出文件 .csv 或 .xlsx")],
) -> None:
    """导出某场所某时段的记录为 CSV 或 XLSX。"""
    from sqlmodel import Session

    from cloud.telemetry import gsp, gsp_export

    begin, finish = _parse_ts(start), _parse_ts(end)
    with Session(_engine()) as session:
        rows = gsp.list_records(session, site_id=site_id, start=begin, end=finish, limit=None)
        if out.suffix.lower() == ".csv":
            data = gsp_export.to_csv(rows)
        else:
            data = gsp_export.to_xlsx(
                rows, site_id=site_id, start=begin, end=finish, verification=gsp.verify_chain(session)
            )
    out.write_bytes(data)
    typer.echo(f"已导出 {len(rows)} 条记录到 {out}")


@records_app.command("purge-expired")
def purge_command(
    by: Annotated[str, typer.Option(help="操作人（记入清理日志）")],
    yes: Annotated[bool, typer.Option("--yes", help="确认执行")] = False,
) -> None:
    """删除超过保存期限的最早记录（保存期限见 gsp_profiles.toml；药品 ≥5 年），并记入清理日志。"""
    from cloud.core.db import session_scope
    from cloud.telemetry.gsp import purge_expired

    if not yes:
        typer.echo("此操作删除超过保存期限的记录，请加 --yes 确认", err=True)
        raise typer.Exit(2)
    with session_scope(_engine(), write=True) as session:
        purge = purge_expired(session, now=datetime.now(UTC), by=by)
        summary = None if purge is None else (purge.count, purge.through_seq)
    if summary is None:
        typer.echo("没有超过保存期限的记录")
    else:
        typer.echo(f"已清理 {summary[0]} 条记录（至 seq={summary[1]}），已记入清理日志")
