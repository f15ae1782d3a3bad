"""Check-in geofence: compare an inspector's on-site check-in with the site's stored position.

:func:`assess` returns what is stored with the check-in: ``geofence`` is ``inside``, ``outside`` (farther than
``geo.toml [geofence] radius_m``), ``no_location`` (the check-in has no position) or ``site_unlocated`` (the
site has no coordinates yet), with ``distance_m`` and ``radius_m`` when both positions are known. The check-in's
``lat``/``lon`` are WGS-84 (a phone's GPS, the browser's geolocation); ``coord_system = "gcj02"`` converts.
"""

from __future__ import annotations

from typing import Any

from cloud.geo.config import geo_rules
from cloud.geo.coords import distance_m, to_wgs84

__all__ = ["assess"]


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number else None  # NaN


def assess(check_in: dict[str, Any], site_lon: float | None, site_lat: float | None) -> dict[str, Any]:
    radius = geo_rules().geofence.radius_m
    lat = _number(check_in.get("lat", check_in.get("latitude")))
    lon = _number(check_in.get("lon", check_in.get("lng", check_in.get("longitude"))))
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180) or (lat == 0 and lon == 0):
        return {"geofence": "no_location", "radius_m": radius}
    if check_in.get("coord_system") == "gcj02":
        lon, lat = to_wgs84(lon, lat, "gcj02")
    if site_lon is None or site_lat is None:
        return {"geofence": "site_unlocated", "radius_m": radius}
    distance = distance_m(lon, lat, site_lon, site_lat)
    return {
        "geofence": "outside" if distance > radius else "inside",
        "distance_m": round(distance, 1),
        "radius_m": radius,
    }
