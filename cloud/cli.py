"""``sentinel cloud …``: serve the API (with ingest and presence), run ingest workers, manage users."""

from __future__ import annotations

import asyncio
import getpass
import logging
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="云端核心：API、接入、存储 (cloud core: API, ingest, storage)", no_args_is_help=True)


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="bind address (SENTINEL_API_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (SENTINEL_API_PORT)")] = None,
    ingest: Annotated[bool, typer.Option(help="run the MQTT ingest in this process")] = True,
    certfile: Annotated[
        Path | None, typer.Option(help="PEM certificate (chain) to serve HTTPS (SENTINEL_API_CERTFILE)")
    ] = None,
    keyfile: Annotated[Path | None, typer.Option(help="PEM private key of --certfile (SENTINEL_API_KEYFILE)")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """API + ingest + presence in one process (the embedded default); HTTPS with --certfile/--keyfile."""
    import uvicorn

    from cloud.app import create_app
    from cloud.core.config import Settings, get_settings
    from cloud.security.logs import uvicorn_log_config

    _logging(verbose)
    settings = get_settings()
    if certfile or keyfile:
        try:
            settings = Settings.model_validate(
                settings.model_dump() | {"api_certfile": certfile, "api_keyfile": keyfile}
            )
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
    if not ingest:
        settings.ingest_enabled = False
    api = create_app(settings)
    from cloud.core.security import PASSWORD_HASH_COST_ENV, password_hash_cost

    if password_hash_cost() != "standard":
        typer.echo(
            f"警告：{PASSWORD_HASH_COST_ENV}={password_hash_cost()}，口令散列强度仅供测试，切勿用于生产环境",
            err=True,
        )
    scheme = "https" if settings.api_certfile else "http"
    bind, listen = host or settings.api_host, port or settings.api_port
    typer.echo(f"API: {scheme}://{bind}:{listen}/docs")
    uvicorn.run(
        api,
        host=bind,
        port=listen,
        log_level="info",
        log_config=uvicorn_log_config(),  # no bearer token of a live feed (?access_token=) in the access log
        ssl_certfile=str(settings.api_certfile) if settings.api_certfile else None,
        ssl_keyfile=str(settings.api_keyfile) if settings.api_keyfile else None,
    )


@app.command("ingest")
def ingest_command(
    client_id: Annotated[str | None, typer.Option(help="fixed MQTT client id of this worker")] = None,
    presence: Annotated[bool, typer.Option(help="also run the presence monitor here")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """An ingest worker alone (scale-out: run several with different --client-id on a shared subscription)."""
    from cloud.core.config import get_settings
    from cloud.core.db import init_db, make_engine
    from cloud.core.leases import hold
    from cloud.ingest.service import IngestService
    from cloud.presence import PresenceMonitor
    from cloud.telemetry.store import open_store

    _logging(verbose)
    settings = get_settings()
    if client_id:
        settings.mqtt_client_id = client_id
    engine = make_engine(settings)
    init_db(engine)
    store = open_store(settings, engine)

    async def main() -> None:
        service = IngestService(settings, engine, store)
        tasks = [asyncio.create_task(service.run(), name="ingest")]
        if presence:
            monitor = PresenceMonitor(settings, engine)
            # under the same lease as in `serve`: one presence check however many processes ask for it
            tasks.append(asyncio.create_task(hold(engine, "presence", monitor.run, ttl_s=settings.lease_ttl_s)))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    finally:
        store.close()


@app.command("init")
def init_command() -> None:
    """Create the database tables and the bootstrap admin (prints a generated password once)."""
    from cloud.core.config import get_settings
    from cloud.core.db import init_db, make_engine
    from cloud.core.users import ensure_admin

    settings = get_settings()
    engine = make_engine(settings)
    init_db(engine)
    password = ensure_admin(engine, settings)
    if password:
        typer.echo(f"管理员 {settings.admin_username} 的初始密码（仅显示一次）: {password}")
    else:
        typer.echo("数据库已就绪 (database ready)")


@app.command("create-user")
def create_user_command(
    username: str,
    role: Annotated[str, typer.Option(help="admin | supervisor | inspector | auditor | device")] = "inspector",
    full_name: Annotated[str, typer.Option(help="姓名")] = "",
    department: Annotated[str | None, typer.Option(help="科室/所")] = None,
    password: Annotated[
        str | None,
        typer.Option(help="default: asked interactively (SENTINEL_NEW_PASSWORD)", envvar="SENTINEL_NEW_PASSWORD"),
    ] = None,
) -> None:
    """Create a user (device accounts are for edge agents)."""
    from pydantic import ValidationError
    from sqlalchemy.exc import IntegrityError

    from cloud.core.config import get_settings
    from cloud.core.db import init_db, make_engine, session_scope
    from cloud.core.users import Role, UserCreate, create_user

    settings = get_settings()
    engine = make_engine(settings)
    init_db(engine)
    if password is None:
        password = getpass.getpass("密码 password: ")
    try:
        user_in = UserCreate(
            username=username, role=Role(role), full_name=full_name, department=department, password=password
        )
    except (ValidationError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from None
    try:
        with session_scope(engine, write=True) as session:
            user = create_user(session, user_create=user_in)
            typer.echo(f"已创建用户 {user.username} (role {user.role!s}, id {user.id})")
    except IntegrityError:
        raise typer.BadParameter(f"用户名 {username} 已存在") from None


from cloud.registry import cli as _records_cli  # noqa: E402 - registry and GSP records sub-commands

app.add_typer(_records_cli.app, name="registry")
app.add_typer(_records_cli.records_app, name="records")

workflow_app = typer.Typer(help="监管流程 (supervision workflow)", no_args_is_help=True)
app.add_typer(workflow_app, name="workflow")


@workflow_app.command("regrade")
def regrade() -> None:
    """按历史重新评定全部市场主体风险等级 (recompute every subject's risk grade A–D now)."""
    from cloud.core.config import get_settings
    from cloud.core.db import init_db, make_engine
    from cloud.workflow.decisions import recompute_all

    engine = make_engine(get_settings())
    init_db(engine)
    typer.echo("重新评定风险等级 regrading subjects …")
    result = recompute_all(engine, trigger="on_demand")
    typer.echo(" ".join(f"{k}={v}" for k, v in result.items()))


from cloud.security import cli as _security_cli  # noqa: E402 - audit, device, pki, backup, restore

app.add_typer(_security_cli.audit_app, name="audit")
app.add_typer(_security_cli.device_app, name="device")
app.add_typer(_security_cli.kiosk_app, name="kiosk")
app.add_typer(_security_cli.pki_app, name="pki")
app.add_typer(_security_cli.backup_app, name="backup")
app.add_typer(_security_cli.restore_app, name="restore")

from cloud.ingest import cli as _ingest_cli  # noqa: E402 - dead-letter sub-commands

app.add_typer(_ingest_cli.app, name="dead-letters")
