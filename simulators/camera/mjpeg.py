"""MJPEG-over-HTTP camera simulator (stdlib ``http.server`` in threads) and a video-file writer.

``GET /stream.mjpg`` serves ``multipart/x-mixed-replace`` JPEG frames of a scenario in real time;
``GET /snapshot.jpg`` the latest frame. One render thread produces frames at the scenario's fps and
every client gets the same bytes. During a ``stall`` event nothing is sent (connections stay open);
:meth:`MjpegServer.stop` closes the listening socket and every connection (a dead camera), and
:meth:`MjpegServer.start` brings it back on the same port.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2

from simulators.camera.scenario import Scenario, SceneRenderer

log = logging.getLogger(__name__)
BOUNDARY = "sentinelframe"


class _Broadcast:
    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.jpeg: bytes | None = None
        self.index = 0
        self.t = 0.0
        self.closed = False

    def publish(self, jpeg: bytes, t: float) -> None:
        with self.cond:
            self.jpeg, self.t = jpeg, t
            self.index += 1
            self.cond.notify_all()

    def wait_next(self, after: int, timeout: float) -> tuple[int, bytes | None]:
        with self.cond:
            self.cond.wait_for(lambda: self.index > after or self.closed, timeout)
            return self.index, self.jpeg if self.index > after else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    broadcast: _Broadcast
    connections: set[socket.socket]
    lock: threading.Lock


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: object) -> None:
        log.debug("camera sim: " + format, *args)

    def do_GET(self) -> None:
        path = self.path.split("?")[0]
        b = self.server.broadcast
        if path == "/snapshot.jpg":
            _, jpeg = b.wait_next(0, 5.0)
            if jpeg is None:
                self.send_error(503, "no frame yet")
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(jpeg)))
            self.end_headers()
            self.wfile.write(jpeg)
            return
        if path not in ("/stream.mjpg", "/"):
            self.send_error(404)
            return
        with self.server.lock:
            self.server.connections.add(self.connection)
        try:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            seen = 0
            while not b.closed:
                seen, jpeg = b.wait_next(seen, 0.5)
                if jpeg is None:
                    continue
                head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                self.wfile.write(head.encode() + jpeg + b"\r\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        finally:
            with self.server.lock:
                self.server.connections.discard(self.connection)


class MjpegServer:
    """Serves one scenario on 127.0.0.1; ``port=0`` picks a free port (see :attr:`port` after start)."""

    def __init__(
        self, scenario: Scenario, *, host: str = "127.0.0.1", port: int = 0, loop: bool = False, quality: int = 80
    ) -> None:
        self.scenario = scenario
        self.host, self.port = host, port
        self.loop = loop
        self.quality = quality
        self._renderer = SceneRenderer(scenario)
        self._http: _Server | None = None
        self._threads: list[threading.Thread] = []
        self._broadcast = _Broadcast()
        self._stop = threading.Event()
        self.t0 = time.monotonic()
        self.frames_sent = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/stream.mjpg"

    def scene_time(self) -> float:
        """Seconds into the scenario (the render clock)."""
        t = time.monotonic() - self.t0
        return t % self.scenario.duration_s if self.loop else t

    def start(self) -> MjpegServer:
        """Start (or restart after :meth:`stop`, on the same port; the scenario clock keeps running)."""
        http = _Server((self.host, self.port), _Handler)
        self.port = http.server_address[1]
        self._broadcast = _Broadcast()
        http.broadcast, http.connections, http.lock = self._broadcast, set(), threading.Lock()
        self._http = http
        self._stop.clear()
        self._threads = [
            threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.1}, name="camsim-http"),
            threading.Thread(target=self._render_loop, name="camsim-render"),
        ]
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        """Kill the camera: stop rendering, close the listener and every open connection."""
        self._stop.set()
        http = self._http
        if http is None:
            return
        with self._broadcast.cond:
            self._broadcast.closed = True
            self._broadcast.cond.notify_all()
        http.shutdown()
        with http.lock:
            for conn in list(http.connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        http.server_close()
        for t in self._threads:
            t.join(5)
        self._http = None

    def __enter__(self) -> MjpegServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _render_loop(self) -> None:
        interval = 1.0 / self.scenario.fps
        next_at = time.monotonic()
        while not self._stop.is_set():
            frame = self._renderer.render(self.scene_time())
            if frame.image is not None:
                ok, buf = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
                if ok:
                    self._broadcast.publish(buf.tobytes(), frame.t)
                    self.frames_sent += 1
            next_at += interval
            self._stop.wait(max(0.0, next_at - time.monotonic()))


def write_video(scenario: Scenario, path: Path, *, fourcc: str = "MJPG") -> int:
    """Render a scenario to a video file (stalls are left out, frozen frames repeated); returns frames written."""
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter.fourcc(*fourcc), scenario.fps, (scenario.width, scenario.height)
    )
    if not writer.isOpened():
        raise OSError(f"cannot write video {path} with codec {fourcc}")
    n = 0
    try:
        for frame in scenario.frames():
            if frame.image is not None:
                writer.write(frame.image)
                n += 1
    finally:
        writer.release()
    return n
