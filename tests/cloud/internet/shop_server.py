"""A local shop web server for fetcher tests (127.0.0.1, port chosen by the OS): HTML and JSON shop pages."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

SHOP_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>丙粮油店 - 示例商城</title>
<script>var promo = "<div class='ad'>not an item</div>";</script></head>
<body>
<h1 class="shop-name">丙粮油店</h1>
<div class="ad"><p class="text">开封后最好冷藏保存，第一次购买立减5元。</p><img src="/img/1.png"></div>
<div class="ad"><p class="text">富硒大米，长期食用可降血糖，品质最佳！</p><a class="link" href="/item/8">详情</a></div>
<div class="ad"><p class="text">“第一坊”牌酱菜，百年老店。</p></div>
<ul>
<li class="goods"><span class="name">东北大米</span><span class="spec">5kg/袋</span><b class="price">¥68.00</b></li>
<li class="goods"><span class="name">花生油</span><span class="spec">5L/桶</span><b class="price">¥79.90</b>
  <s class="marked">¥79.90</s></li>
<li class="goods"><span class="name">鸡蛋</span><span class="spec">30枚</span><b class="price">面议</b></li>
</ul>
</body></html>
"""

SHOP_JSON = {
    "data": {
        "shop": "丁药房",
        "items": [
            {"title": "复方感冒片 国药准字H32020001 苏药广审（文）第250615-01234号", "kind": "drug"},
            {"title": "清肺止咳颗粒 国药准字Z32020002，药到病除。", "kind": "drug"},
        ],
    }
}


class _Handler(BaseHTTPRequestHandler):
    pages: ClassVar[dict[str, tuple[str, bytes]]] = {
        "/shop/bing": ("text/html; charset=utf-8", SHOP_HTML.encode()),
        "/api/shop/ding": ("application/json", json.dumps(SHOP_JSON, ensure_ascii=False).encode()),
    }

    def do_GET(self) -> None:
        page = self.pages.get(self.path)
        if page is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", page[0])
        self.send_header("Content-Length", str(len(page[1])))
        self.end_headers()
        self.wfile.write(page[1])

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def shop_server() -> Iterator[str]:
    """Serve the shop pages; yields the base URL. The server thread is joined on exit."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, name="shop-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
