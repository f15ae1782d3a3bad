"""Workflow notifications carry Chinese titles built from the workflow's own labels, never raw event names."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.journal import JournalEvent
from cloud.notify.routing import facts_from_event


@pytest.mark.parametrize(
    ("action", "target", "payload", "title"),
    [
        ("task.assigned", "task", {"task_no": "JC-2026-0001"}, "【检查任务】JC-2026-0001 已指派给您"),
        ("case.transition", "case", {"case_no": "AJ-7", "to": "registered"}, "【案件】AJ-7 状态变为“案源登记”"),
        ("task.transition", "task", {"to": "checked_in"}, "【检查任务】#5 状态变为“已到场”"),
    ],
)
def test_workflow_event_titles_are_chinese(action: str, target: str, payload: dict[str, str], title: str) -> None:
    event = JournalEvent(
        actor="u", action=action, target_type=target, target_id="5", payload=payload, prev_hash="", hash=""
    )
    facts = facts_from_event(event)
    assert facts.title == title
    assert action not in facts.title


def test_an_alert_notification_names_the_place_not_the_ids(tmp_path: Path) -> None:
    """The stranger's walk: an alert's in-app notification read
    ``【重要】食品冷链告警 restaurant-01/coldroom1.temperature`` while its clue said ``老街面馆后厨·后厨冷藏库温度``.
    The title uses the clue's place label (ids only for what is not registered)."""
    from sqlmodel import Session

    from cloud.core.config import Settings
    from cloud.core.db import init_db, make_engine
    from cloud.registry.models import Device, Site

    engine = make_engine(Settings(data_dir=tmp_path))
    init_db(engine)
    payload = {"site_id": "restaurant-01", "device_id": "coldroom1", "sensor_id": "coldroom1.temperature"}
    payload |= {"severity": "major", "category": "food_cold_chain", "message": "后厨冷藏库温度 10°C", "clue_id": 2}
    event = JournalEvent(
        actor="agent:edge-1", action="alert.raised", target_type="alert", target_id="2", payload=payload,
        prev_hash="", hash="",
    )  # fmt: skip
    with Session(engine) as session:
        session.add(Site(site_id="restaurant-01", name="老街面馆后厨"))
        session.flush()
        session.add(Device(site_id="restaurant-01", device_id="coldroom1", name="后厨冷藏库"))
        session.commit()
        facts = facts_from_event(event, session)
        assert facts.title == "【重要】食品冷链告警 老街面馆后厨·后厨冷藏库温度", facts.title
        unknown = JournalEvent(**{**event.model_dump(), "payload": {**payload, "site_id": "ghost-site"}})
        assert facts_from_event(unknown, session).title == "【重要】食品冷链告警 ghost-site/coldroom1.temperature"
