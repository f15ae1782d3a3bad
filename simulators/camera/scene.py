"""Procedural kitchen-like scenes: a tiled wall, a steel counter with pots, a tiled floor.

Everything is drawn with OpenCV primitives from a seed, so scenes are reproducible and need no
image files. The person figure has realistic proportions (head ≈ 1/7.5 of the height, shoulders,
tapered torso, jointed arms and legs that swing with the walking phase): OpenCV's HOG people
detector fires on it, which the tests check.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

Image = NDArray[Any]


def render_kitchen(width: int, height: int, seed: int = 0) -> Image:
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width, 3), np.uint8)
    wall_bottom = int(height * 0.42)
    counter_top, counter_bottom = wall_bottom, int(height * 0.58)
    # wall: white tiles with grey grout
    img[:wall_bottom] = (214, 220, 222)
    tile = max(8, width // 24)
    for x in range(0, width, tile):
        cv2.line(img, (x, 0), (x, wall_bottom), (170, 176, 178), 1)
    for y in range(0, wall_bottom, tile):
        cv2.line(img, (0, y), (width, y), (170, 176, 178), 1)
    # extractor hood and shelves with jars
    hood = (int(width * 0.35), int(height * 0.04), int(width * 0.68), int(height * 0.16))
    cv2.rectangle(img, hood[:2], hood[2:], (150, 150, 155), -1)
    cv2.rectangle(img, hood[:2], hood[2:], (90, 90, 95), 2)
    for shelf_y in (int(height * 0.2), int(height * 0.31)):
        cv2.rectangle(img, (int(width * 0.04), shelf_y), (int(width * 0.3), shelf_y + 4), (60, 90, 130), -1)
        x = int(width * 0.05)
        while x < width * 0.28:
            jw = int(rng.integers(max(4, width // 64), max(6, width // 28)))
            jh = int(rng.integers(max(6, height // 30), max(8, height // 14)))
            colour = tuple(int(c) for c in rng.integers(40, 200, 3))
            cv2.rectangle(img, (x, shelf_y - jh), (x + jw, shelf_y), colour, -1)
            x += jw + int(rng.integers(2, max(3, width // 80)))
    # window with a frame on the right
    cv2.rectangle(
        img, (int(width * 0.76), int(height * 0.06)), (int(width * 0.95), int(height * 0.3)), (235, 225, 200), -1
    )
    cv2.rectangle(img, (int(width * 0.76), int(height * 0.06)), (int(width * 0.95), int(height * 0.3)), (80, 80, 80), 2)
    cv2.line(img, (int(width * 0.855), int(height * 0.06)), (int(width * 0.855), int(height * 0.3)), (80, 80, 80), 2)
    # steel counter with pots and a cutting board
    img[counter_top:counter_bottom] = (175, 178, 182)
    cv2.line(img, (0, counter_top), (width, counter_top), (110, 112, 115), 2)
    cv2.line(img, (0, counter_bottom), (width, counter_bottom), (90, 92, 95), 2)
    for i in range(5):
        cx = int(width * (0.1 + 0.2 * i + rng.uniform(-0.03, 0.03)))
        r = int(height * rng.uniform(0.035, 0.06))
        cv2.ellipse(img, (cx, counter_top), (r, r // 2), 0, 180, 360, (70, 72, 78), -1)
        cv2.rectangle(img, (cx - r, counter_top - r), (cx + r, counter_top), (95, 97, 104), -1)
    cv2.rectangle(img, (int(width * 0.42), counter_top + 6), (int(width * 0.56), counter_top + 16), (120, 170, 205), -1)
    for x in range(0, width, max(12, width // 10)):  # cupboard doors and handles
        cv2.line(img, (x, counter_top + 18), (x, counter_bottom), (120, 122, 126), 1)
        cv2.line(img, (x + 6, counter_top + 26), (x + 6, counter_top + 34), (60, 60, 60), 2)
    # floor: darker tiles
    img[counter_bottom:] = (118, 124, 130)
    ft = max(10, width // 14)
    for x in range(-width, 2 * width, ft):
        cv2.line(img, (x, height), (width // 2 + (x - width // 2) // 3, counter_bottom), (92, 98, 104), 1)
    y, step = counter_bottom, max(4, height // 40)
    while y < height:
        cv2.line(img, (0, y), (width, y), (92, 98, 104), 1)
        y += step
        step = int(step * 1.35) + 1
    # a little fixed texture everywhere so that no region is perfectly flat
    texture = rng.normal(0, 3, (height, width, 1)).astype(np.float32)
    out: Image = np.clip(img.astype(np.float32) + texture, 0, 255).astype(np.uint8)
    return out


def draw_person(
    img: Image, x: int, feet_y: int, height: int, phase: float = 0.0, colour: tuple[int, int, int] = (48, 40, 44)
) -> tuple[int, int, int, int]:
    """Draw a walking person with feet at (x, feet_y); returns the bounding box (x1, y1, x2, y2)."""
    h = height
    head_r = max(2, int(h * 0.065))
    head_y = feet_y - h + head_r
    cv2.circle(img, (x, head_y), head_r, (60, 80, 110), -1, cv2.LINE_AA)  # skin/hair tone
    neck = head_y + head_r
    shoulder = int(h * 0.13)
    torso_top = neck + int(h * 0.02)
    hip_y = feet_y - int(h * 0.47)
    hip = int(h * 0.09)
    torso = np.array(
        [[x - shoulder, torso_top], [x + shoulder, torso_top], [x + hip, hip_y], [x - hip, hip_y]], np.int32
    )
    cv2.fillConvexPoly(img, torso, colour, cv2.LINE_AA)
    cv2.line(img, (x, neck), (x, torso_top + 2), colour, max(2, int(h * 0.04)))
    swing = math.sin(phase)
    arm, leg = max(2, int(h * 0.045)), max(3, int(h * 0.06))
    for side in (-1, 1):
        sx = x + side * shoulder
        ex = sx + side * int(h * 0.03) + int(swing * side * h * 0.05)
        ey = torso_top + int(h * 0.2)
        hx, hy = ex + int(swing * side * h * 0.04), ey + int(h * 0.18)
        cv2.line(img, (sx, torso_top + arm // 2), (ex, ey), colour, arm, cv2.LINE_AA)
        cv2.line(img, (ex, ey), (hx, hy), colour, arm, cv2.LINE_AA)
        lx = x + side * int(h * 0.05)
        kx, ky = lx + int(swing * side * h * 0.06), hip_y + int(h * 0.24)
        fx = lx + int(swing * side * h * 0.1)
        cv2.line(img, (lx, hip_y), (kx, ky), (40, 36, 30), leg, cv2.LINE_AA)
        cv2.line(img, (kx, ky), (fx, feet_y), (40, 36, 30), leg, cv2.LINE_AA)
    return (x - shoulder - int(h * 0.12), feet_y - h, x + shoulder + int(h * 0.12), feet_y)


def draw_rodent(
    img: Image, x: int, y: int, size: int, heading: float, brightness: int = 150
) -> tuple[int, int, int, int]:
    """A small elongated blob with a tail (in IR night view fur reflects, so it is brighter than the floor)."""
    length, width = size, max(2, size // 2)
    colour = (brightness, brightness, brightness)
    cv2.ellipse(img, (x, y), (length // 2, width // 2), math.degrees(heading), 0, 360, colour, -1, cv2.LINE_AA)
    tx = int(x - math.cos(heading) * length)
    ty = int(y - math.sin(heading) * length)
    cv2.line(img, (x, y), (tx, ty), colour, 1, cv2.LINE_AA)
    return (x - length, y - length, x + length, y + length)
