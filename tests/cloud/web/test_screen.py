"""The big screen (/screen/) and the console's small-screen layout in headless Chromium against the real app.

* The county map is the centre panel; a new alert at a site turns its marker to the alert colour without reload.
* The feed reads as people read (site name · device name, the Chinese message), never ids like
  ``pharmacy-01`` or ``fridge1.temperature``.
* Layout by element boxes, not pixels: at 1920×1080 and 1440×900 every panel lies inside the viewport, no two
  overlap, no panel's content overflows it, every chart label (SVG text) lies inside its chart; the PC console at
  390×844 has no horizontal overflow.
* Internet evidence on the clue page (same seeded county, one live app for all: suite time).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cloud.alerts import AlertSignal, apply_signal
from cloud.core.db import session_scope
from cloud.evidence import EvidenceStore
from cloud.geo.boundary import DEMO_BOUNDARY
from protocols import AlertPhase
from tests.cloud.web.conftest import PASSWORD, LiveCloud, charts_built, live_cloud, poll, screenshot, seed_county
from tests.cloud.web.test_console import login
from tests.cloud.web.test_map_tiles import _png

pytestmark = [pytest.mark.browser]

NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
# elements sticking out of the viewport sideways; inside a horizontal scroller (a wide table) only the scroller
# itself must fit
OUTSIDE_VIEWPORT = """() => {
  const scrolls = (e) => ['auto', 'scroll'].includes(getComputedStyle(e).overflowX);
  const inScroller = (e) => {
    for (let p = e.parentElement; p; p = p.parentElement) if (scrolls(p)) return true;
    return false;
  };
  return [...document.querySelectorAll('#root *')].filter(e => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && !inScroller(e) && (r.left < -0.5 || r.right > innerWidth + 0.5);
  }).slice(0, 5).map(e => e.tagName + '.' + e.className + ': ' + (e.textContent || '').slice(0, 30));
}"""
RAW_CODES = ("pharmacy-01", "bakery-02", "fridge1.temperature", "oven1", "drug_storage", "food_storage")


def _raise(cloud: LiveCloud, site_id: str, device_id: str, category: str, message: str) -> None:
    now = datetime.now(UTC)
    with session_scope(cloud.app.state.engine, write=True) as session:
        apply_signal(
            session,
            AlertSignal(
                site_id=site_id,
                device_id=device_id,
                rule_id=f"{device_id}_high",
                phase=AlertPhase.RAISE,
                severity="major",
                category=category,
                message=message,
                ts=now,
                started_at=now,
                agent_id="agent-1",
                sensor_id=f"{device_id}.temperature",
                value=12.0,
                limit=8.0,
                unit="°C",
            ),
        )


@pytest.fixture
def cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveCloud]:
    """One seeded county for the whole file's checks (one test: the per-test thread-leak guard needs the server
    stopped at the end of the test that used it)."""
    monkeypatch.setenv("SENTINEL_COUNTY_BOUNDARY_FILE", str(DEMO_BOUNDARY))
    monkeypatch.setenv("SENTINEL_NOTIFY_MQTT_ENABLED", "false")
    if True:
        with live_cloud(tmp_path) as c:
            seed_county(c)
            admin = c.client()
            admin.patch(
                "/registry/sites/pharmacy-01", json={"longitude": 120.629, "latitude": 31.318}
            ).raise_for_status()
            site = {"site_id": "bakery-02", "name": "示例面包坊", "category": "food", "longitude": 120.615}
            site |= {"latitude": 31.305, "department_id": c.ids["department_id"]}
            admin.post("/registry/sites", json=site).raise_for_status()
            for site_id, device_id, name in (
                ("pharmacy-01", "fridge1", "药品冷藏柜 1 号"),
                ("bakery-02", "oven1", "冷柜"),
            ):
                device = {"site_id": site_id, "device_id": device_id, "name": name}
                admin.post("/registry/devices", json=device).raise_for_status()
            admin.close()
            _raise(c, "pharmacy-01", "fridge1", "drug_storage", "药品冷藏柜温度 12.0 °C 超过上限 8 °C")
            yield c


def _boxes(page: Any, selector: str) -> list[dict[str, Any]]:
    return page.eval_on_selector_all(
        selector,
        """els => els.map(e => { const r = e.getBoundingClientRect();
          return { label: e.getAttribute('aria-label') || e.id || e.tagName, x: r.x, y: r.y, w: r.width, h: r.height,
                   sh: e.scrollHeight, ch: e.clientHeight, sw: e.scrollWidth, cw: e.clientWidth }; })""",
    )


def _assert_layout(page: Any, width: int, height: int) -> None:
    panels = _boxes(page, ".screen-grid > header, .screen-grid > .panel")
    assert len(panels) == 10, [p["label"] for p in panels]
    for p in panels:  # inside the viewport
        assert p["x"] >= 0 and p["y"] >= 0, p
        assert p["x"] + p["w"] <= width + 0.5 and p["y"] + p["h"] <= height + 0.5, p
        assert p["sh"] <= p["ch"] + 1 and p["sw"] <= p["cw"] + 1, ("content overflows", p)
    for i, a in enumerate(panels):  # no two overlap
        for b in panels[i + 1 :]:
            apart = (
                a["x"] + a["w"] <= b["x"] + 0.5
                or b["x"] + b["w"] <= a["x"] + 0.5
                or a["y"] + a["h"] <= b["y"] + 0.5
                or b["y"] + b["h"] <= a["y"] + 0.5
            )
            assert apart, ("overlap", a["label"], b["label"])
    assert page.evaluate("() => document.documentElement.scrollWidth <= innerWidth")
    assert page.evaluate("() => document.documentElement.scrollHeight <= innerHeight")
    if charts_built():  # every chart label inside its chart (hour labels, donut labels)
        for chart in ("#trend", "#sites-chart"):
            clipped = page.evaluate(
                """(sel) => { const box = document.querySelector(sel).getBoundingClientRect();
                  return [...document.querySelectorAll(sel + ' svg text')].filter(t => t.textContent.trim())
                    .map(t => [t.textContent, t.getBoundingClientRect()])
                    .filter(([, r]) => r.width > 0 && (r.left < box.left - 0.5 || r.right > box.right + 0.5
                      || r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5)).map(([s]) => s); }""",
                chart,
            )
            texts = page.eval_on_selector_all(f"{chart} svg text", "els => els.length")
            assert texts > 0 and clipped == [], (chart, clipped)


def test_big_screen_and_console_layouts(browser: Any, cloud: LiveCloud) -> None:
    for width, height in ((1920, 1080), (1440, 900)):
        _screen_layout_and_feed(browser, cloud, width, height)
    _screen_map_follows_live_events(browser, cloud)
    _console_fits_a_phone_width(browser, cloud)
    _clue_page_internet_evidence(browser, cloud)  # last: its clues would change the screen's counts


def _screen_layout_and_feed(browser: Any, cloud: LiveCloud, width: int, height: int) -> None:
    page = browser.new_page(viewport={"width": width, "height": height})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        login(page, cloud.base, "/screen/", "chief")
        poll(lambda: errors or page.get_attribute("#root", "data-ready") == "1", 30, "the big screen")
        assert errors == []
        feed = page.inner_text("#feed")
        assert "示例大药房人民路店·药品冷藏柜 1 号温度" in feed and "超过上限 8 °C" in feed, feed
        if charts_built():
            poll(lambda: page.get_attribute("#map-canvas", "data-markers") == "2", 10, "two markers on the screen map")
        _assert_layout(page, width, height)
        body = page.inner_text("body")
        assert not [c for c in RAW_CODES if c in body], body
        screenshot(page, "screen" if width == 1920 else f"screen-{width}x{height}")
    finally:
        page.close()


def _screen_map_follows_live_events(browser: Any, cloud: LiveCloud) -> None:
    if not charts_built():
        return
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    try:
        login(page, cloud.base, "/screen/", "chief")
        poll(lambda: page.get_attribute("#root", "data-ready") == "1", 30, "the big screen")
        page.get_by_text("实时：已连接").wait_for()
        page.evaluate("window.__notReloaded = true")
        colours = (
            "() => Object.fromEntries(window.__sentinelMap.getOption().series[0].data"
            ".map(d => [d.site.site_id, d.itemStyle.color]))"
        )
        admin = cloud.client()
        api = {m["site_id"]: m for m in admin.get("/map/sites").json()["markers"]}
        assert page.evaluate(colours) == {k: m["colour"] for k, m in api.items()}
        assert api["bakery-02"]["state"] == "normal"
        _raise(cloud, "bakery-02", "oven1", "food_storage", "冷柜温度 12.0 °C 超过上限 8 °C")
        alert_colour = admin.get("/map/county").json()["colours"]["alert"]
        poll(lambda: page.evaluate(colours).get("bakery-02") == alert_colour, 15, "the bakery's marker turns red")
        page.locator("#feed").get_by_text("示例面包坊·冷柜温度").wait_for(timeout=10_000)
        assert page.evaluate("window.__notReloaded") is True
        admin.close()
    finally:
        page.close()


def _console_fits_a_phone_width(browser: Any, cloud: LiveCloud) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    try:
        page = context.new_page()
        login(page, cloud.base, "/", "chief")
        page.get_by_text("实时：已连接").wait_for()
        page.wait_for_load_state("networkidle")
        screenshot(page, "console-390")
        clue_id = cloud.client().get("/clues").json()["data"][0]["id"]
        for route in ("#/clues", f"#/clue/{clue_id}", "#/deadlines", "#/subjects", "#/scores"):
            page.goto(f"{cloud.base}/{route}")
            page.locator("main h1").first.wait_for()
            page.wait_for_load_state("networkidle")
            wide = page.evaluate(OUTSIDE_VIEWPORT)
            assert wide == [], route
            assert page.evaluate("() => document.documentElement.scrollWidth <= innerWidth"), route
    finally:
        context.close()


def _clue_page_internet_evidence(browser: Any, cloud: LiveCloud) -> None:
    """An unlawful ad recorded through the API becomes a 互联网监测 clue; its console page shows the captured text
    with the matched words highlighted, the URL, the stored capture and image, the rule with its legal basis, and
    repeated hits of one rule grouped with their count."""
    image = _png()  # the ad's picture, stored in the evidence store as an upload would put it
    image_sha = hashlib.sha256(image).hexdigest()
    EvidenceStore(cloud.settings.data_dir / "evidence").put(image_sha, image)
    chief = cloud.client("chief", PASSWORD)
    text = "本店大米品质最佳，长期食用可降血糖。"
    clue_ids = set()
    for i, words in enumerate((text, "本店大米品质最佳，新米上市。")):
        body = {
            "platform": "示例商城",
            "shop": "示例生鲜旗舰店",
            "url": f"https://shop.example/item/{i + 1}",
            "text": words,
            "goods_category": "food",
            "image_ref": image_sha,
            "captured_at": (NOW + timedelta(hours=i)).isoformat(),
        }
        r = chief.post("/internet/ads", json=body)
        assert r.status_code == 201, r.text
        clue_ids.update(r.json()["clue_ids"])
    assert len(clue_ids) == 1  # repeated hits on one shop: one clue
    clue_id = clue_ids.pop()
    hits = chief.get("/internet/hits", params={"clue_id": clue_id}).json()
    assert sorted(h["rule_id"] for h in hits) == ["AD17-medical", "AD9-superlative", "AD9-superlative"]

    page = browser.new_page(viewport={"width": 1440, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        login(page, cloud.base, f"/#/clue/{clue_id}", "chief")
        panel = page.get_by_role("region", name="互联网监测证据")
        poll(lambda: errors or page.get_attribute("#internet-evidence", "data-ready") == "1", 30, "the evidence")
        assert errors == []
        cards = panel.locator("article.ad-hit")
        assert cards.count() == 2  # two rules; the superlative's two hits grouped into one card
        superlative = panel.locator('article[data-rule="AD9-superlative"]')
        assert superlative.get_attribute("data-count") == "2"
        assert "重复命中 2 次" in superlative.inner_text()
        medical = panel.locator('article[data-rule="AD17-medical"]')
        assert medical.locator("mark").inner_text() == "降血糖"  # the matched span, highlighted in the text
        assert medical.locator(".ad-text").inner_text() == text
        assert "《广告法》第十七条" in medical.locator(".ad-basis").inner_text()
        assert medical.get_by_role("link", name="https://shop.example/item/1").count() == 1
        img = medical.locator(".ad-image img")
        poll(lambda: img.count() and img.evaluate("i => i.complete && i.naturalWidth === 256"), 10, "the image")
        with page.expect_download() as download:  # the stored capture, from the evidence store
            medical.get_by_role("button", name="下载存证").click()
        assert "降血糖" in Path(download.value.path()).read_text(encoding="utf-8")
        body = page.inner_text("body")
        for code in ("AD17-medical", "AD9-superlative", "advertising_law:"):  # rule names and citations, not ids
            assert code not in panel.inner_text(), code
        assert "AD17-medical" not in body
        screenshot(page, "console-clue-internet", full_page=True)
    finally:
        page.close()
    chief.close()
