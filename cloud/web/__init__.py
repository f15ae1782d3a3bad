"""The web console (控制台), served by the cloud at the same origin as the API.

Pages (ES modules under ``static/js``, Chinese, no build step of their own; every page's HTML is the one shared
``static/partials/page.html`` filled from its :class:`Page` entry in :data:`PAGES`):

* ``/``         supervisor PC console (login, clue board, clue detail, tasks and cases, subjects, scorecards)
* ``/m/``       inspector mobile view (notifications, my tasks with checklist, my cases)
* ``/screen/``  big screen 1920×1080 / 1440×900 (county map in the centre, live counts, SSE alert feed, trends,
  deadline warnings)
* ``/kiosk/``   self-service complaint/report terminal (no login)
* ``/fleet/``   edge fleet view (every agent: online, last seen, versions, outbox, clock, resources, open alerts)
* ``/map/``     the county map (一张图): boundary, townships, site markers by live state, optional tiles

Front-end dependencies (ECharts) come from npm (``package.json`` + lock file); ``npm ci`` in this directory copies
them into ``dist/vendor`` (not committed), served at ``/vendor/``. Without them the pages still work, charts are
replaced by tables and a notice says how to enable them (``/vendor/status.json`` tells the pages).
"""

from __future__ import annotations

import html
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

HERE = Path(__file__).parent
STATIC = HERE / "static"
VENDOR = HERE / "dist" / "vendor"


@dataclass(frozen=True)
class Page:
    """One console page: its head and root element as data, rendered from the one shared ``partials/page.html``."""

    title: str
    script: str
    styles: tuple[str, ...] = ("console.css",)
    viewport: str = "width=device-width, initial-scale=1"
    body_class: str = ""
    root_tag: str = "div"
    root_id: str = "root"
    root_class: str = ""
    theme_color: str = ""

    def render(self) -> str:
        e = html.escape
        styles = "".join(f'  <link rel="stylesheet" href="/static/{e(s)}">\n' for s in self.styles)
        return (
            (STATIC / "partials" / "page.html")
            .read_text(encoding="utf-8")
            .format(
                title=e(self.title),
                script=e(self.script),
                viewport=e(self.viewport),
                meta=f'  <meta name="theme-color" content="{e(self.theme_color)}">\n' if self.theme_color else "",
                styles=styles,
                body_class=f' class="{e(self.body_class)}"' if self.body_class else "",
                root_tag=self.root_tag,
                root_id=e(self.root_id),
                root_class=f' class="{e(self.root_class)}"' if self.root_class else "",
            )
        )


MAP_STYLES = ("console.css", "map.css")
PAGES = {
    "": Page("监管控制台", "console.js", ("console.css", "console-extras.css")),
    "m": Page(
        "执法检查移动端",
        "mobile.js",
        viewport="width=device-width, initial-scale=1, viewport-fit=cover",
        root_class="mobile",
        theme_color="#1457a8",
    ),
    "screen": Page("市场监管态势大屏", "screen.js", MAP_STYLES, body_class="screen"),
    "kiosk": Page("自助投诉举报终端", "kiosk.js", root_tag="main", root_class="kiosk"),
    "fleet": Page("边缘设备一览", "fleet.js"),
    "map": Page("辖区一张图", "map.js", (*MAP_STYLES, "console-extras.css"), body_class="map-page", root_id="map-root"),
}
ENABLE_HINT = "图表组件未安装：请在 cloud/web 目录运行 npm ci（或在项目根目录运行 make install），然后刷新页面。"


def vendor_status(vendor: Path = VENDOR) -> dict[str, object]:
    manifest = vendor / "manifest.json"
    if (vendor / "echarts.min.js").is_file() and manifest.is_file():
        return {"charts": True, "versions": json.loads(manifest.read_text(encoding="utf-8"))}
    return {"charts": False, "hint": ENABLE_HINT}


def _page(page: Page) -> HTMLResponse:
    return HTMLResponse(page.render(), headers={"Cache-Control": "no-cache"})


def mount_console(app: FastAPI, *, vendor: Path = VENDOR) -> None:
    """Serve the console pages at ``/``, ``/m/``, ``/screen/``, ``/kiosk/``, app files at ``/static/`` and the
    npm-built vendor files at ``/vendor/`` (absent → ``status.json`` says so and charts degrade)."""

    def page_route(spec: Page) -> Callable[[], Awaitable[HTMLResponse]]:
        async def page() -> HTMLResponse:
            return _page(spec)

        return page

    def redirect_route(target: str) -> Callable[[], Awaitable[RedirectResponse]]:
        async def redirect() -> RedirectResponse:
            return RedirectResponse(target)

        return redirect

    for prefix, spec in PAGES.items():
        if prefix:
            app.add_api_route(f"/{prefix}", redirect_route(f"/{prefix}/"), include_in_schema=False)
            app.add_api_route(f"/{prefix}/", page_route(spec), include_in_schema=False)
        else:
            app.add_api_route("/", page_route(spec), include_in_schema=False)

    async def status_json() -> JSONResponse:
        return JSONResponse(vendor_status(vendor), headers={"Cache-Control": "no-cache"})

    app.add_api_route("/vendor/status.json", status_json, include_in_schema=False)
    if vendor.is_dir():
        app.mount("/vendor", StaticFiles(directory=vendor), name="console-vendor")
    else:

        async def missing(path: str) -> Response:
            return Response(f"/* {ENABLE_HINT} */", status_code=404, media_type="text/javascript; charset=utf-8")

        app.add_api_route("/vendor/{path:path}", missing, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC), name="console-static")
