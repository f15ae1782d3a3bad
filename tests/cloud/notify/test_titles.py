"""Workflow notifications carry Chinese titles built from the workflow's own labels, never raw event names."""

from __future__ import annotations

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
