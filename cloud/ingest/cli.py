"""``sentinel cloud dead-letters …``: look at and replay the ingest's dead letters."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(help="死信：查看与重新提交 (dead letters of the ingest)", no_args_is_help=True)


@app.command("replay")
def replay_command(
    reason: Annotated[str | None, typer.Option(help="only dead letters with this reason (e.g. store_error)")] = None,
) -> None:
    """Re-submit kept dead letters through the normal validation path (after fixing a registry or a bug)."""
    from cloud.core.config import get_settings
    from cloud.core.db import init_db, make_engine
    from cloud.ingest.replay import replay_dead_letters
    from cloud.telemetry.store import open_store

    settings = get_settings()
    engine = make_engine(settings)
    init_db(engine)
    store = open_store(settings, engine)
    try:
        report = replay_dead_letters(engine, store, reason=reason)
    finally:
        store.close()
        engine.dispose()
    typer.echo(
        f"重新提交 {report.replayed} 条死信：新入库 {report.stored}，重复 {report.duplicates}，"
        f"其他 {report.other}，仍为死信 {sum(report.still_dead.values())}"
    )
    for why, n in sorted(report.still_dead.items()):
        typer.echo(f"  {why}: {n}")


@app.command("list")
def list_command(
    reason: Annotated[str | None, typer.Option(help="only this reason")] = None,
    limit: Annotated[int, typer.Option(help="at most this many, newest first")] = 50,
) -> None:
    """Show dead letters (id, time, reason, topic, detail)."""
    from sqlalchemy import select

    from cloud.core.config import get_settings
    from cloud.core.db import init_db, make_engine
    from cloud.ingest.models import DeadLetter

    settings = get_settings()
    engine = make_engine(settings)
    init_db(engine)
    table = DeadLetter.__table__  # type: ignore[attr-defined]
    query = select(table.c.id, table.c.received_at, table.c.reason, table.c.topic, table.c.detail)
    if reason:
        query = query.where(table.c.reason == reason)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(table.c.id.desc()).limit(limit)).all()
    engine.dispose()
    if not rows:
        typer.echo(f"没有死信{f'（原因 {reason}）' if reason else ''}。")
        return
    typer.echo("id\t接收时间\t原因\t主题\t说明")
    for id_, at, why, topic, detail in rows:
        typer.echo(f"{id_}\t{at}\t{why}\t{topic}\t{detail[:120]}")
    typer.echo(f"共 {len(rows)} 条{'（已截断，--limit 可调）' if len(rows) == limit else ''}")
