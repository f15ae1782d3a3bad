"""The optional tile layer of the county map, in headless Chromium against the real app: tiles come from a local
HTTP tile server (no internet), the browser requests them with the configured template, and the markers sit on
the tiles at their coordinates — in WGS-84 for 天地图-style tiles and shifted to GCJ-02 for 高德-style tiles.

"On the right coordinates" is checked independently of ECharts: from a tile <img>'s box on the page and the Web
Mercator formula for where the site's position falls inside that tile (computed here, in Python)."""

from __future__ import annotations

import math
import shutil
import struct
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from cloud.geo.boundary import DEMO_BOUNDARY
from cloud.geo.config import geo_rules
from cloud.geo.coords import wgs84_to_gcj02
from cloud.rules.loader import LOCAL_RULES_ENV, RULES_DIR
from tests.cloud.web.conftest import ADMIN_PASSWORD, charts_built, live_cloud, poll

pytestmark = [pytest.mark.browser]

PHARMACY = (120.6290, 31.3180)


def _png() -> bytes:
    """A 256×256 solid grey PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"\xc8" * 256 for _ in range(256))
    ihdr = struct.pack(">IIBBBBB", 256, 256, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


class _Tiles(ThreadingHTTPServer):
    requested: list[str]


@pytest.fixture
def tile_server() -> Iterator[_Tiles]:
    image = _png()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            server.requested.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(image)))
            self.end_headers()
            self.wfile.write(image)

        def log_message(self, *args: Any) -> None:
            pass

    server = _Tiles(("127.0.0.1", 0), Handler)
    server.requested = []
    thread = threading.Thread(target=server.serve_forever, name="tile-server")
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _write_geo(rules_dir: Path, tile_url: str, crs: str) -> None:
    text = (RULES_DIR / "geo.toml").read_text(encoding="utf-8")
    text = text.replace('tile_url = ""', f'tile_url = "{tile_url}"\ntile_crs = "{crs}"\ntile_subdomains = "ab"')
    text = text.replace('attribution = ""', 'attribution = "测试底图"')
    (rules_dir / "geo.toml").write_text(text, encoding="utf-8")
    geo_rules.cache_clear()


def _tile_point(lon: float, lat: float, z: int) -> tuple[int, int, float, float]:
    """The XYZ tile holding (lon, lat) at zoom z and the fraction of the way across and down it."""
    n = 2**z
    x = (lon + 180) / 360 * n
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return int(x), int(y), x - int(x), y - int(y)


def _marker_centre(page: Any, colour: str) -> tuple[float, float]:
    box = page.evaluate(
        """(colour) => {
          const el = [...document.querySelectorAll('#map-canvas svg path')]
            .find(e => (e.getAttribute('fill') || '').toLowerCase() === colour);
          const r = el.getBoundingClientRect();
          return [r.x + r.width / 2, r.y + r.height / 2];
        }""",
        colour,
    )
    return box[0], box[1]


def _check_on_tiles(page: Any, server: _Tiles, lon: float, lat: float, colour: str) -> None:
    poll(lambda: page.get_attribute(".map-tiles", "data-zoom"), 15, "tiles placed")
    z = int(page.get_attribute(".map-tiles", "data-zoom"))
    tx, ty, fx, fy = _tile_point(lon, lat, z)
    tile = page.locator(f'.map-tiles img[data-tile="{z}/{tx}/{ty}"]')
    poll(lambda: tile.evaluate("i => i.complete && i.naturalWidth === 256"), 15, "the marker's tile loaded")
    # the browser fetched it from the configured template, with a subdomain in place of {s}
    assert any(p.endswith(f"/{z}/{tx}/{ty}.png") and p.startswith(("/a/", "/b/")) for p in server.requested)
    box = tile.bounding_box()
    expected = (box["x"] + fx * box["width"], box["y"] + fy * box["height"])
    got = _marker_centre(page, colour)
    assert abs(got[0] - expected[0]) < 2.5 and abs(got[1] - expected[1]) < 2.5, (got, expected, z)
    # the tiles lie under the chart (the chart's layer is on top and takes the clicks)
    assert page.evaluate("([x, y]) => document.elementFromPoint(x, y).closest('#map-canvas') !== null", list(got))


def test_tiles_drawn_under_markers_in_the_tiles_datum(
    browser: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tile_server: _Tiles
) -> None:
    if not charts_built():
        pytest.skip("ECharts not built (cd cloud/web && npm ci)")
    rules_dir = tmp_path / "rules"  # the county's own rules: the packaged ones with a tile layer in geo.toml
    shutil.copytree(RULES_DIR, rules_dir, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    monkeypatch.setenv(LOCAL_RULES_ENV, str(rules_dir))
    monkeypatch.setenv("SENTINEL_COUNTY_BOUNDARY_FILE", str(DEMO_BOUNDARY))
    monkeypatch.setenv("SENTINEL_NOTIFY_MQTT_ENABLED", "false")
    template = f"http://127.0.0.1:{tile_server.server_address[1]}/{{s}}/{{z}}/{{x}}/{{y}}.png"
    _write_geo(rules_dir, template, "wgs84")
    try:
        with live_cloud(tmp_path) as cloud:
            admin = cloud.client()
            lon, lat = PHARMACY
            site = {
                "site_id": "pharmacy-01",
                "name": "示例大药房",
                "category": "drug",
                "longitude": lon,
                "latitude": lat,
            }
            admin.post("/registry/sites", json=site).raise_for_status()
            marker = admin.get("/map/sites").json()["markers"][0]
            colour = marker["colour"].lower()
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            try:
                # 天地图-style tiles (WGS-84/CGCS2000): the marker at its stored position
                page.goto(f"{cloud.base}/map/")
                page.get_by_label("用户名").fill("admin")
                page.get_by_label("密码").fill(ADMIN_PASSWORD)
                page.get_by_role("button", name="登录").click()
                poll(lambda: errors or page.get_attribute("#map-root", "data-ready") == "1", 30, "the map page")
                assert errors == []
                assert "测试底图" in page.inner_text(".map-attribution")
                _check_on_tiles(page, tile_server, lon, lat, colour)
                # 高德-style tiles (GCJ-02): the same site drawn at its GCJ-02 position on those tiles
                _write_geo(rules_dir, template, "gcj02")
                county = admin.get("/map/county").json()
                assert county["display_crs"] == "gcj02" and county["tiles"]["crs"] == "gcj02"
                tile_server.requested.clear()
                page.reload()
                poll(lambda: errors or page.get_attribute("#map-root", "data-ready") == "1", 30, "the map page")
                glon, glat = wgs84_to_gcj02(lon, lat)
                _check_on_tiles(page, tile_server, glon, glat, colour)
                # a roam (zoom with the wheel) places the tiles again at the new scale; the marker stays on them
                before = page.get_attribute(".map-tiles", "data-zoom")
                centre = _marker_centre(page, colour)
                page.mouse.move(centre[0] + 40, centre[1] + 40)  # near the marker, not on it (no hover style)
                for _ in range(4):
                    page.mouse.wheel(0, -400)
                poll(lambda: page.get_attribute(".map-tiles", "data-zoom") != before, 10, "a new zoom level")
                _check_on_tiles(page, tile_server, glon, glat, colour)
                assert errors == []
            finally:
                page.close()
            admin.close()
    finally:
        geo_rules.cache_clear()
        shutil.rmtree(rules_dir, ignore_errors=True)


def test_tile_key_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """{key} in tile_url is filled from SENTINEL_MAP_TILE_KEY; without it the layer is left out with a notice."""
    from pydantic import SecretStr

    from cloud.api.routes.map import _tile_layer
    from cloud.core.config import Settings

    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    monkeypatch.setenv(LOCAL_RULES_ENV, str(rules_dir))
    url = "https://t{s}.tianditu.gov.cn/vec_w/wmts?TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk={key}"
    _write_geo(rules_dir, url, "wgs84")
    try:
        config = geo_rules().map
        tiles, notice = _tile_layer(config, Settings(data_dir=tmp_path))
        assert tiles is None and notice is not None and "SENTINEL_MAP_TILE_KEY" in notice
        tiles, notice = _tile_layer(config, Settings(data_dir=tmp_path, map_tile_key=SecretStr("k123")))
        assert notice is None and tiles is not None
        assert tiles["url"].endswith("&tk=k123") and tiles["crs"] == "wgs84" and tiles["subdomains"] == "ab"
    finally:
        geo_rules.cache_clear()
