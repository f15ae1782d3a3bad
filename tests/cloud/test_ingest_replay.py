"""`sentinel cloud dead-letters replay`: kept dead letters go through the normal path once the cause is fixed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from cloud.cli import app
from cloud.core.config import Settings, get_settings
from cloud.ingest.writer import IngestWriter, RawMessage
from cloud.telemetry.sqlite import SqliteStore
from cloud.telemetry.store import TelemetryStore
from protocols import Channel, encode, topic_for
from tests.cloud.test_ingest import batch, malformed, registered_world, scalar  # noqa: F401 - the registered sites (autouse)


class BrokenStore(SqliteStore):
    """A store with a bug that is later fixed (e.g. a unit the backend refused)."""

    broken = True

    def write_decoded(self, batches: Sequence[Any], instant: Any, **kw: Any) -> int:
        if self.broken:
            raise ValueError("store bug: unit °C refused")
        return super().write_decoded(batches, instant, **kw)

    def write_batches(self, batches: Sequence[Any], **kw: Any) -> int:
        if self.broken:
            raise ValueError("store bug: unit °C refused")
        return super().write_batches(batches, **kw)


def test_replay_after_a_fix_stores_once_and_keeps_the_still_bad(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cloud_settings: Settings, cloud_engine: Engine
) -> None:
    store = BrokenStore(cloud_settings, cloud_engine)
    store.create_schema()
    writer = IngestWriter(cloud_engine, store)
    good = [
        RawMessage(topic_for("s1", "a1", Channel.TELEMETRY), encode(batch("s1", "a1", seq, 3))) for seq in (1, 2, 3)
    ]
    bad = [RawMessage(t, p) for t, p, _ in (malformed(i, "s1", "a1") for i in (0, 4))]
    writer.commit([*good, *bad])
    assert store.count() == 0
    assert scalar(cloud_engine, "SELECT count(*) FROM dead_letter WHERE reason='store_error'") == 3
    assert scalar(cloud_engine, "SELECT count(*) FROM dead_letter") == 5
    assert scalar(cloud_engine, "SELECT count(*) FROM ingest_seq") == 0

    store.broken = False  # the bug is fixed; now replay through the CLI
    monkeypatch.setenv("SENTINEL_DATA_DIR", str(cloud_settings.data_dir))
    monkeypatch.setenv("SENTINEL_DATABASE_URL", cloud_settings.db_url)
    monkeypatch.setenv("SENTINEL_JWT_SECRET", "test-secret-" + "x" * 32)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        out = runner.invoke(app, ["dead-letters", "replay", "--reason", "store_error"])
        assert out.exit_code == 0, out.output
        assert "重新提交 3 条死信：新入库 3，重复 0" in out.output, out.output
        assert store.count() == 9
        assert scalar(cloud_engine, "SELECT count(*) FROM dead_letter WHERE reason='store_error'") == 0
        assert scalar(cloud_engine, "SELECT count(*) FROM ingest_seq") == 3
        # the other reasons were not touched by --reason
        assert scalar(cloud_engine, "SELECT count(*) FROM dead_letter") == 2

        # replaying everything: the malformed ones fail again with their reason (not duplicated), nothing stored twice
        again = runner.invoke(app, ["dead-letters", "replay"])
        assert again.exit_code == 0, again.output
        assert "仍为死信 2" in again.output and "malformed_json: 1" in again.output, again.output
        assert "identity_mismatch: 1" in again.output
        reasons = text("SELECT reason FROM dead_letter ORDER BY reason")
        with cloud_engine.connect() as conn:
            assert [r[0] for r in conn.execute(reasons)] == ["identity_mismatch", "malformed_json"]
        assert store.count() == 9

        listed = runner.invoke(app, ["dead-letters", "list"])
        assert listed.exit_code == 0 and "identity_mismatch" in listed.output
        assert "共 2 条" in listed.output, listed.output
        # none of a reason: it says so instead of printing nothing (issue 15)
        none = runner.invoke(app, ["dead-letters", "list", "--reason", "store_error"])
        assert none.exit_code == 0 and "没有死信（原因 store_error）" in none.output, none.output
    finally:
        get_settings.cache_clear()


def test_replaying_an_already_committed_message_retires_it_as_a_duplicate(
    cloud_engine: Engine, cloud_store: TelemetryStore
) -> None:
    from cloud.ingest.replay import replay_dead_letters

    message = RawMessage(topic_for("s1", "a1", Channel.TELEMETRY), encode(batch("s1", "a1", 7)))
    IngestWriter(cloud_engine, cloud_store).commit([message])  # committed (e.g. resent by the edge meanwhile)
    with cloud_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO dead_letter (topic, reason, detail, payload, received_at) "
                "VALUES (:t, 'store_error', '', :p, :r)"
            ),
            {"t": message.topic, "p": message.payload, "r": "2026-11-26 08:00:00.000000"},
        )
    report = replay_dead_letters(cloud_engine, cloud_store)
    assert (report.replayed, report.stored, report.duplicates) == (1, 0, 1)
    assert scalar(cloud_engine, "SELECT count(*) FROM dead_letter") == 0
    assert cloud_store.count() == 2
