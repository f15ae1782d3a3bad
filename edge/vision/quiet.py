"""Keep OpenCV's own console warnings out of the agent log (see ``edge/vision/__init__.py``)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import cv2

_done = False


def silence_opencv() -> None:
    """OpenCV's log level to silent (also when ``cv2`` was imported before this package set the env)."""
    global _done
    if not _done:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        _done = True


@contextlib.contextmanager
def quiet_opencv() -> Iterator[None]:
    silence_opencv()
    yield
