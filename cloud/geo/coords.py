"""Coordinates: WGS-84 (what we store, what GPS gives) and GCJ-02 (what Chinese map apps display and export).

GCJ-02 is WGS-84 shifted by a published, deterministic offset (a few hundred metres) inside China and equal to
WGS-84 outside it. :func:`wgs84_to_gcj02` applies it; :func:`gcj02_to_wgs84` inverts it by fixed-point iteration
(residual below 1e-9 degrees, about 0.1 mm). :func:`distance_m` is the haversine great-circle distance.
"""

from __future__ import annotations

import math
from typing import Any, Literal

__all__ = [
    "CoordSystem",
    "distance_m",
    "gcj02_to_wgs84",
    "geojson_to_gcj02",
    "out_of_china",
    "to_wgs84",
    "wgs84_to_gcj02",
]

CoordSystem = Literal["wgs84", "gcj02"]
_A = 6378245.0  # Krasovsky 1940 semi-major axis used by GCJ-02
_EE = 0.00669342162296594323  # its first eccentricity squared
EARTH_RADIUS_M = 6371008.8  # mean radius (IUGG)


def out_of_china(lon: float, lat: float) -> bool:
    """Outside the rough bounding box where GCJ-02 applies (there GCJ-02 = WGS-84)."""
    return not (72.004 <= lon <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _dlat(x: float, y: float) -> float:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (160.0 * math.sin(y / 12.0 * math.pi) + 320.0 * math.sin(y * math.pi / 30.0)) * 2.0 / 3.0
    return ret


def _dlon(x: float, y: float) -> float:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    ret += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2.0 / 3.0
    ret += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2.0 / 3.0
    ret += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2.0 / 3.0
    return ret


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """(lon, lat) WGS-84 → GCJ-02."""
    if out_of_china(lon, lat):
        return lon, lat
    dlat = _dlat(lon - 105.0, lat - 35.0)
    dlon = _dlon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * math.pi
    magic = 1 - _EE * math.sin(radlat) ** 2
    sqrtmagic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1 - _EE)) / (magic * sqrtmagic) * math.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * math.cos(radlat) * math.pi)
    return lon + dlon, lat + dlat


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """(lon, lat) GCJ-02 → WGS-84, the exact inverse of :func:`wgs84_to_gcj02` to ~1e-9 degrees."""
    if out_of_china(lon, lat):
        return lon, lat
    wlon, wlat = lon, lat
    for _ in range(30):
        glon, glat = wgs84_to_gcj02(wlon, wlat)
        dlon, dlat = glon - lon, glat - lat
        wlon, wlat = wlon - dlon, wlat - dlat
        if abs(dlon) < 1e-10 and abs(dlat) < 1e-10:
            break
    return wlon, wlat


def to_wgs84(lon: float, lat: float, system: CoordSystem) -> tuple[float, float]:
    return gcj02_to_wgs84(lon, lat) if system == "gcj02" else (lon, lat)


def geojson_to_gcj02(geojson: Any) -> Any:
    """A copy of a GeoJSON object with every position shifted WGS-84 → GCJ-02 (for GCJ-02 tiles)."""
    if isinstance(geojson, dict):
        return {k: _shift_positions(v) if k == "coordinates" else geojson_to_gcj02(v) for k, v in geojson.items()}
    if isinstance(geojson, list):
        return [geojson_to_gcj02(v) for v in geojson]
    return geojson


def _shift_positions(value: Any) -> Any:
    if isinstance(value, list) and len(value) >= 2 and all(isinstance(v, int | float) for v in value[:2]):
        return [*wgs84_to_gcj02(float(value[0]), float(value[1])), *value[2:]]
    return [_shift_positions(v) for v in value] if isinstance(value, list) else value


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle (haversine) distance in metres between two WGS-84 points."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, h)))
