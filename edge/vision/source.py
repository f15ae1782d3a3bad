"""Frame sources: MJPEG over HTTP, RTSP/other network streams, video files, local devices.

Every source follows OpenCV's grab/retrieve split: :meth:`grab` takes the next frame off the wire
(cheap for MJPEG: just the JPEG bytes) and :meth:`retrieve` decodes the last grabbed one — so a
25 fps stream analysed at 5 fps costs five decodes a second, not twenty-five. ``grab`` returns
False when nothing arrived within the read timeout and raises :class:`SourceError` when the stream is
broken or ended; the camera worker reopens it with back-off.
"""

from __future__ import annotations

import http.client
import time
import urllib.parse
from typing import Any, Protocol

import cv2
import numpy as np
from numpy.typing import NDArray

from edge.vision.config import CameraConfig
from edge.vision.quiet import silence_opencv

Frame = NDArray[Any]
_SOI, _EOI = b"\xff\xd8", b"\xff\xd9"
_MAX_BUFFER = 8 * 1024 * 1024


class SourceError(OSError):
    """The stream cannot be opened, broke, or ended."""


class SourceEnded(SourceError):
    """A video file reached its end and ``loop_file`` is false: nothing more will come."""


_MJPEG_TYPES = ("multipart/x-mixed-replace", "image/jpeg", "image/jpg")


class FrameSource(Protocol):
    def open(self) -> None: ...
    def grab(self) -> bool: ...
    def retrieve(self) -> Frame: ...
    def close(self) -> None: ...


class MjpegSource:
    """``multipart/x-mixed-replace`` JPEG stream over HTTP (most IP cameras, our simulator)."""

    def __init__(self, url: str, read_timeout_s: float) -> None:
        self._url = urllib.parse.urlsplit(url)
        self._timeout = read_timeout_s
        self._conn: http.client.HTTPConnection | None = None
        self._resp: http.client.HTTPResponse | None = None
        self._buf = bytearray()
        self._jpeg: bytes | None = None

    def open(self) -> None:
        self.close()
        u = self._url
        cls = http.client.HTTPSConnection if u.scheme == "https" else http.client.HTTPConnection
        conn = cls(u.hostname or "127.0.0.1", u.port, timeout=self._timeout)
        path = u.path or "/"
        if u.query:
            path += "?" + u.query
        headers = {}
        if u.username:
            import base64

            cred = f"{urllib.parse.unquote(u.username)}:{urllib.parse.unquote(u.password or '')}"
            headers["Authorization"] = "Basic " + base64.b64encode(cred.encode()).decode()
        try:
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise SourceError(f"cannot open {u.geturl()}: {exc}") from None
        if resp.status != 200:
            conn.close()
            raise SourceError(f"{u.geturl()} answered HTTP {resp.status}")
        content_type = (resp.getheader("Content-Type") or "").split(";")[0].strip().lower()
        if content_type and not content_type.startswith(_MJPEG_TYPES):
            conn.close()
            raise SourceError(
                f"{u.geturl()} is not an MJPEG stream (Content-Type {content_type}); "
                'for other video over HTTP set source_kind = "ffmpeg"'
            )
        self._conn, self._resp = conn, resp
        self._buf.clear()

    def grab(self) -> bool:
        if self._resp is None:
            raise SourceError("stream not open")
        deadline = time.monotonic() + self._timeout
        while True:
            start = self._buf.find(_SOI)
            if start >= 0:
                end = self._buf.find(_EOI, start + 2)
                if end >= 0:
                    self._jpeg = bytes(self._buf[start : end + 2])
                    del self._buf[: end + 2]
                    return True
                if start > 0:
                    del self._buf[:start]
            elif len(self._buf) > 2:
                del self._buf[:-1]
            if time.monotonic() >= deadline:
                return False
            try:
                chunk = self._resp.read1(65536)
            except TimeoutError:
                return False
            except (OSError, http.client.HTTPException) as exc:
                raise SourceError(f"stream broke: {exc}") from None
            if not chunk:
                raise SourceError("stream ended")
            self._buf += chunk
            if len(self._buf) > _MAX_BUFFER:
                self._buf.clear()
                raise SourceError("no JPEG frame boundary found in 8 MB of stream")

    def retrieve(self) -> Frame:
        if self._jpeg is None:
            raise SourceError("no frame grabbed")
        frame = cv2.imdecode(np.frombuffer(self._jpeg, np.uint8), cv2.IMREAD_COLOR)
        if frame is None:
            raise SourceError("corrupt JPEG frame")
        return frame

    @property
    def last_jpeg(self) -> bytes | None:
        return self._jpeg

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = self._resp = None


class OpenCvSource:
    """``cv2.VideoCapture``: RTSP and other FFmpeg URLs, video files (paced to their frame rate), devices."""

    def __init__(self, target: str | int, read_timeout_s: float, *, pace: bool = False, loop: bool = False) -> None:
        self._target = target
        self._timeout_ms = int(read_timeout_s * 1000)
        self._pace, self._loop = pace, loop
        self._cap: cv2.VideoCapture | None = None
        self._interval = 0.0
        self._next = 0.0

    def open(self) -> None:
        self.close()
        silence_opencv()
        if isinstance(self._target, int):
            cap = cv2.VideoCapture(self._target)
        elif "://" in self._target:
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                self._timeout_ms * 2,
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                self._timeout_ms,
            ]
            cap = cv2.VideoCapture(self._target, cv2.CAP_FFMPEG, params)
        else:
            cap = cv2.VideoCapture(self._target)
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open {self._target!r}")
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        self._interval = 1.0 / fps if self._pace and 0 < fps < 240 else 0.0
        self._next = time.monotonic()
        self._cap = cap

    def grab(self) -> bool:
        if self._cap is None:
            raise SourceError("stream not open")
        if self._interval:
            delay = self._next - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._next = max(self._next + self._interval, time.monotonic() - self._interval)
        if self._cap.grab():
            return True
        is_file = isinstance(self._target, str) and "://" not in self._target
        if is_file and self._loop:
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            if self._cap.grab():
                return True
        if is_file and not self._loop:
            raise SourceEnded(f"video file {self._target!r} ended")
        raise SourceError(f"{self._target!r}: no more frames")

    def retrieve(self) -> Frame:
        if self._cap is None:
            raise SourceError("stream not open")
        ok, frame = self._cap.retrieve()
        if not ok or frame is None:
            raise SourceError("frame could not be decoded")
        return np.asarray(frame, dtype=np.uint8)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


def open_source(config: CameraConfig) -> FrameSource:
    """The source a camera config asks for (not yet opened)."""
    timeout = config.health.read_timeout_s
    kind = config.resolved_kind
    if kind == "mjpeg":
        return MjpegSource(config.source, timeout)
    if kind == "device":
        return OpenCvSource(int(config.source.removeprefix("device:")), timeout)
    if kind == "file":
        return OpenCvSource(config.source, timeout, pace=True, loop=config.loop_file)
    return OpenCvSource(config.source, timeout)
