"""Analysis follows the clue (issue #19): the demo's drug-fridge clue opens on a minor rate-of-change alert; when the
critical 8 °C threshold alert joins it, the clue is re-analysed, its title, rule and chart follow the critical source
(the chart's line is the 8 °C limit of GSP refrigerated storage, 2–8 °C, not the rate rule's 2.0), and the journal
records each analysis with what triggered it. A complaint joining an alert clue (a new kind) re-analyses it too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cloud.core.db import session_scope
from cloud.registry.models import Device
from tests.utils.workflow_factories import World, work_order

API = "/api/v1"


FRIDGE = {"device_id": "fridge1", "sensor_id": "fridge1.temperature"}


def test_a_more_severe_source_reanalyses_and_leads_the_clue(world: World) -> None:
    with session_scope(world.engine, write=True) as session:
        session.add(Device(site_id=world.site_id, device_id="fridge1", name="药品冷藏柜 1 号"))
    c, h = world.client, world.h("head")
    now = datetime.now(UTC)
    world.alert(
        **FRIDGE, rule_id="fridge1_temp_rate", severity="minor", limit=2.0, value=1.2, message="升温过快", at=now
    )
    clues = c.get(f"{API}/clues", headers=h).json()["data"]
    assert len(clues) == 1
    clue_id = clues[0]["id"]
    assert clues[0]["title"].startswith("【次要】")
    assert "示例大药房人民路店·药品冷藏柜 1 号温度" in clues[0]["title"]  # names, not pharmacy-1/fridge1.temperature
    assert "fridge1" not in clues[0]["title"]

    world.alert(
        **FRIDGE,
        rule_id="fridge1_temp_high",
        severity="critical",
        limit=8.0,
        value=9.3,
        message="温度 9.3 ℃ 超出 2–8 ℃",
        at=now + timedelta(minutes=3),
    )
    clue = c.get(f"{API}/clues/{clue_id}", headers=h).json()
    assert clue["source_count"] == 2 and clue["severity"] == "critical"
    assert clue["title"].startswith("【紧急】") and "9.3" in clue["title"]
    assert clue["rule_id"] == "fridge1_temp_high"
    assert clue["place"] == "示例大药房人民路店·药品冷藏柜 1 号温度"  # not pharmacy-1 / fridge1.temperature
    context = c.get(f"{API}/console/clues/{clue_id}/context", headers=h).json()
    assert context["window"]["limit"] == 8.0  # GSP refrigerated upper limit, not the rate rule's 2.0
    timeline = c.get(f"{API}/clues/{clue_id}/timeline", headers=h).json()
    triggers = [e["payload"]["trigger"] for e in timeline if e["action"] == "clue.analysed"]
    assert triggers == ["created", "severity_raised"]
    assert clue["decision"]["facts"]["severity"] == "critical"

    # a source of the same or lower severity and of a known kind does not re-analyse
    world.alert(**FRIDGE, rule_id="fridge1_temp_rate2", severity="minor", limit=2.0, value=1.5, message="升温", at=now)
    timeline = c.get(f"{API}/clues/{clue_id}/timeline", headers=h).json()
    assert len([e for e in timeline if e["action"] == "clue.analysed"]) == 2


def test_a_new_kind_of_source_reanalyses(world: World) -> None:
    c = world.client
    clue_id = world.alert(severity="minor")
    order = work_order(external_no="12345-0009")
    folded = c.post(f"{API}/clues/intake", json=order, headers=world.h("clerk"))
    assert folded.status_code == 201, folded.text
    assert folded.json()["clue"]["id"] == clue_id
    timeline = c.get(f"{API}/clues/{clue_id}/timeline", headers=world.h("head")).json()
    triggers = [e["payload"]["trigger"] for e in timeline if e["action"] == "clue.analysed"]
    assert triggers == ["created", "new_kind"]


def test_the_title_names_the_measuring_point_once(world: World) -> None:
    """An edge rule's message starts with the point's name (药品冷藏柜 2 号温度 9.3 ℃ …); the title already names it
    after the site, so it is not repeated (the whole-flow walk read …冷藏柜 2 号温度：药品冷藏柜 2 号温度 9.3 ℃)."""
    with session_scope(world.engine, write=True) as session:
        session.add(Device(site_id=world.site_id, device_id="fridge2", name="药品冷藏柜 2 号"))
    clue_id = world.alert(
        device_id="fridge2",
        sensor_id="fridge2.temperature",
        rule_id="fridge2_temp_high",
        severity="critical",
        value=9.3,
        message="药品冷藏柜 2 号温度 9.3 ℃ 超出 2–8 ℃",
    )
    title = world.client.get(f"{API}/clues/{clue_id}", headers=world.h("head")).json()["title"]
    assert title == "【紧急】药品储存告警 示例大药房人民路店·药品冷藏柜 2 号温度：9.3 ℃ 超出 2–8 ℃"
