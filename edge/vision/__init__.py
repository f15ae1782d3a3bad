"""Camera analysis on the edge.

OpenCV and its FFmpeg backend print warnings straight to stderr (``cap_v4l.cpp … can't open camera by
index``, ``[tcp @ …] Connection refused``) on every reopen attempt; the camera worker reports a failing
source itself, once, through logging. Their log levels are read when OpenCV loads, so they are set here,
before any module of this package imports ``cv2`` (an operator can still override both variables).
"""

import os

os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
