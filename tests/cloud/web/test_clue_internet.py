"""Internet evidence on the console's clue page, in headless Chromium against the real app: an unlawful ad
recorded through the API becomes a 互联网监测 clue; its page shows the captured text with the matched words
highlighted, the page URL, the stored capture and image, the rule with its legal basis, and repeated hits of one
rule grouped with their count."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cloud.evidence import EvidenceStore
from tests.cloud.web.conftest import PASSWORD, live_cloud, poll, screenshot, seed_county
from tests.cloud.web.test_console import login
from tests.cloud.web.test_map_tiles import _png

pytestmark = [pytest.mark.browser]

NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def test_clue_page_shows_internet_evidence(browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTINEL_NOTIFY_MQTT_ENABLED", "false")
    with live_cloud(tmp_path) as cloud:
        seed_county(cloud)
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
