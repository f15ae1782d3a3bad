"""Atomic alert upsert and the alert → clue hand-over, on a real SQLite file."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text
from sqlmodel import Session

from cloud.alerts import AlertSignal, apply_signal
from cloud.core.db import writer
from protocols import AlertPhase

T0 = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)


def signal(phase: AlertPhase, value: float, *, minutes: int = 0, edge_id: str = "al-00000001") -> AlertSignal:
    return AlertSignal(
        site_id="pharmacy-1",
        device_id="fridge-1",
        rule_id="drug_fridge_high",
        phase=phase,
        severity="major",
        category="drug_storage",
        message=f"冷藏柜温度 {value} °C",
        ts=T0 + timedelta(minutes=minutes),
        started_at=T0,
        sensor_id="t1",
        value=value,
        edge_alert_id=edge_id,
    )


def count(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def test_two_raises_milliseconds_apart_leave_one_open_alert_and_one_clue(cloud_engine: Engine) -> None:
    barrier = threading.Barrier(8)
    created: list[bool] = []
    errors: list[BaseException] = []

    def raise_it(i: int) -> None:
        try:
            barrier.wait()
            with Session(writer(cloud_engine)) as session:
                created.append(apply_signal(session, signal(AlertPhase.RAISE, 12.0 + i)).created)
                session.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=raise_it, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert sorted(created) == [False] * 7 + [True]
    assert count(cloud_engine, "SELECT count(*) FROM alert WHERE status='open'") == 1
    assert count(cloud_engine, "SELECT update_count FROM alert") == 7
    assert count(cloud_engine, "SELECT count(*) FROM clue") == 1


def test_lifecycle_raise_update_clear_then_a_new_instance(cloud_engine: Engine) -> None:
    with Session(writer(cloud_engine)) as s:
        assert apply_signal(s, signal(AlertPhase.RAISE, 12.0)).created
        assert not apply_signal(s, signal(AlertPhase.UPDATE, 13.0, minutes=1)).created
        stale_clear = apply_signal(s, signal(AlertPhase.CLEAR, 5.0, minutes=2, edge_id="al-older-instance"))
        assert not stale_clear.cleared  # a clear of another instance does not close this one
        assert apply_signal(s, signal(AlertPhase.CLEAR, 5.0, minutes=3)).cleared
        again = apply_signal(s, signal(AlertPhase.RAISE, 11.0, minutes=30, edge_id="al-00000002"))
        assert again.created
        s.commit()
    assert count(cloud_engine, "SELECT count(*) FROM alert") == 2
    assert count(cloud_engine, "SELECT count(*) FROM alert WHERE status='open'") == 1
    # the second alert of the same identity folded into the still-open clue
    assert count(cloud_engine, "SELECT count(*) FROM clue") == 1
    assert count(cloud_engine, "SELECT source_count FROM clue") == 2


def test_evidence_of_each_step_is_kept_once_per_hash(cloud_engine: Engine) -> None:
    from dataclasses import replace

    from sqlmodel import select

    from cloud.alerts import Alert

    snap = {"sha256": "a" * 64, "content_type": "image/jpeg", "size": 1234, "label": "person"}
    later = {"sha256": "b" * 64, "content_type": "image/jpeg", "size": 999, "label": None}
    with Session(writer(cloud_engine)) as session:
        apply_signal(session, replace(signal(AlertPhase.RAISE, 9.0), evidence=(snap,)))
        apply_signal(session, replace(signal(AlertPhase.UPDATE, 9.5, minutes=1), evidence=(snap, later)))
        session.commit()
    with Session(cloud_engine) as session:
        alert = session.exec(select(Alert)).one()
    assert [ref["sha256"] for ref in alert.evidence] == ["a" * 64, "b" * 64]
    assert alert.evidence[0]["label"] == "person"


def test_a_more_severe_alert_folding_in_retitles_the_clue(cloud_engine: Engine) -> None:
    from dataclasses import replace

    from sqlmodel import select

    from cloud.workflow.clues import Clue

    rate = replace(
        signal(AlertPhase.RAISE, 6.0), rule_id="gsp.rate_of_change", severity="warning", message="温度上升过快"
    )
    high = replace(signal(AlertPhase.RAISE, 12.0, minutes=2), severity="critical", message="温度 12 °C 超过上限 8 °C")
    with Session(writer(cloud_engine)) as session:
        apply_signal(session, rate)
        apply_signal(session, high)
        session.commit()
    with Session(cloud_engine) as session:
        clue = session.exec(select(Clue)).one()
    assert clue.source_count == 2 and clue.severity == "critical"
    assert clue.title.startswith("【紧急】") and "超过上限" in clue.title


def test_clear_keeps_the_alerts_value(cloud_engine: Engine) -> None:
    """Issue 15: the clear step overwrote the alert's value with the value at clear time (9.5 °C showed -5.5)."""
    with Session(writer(cloud_engine)) as s:
        apply_signal(s, signal(AlertPhase.RAISE, 9.5))
        cleared = apply_signal(s, signal(AlertPhase.CLEAR, -5.5, minutes=5))
        assert cleared.cleared and cleared.alert is not None
        s.commit()
    with cloud_engine.connect() as conn:
        assert conn.execute(text("SELECT value, status FROM alert")).one() == (9.5, "cleared")


def test_a_more_important_camera_alert_retitles_the_clue(cloud_engine: Engine) -> None:
    """Issue #16: a clue kept the first camera alert's title after a more important one joined it."""
    from dataclasses import replace

    from sqlmodel import select

    from cloud.workflow.clues import Clue

    frozen = replace(
        signal(AlertPhase.RAISE, 31.0),
        site_id="canteen-1",
        device_id="kitchen-cam-1",
        sensor_id=None,
        rule_id="video_frozen",
        severity="minor",
        category="video",
        message="摄像头「后厨摄像头1」画面冻结",
        edge_alert_id="cam-a",
    )
    covered = replace(
        frozen,
        rule_id="camera_covered",
        severity="major",
        message="摄像头「后厨摄像头1」疑似被遮挡",
        edge_alert_id="cam-b",
    )
    offline = replace(
        frozen,
        rule_id="video_offline",
        severity="major",
        message="摄像头「后厨摄像头1」视频离线",
        edge_alert_id="cam-c",
    )
    with Session(writer(cloud_engine)) as session:
        for s in (frozen, covered, offline):
            apply_signal(session, s)
        # the frozen alert escalates on the edge (UPDATE with a higher severity)
        apply_signal(
            session, replace(frozen, phase=AlertPhase.UPDATE, severity="critical", message="画面冻结超过 1 小时")
        )
        session.commit()
    with Session(cloud_engine) as session:
        clue = session.exec(select(Clue)).one()
    assert clue.source_count == 3
    assert clue.severity == "critical" and "画面冻结超过 1 小时" in clue.title, clue.title
