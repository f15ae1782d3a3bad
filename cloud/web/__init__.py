"""The web console (控制台), served by the cloud at the same origin as the API.

Pages (plain HTML + ES modules under ``static/``, Chinese, no build step of their own):

* ``/``         supervisor PC console (login, clue board, clue detail, tasks and cases, subjects, scorecards)
* ``/m/``       inspector mobile view (notifications, my tasks with checklist, my cases)
* ``/screen/``  big screen 1920×1080 (live counts, SSE alert feed, trends, deadline warnings)
* ``/kiosk/``   self-service complaint/report terminal (no login)
* ``/fleet/``   edge fleet view (every agent: online, last seen, versions, outbox, clock, resources, open alerts)
* ``/map/``     the county map (一张图): boundary, townships, site markers by live state; ``?screen=1`` dark

Front-end dependencies (ECharts) come from npm (``package.json`` + lock file); ``npm ci`` in this directory copies
them into ``dist/vendor`` (not committed), served at ``/vendor/``. Without them the pages still work, charts are
replaced by tables and a notice says how to enable them (``/vendor/status.json`` tells the pages).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

HERE = Path(__file__).parent
STATIC = HERE / "static"
VENDOR = HERE / "dist" / "vendor"
PAGES = {
    "": "index.html",
    "m": "mobile.html",
    "screen": "screen.html",
    "kiosk": "kiosk.html",
    "fleet": "fleet.html",
    "map": "map.html",
}
ENABLE_HINT = "图表组件未安装：请在 cloud/web 目录运行 npm ci（或在项目根目录运行 make install），然后刷新页面。"


def vendor_status(vendor: Path = VENDOR) -> dict[str, object]:
    manifest = vendor / "manifest.json"
    if (vendor / "echarts.min.js").is_file() and manifest.is_file():
        return {"charts": True, "versions": json.loads(manifest.read_text(encoding="utf-8"))}
    return {"charts": False, "hint": ENABLE_HINT}


def _page(name: str) -> FileResponse:
    return FileResponse(STATIC / name, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})


def mount_console(app: FastAPI, *, vendor: Path = VENDOR) -> None:
    """Serve the console pages at ``/``, ``/m/``, ``/screen/``, ``/kiosk/``, app files at ``/static/`` and the
    npm-built vendor files at ``/vendor/`` (absent → ``status.json`` says so and charts degrade)."""

    def page_route(filename: str) -> Callable[[], Awaitable[FileResponse]]:
        async def page() -> FileResponse:
            return _page(filename)

        return page

    def redirect_route(target: str) -> Callable[[], Awaitable[RedirectResponse]]:
        async def redirect() -> RedirectResponse:
            return RedirectResponse(target)

        return redirect

    for prefix, filename in PAGES.items():
        if prefix:
            app.add_api_route(f"/{prefix}", redirect_route(f"/{prefix}/"), include_in_schema=False)
            app.add_api_route(f"/{prefix}/", page_route(filename), include_in_schema=False)
        else:
            app.add_api_route("/", page_route(filename), include_in_schema=False)

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
