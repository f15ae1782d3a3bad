"""Loopback webhook receivers (real HTTP): used by the notification tests and the fault soak."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Receivers:
    """Loopback HTTP receivers: ``/ok/<name>`` answers like a robot ({"errcode":0}), ``/fail/<name>`` 500,
    ``/hold/<name>`` records the request at once but answers 200 only when ``release`` is set (a slow receiver:
    a send in flight for as long as a test needs).

    ``received[name]``: the JSON bodies, in arrival order; ``headers[name]``: their request headers."""

    base: str
    received: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    headers: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    release: threading.Event = field(default_factory=threading.Event)

    def url(self, name: str, mode: str = "ok") -> str:
        return f"{self.base}/{mode}/{name}"


@contextlib.contextmanager
def webhook_receivers() -> Iterator[Receivers]:
    receivers = Receivers(base="")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            _, mode, name = self.path.split("?")[0].split("/")[:3]
            with lock:
                receivers.received.setdefault(name, []).append(json.loads(body))
                receivers.headers.setdefault(name, []).append(dict(self.headers.items()))
            if mode == "hold":
                receivers.release.wait(60)
            status = 500 if mode == "fail" else 200
            reply = json.dumps({"errcode": 0, "errmsg": "ok"} if status == 200 else {"error": "down"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receivers.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="webhook-receiver", kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield receivers
    finally:
        receivers.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)
