"""The county boundary and its townships from the bureau's GeoJSON, validated once on load.

The file is a GeoJSON ``FeatureCollection`` (RFC 7946, WGS-84 longitude/latitude) with exactly one feature whose
``properties.level`` is ``"county"`` and any number of ``"township"`` features; every feature has
``properties.name`` (and optionally ``code``, the division code) and a ``Polygon`` or ``MultiPolygon`` geometry
whose rings are closed, have at least four positions and valid longitudes/latitudes; a township lies inside
the county (the centroid of its ring). Any problem raises :class:`BoundaryError` naming the file, the feature
and the reason.

``SENTINEL_COUNTY_BOUNDARY_FILE`` names the bureau's file; without it no boundary is enforced (coordinates are
still range-checked and 0,0 refused). The fictional sample for the demo county is
``cloud/geo/data/demo_county.geojson``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "DEMO_BOUNDARY",
    "Area",
    "BoundaryError",
    "CountyBoundary",
    "configured_boundary",
    "load_boundary",
]

DEMO_BOUNDARY = Path(__file__).resolve().parent / "data" / "demo_county.geojson"
ENV = "SENTINEL_COUNTY_BOUNDARY_FILE"

Ring = list[tuple[float, float]]
Polygon = list[Ring]  # outer ring, then holes


class BoundaryError(ValueError):
    def __init__(self, file: Path | str, where: str, reason: str) -> None:
        self.file, self.where, self.reason = str(file), where, reason
        super().__init__(f"{file}: {where}: {reason}" if where else f"{file}: {reason}")


def _inside_ring(lon: float, lat: float, ring: Ring) -> bool:
    inside = False
    j = len(ring) - 1
    for i in range(len(ring)):
        xi, yi = ring[i]
        xj, yj = ring[j]
        if (yi > lat) != (yj > lat) and lon < (xj - xi) * (lat - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


@dataclass(frozen=True)
class Area:
    name: str
    code: str | None
    level: str
    polygons: tuple[Polygon, ...]
    feature: dict[str, Any]

    def contains(self, lon: float, lat: float) -> bool:
        for polygon in self.polygons:
            if _inside_ring(lon, lat, polygon[0]) and not any(_inside_ring(lon, lat, h) for h in polygon[1:]):
                return True
        return False

    def bbox(self) -> tuple[float, float, float, float]:
        xs = [x for p in self.polygons for x, _ in p[0]]
        ys = [y for p in self.polygons for _, y in p[0]]
        return min(xs), min(ys), max(xs), max(ys)


@dataclass(frozen=True)
class CountyBoundary:
    county: Area
    townships: tuple[Area, ...]
    source: str
    geojson: dict[str, Any]

    def contains(self, lon: float, lat: float) -> bool:
        return self.county.contains(lon, lat)

    def township_of(self, lon: float, lat: float) -> Area | None:
        return next((t for t in self.townships if t.contains(lon, lat)), None)


def _ring(path: Path, where: str, raw: Any) -> Ring:
    if not isinstance(raw, list) or len(raw) < 4:
        raise BoundaryError(path, where, "a ring needs at least 4 positions (first = last)")
    ring: Ring = []
    for k, pos in enumerate(raw):
        if not (isinstance(pos, list) and len(pos) >= 2 and all(isinstance(v, int | float) for v in pos[:2])):
            raise BoundaryError(path, f"{where}[{k}]", "a position is [longitude, latitude]")
        lon, lat = float(pos[0]), float(pos[1])
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise BoundaryError(path, f"{where}[{k}]", f"[{lon}, {lat}] is not a WGS-84 longitude/latitude")
        ring.append((lon, lat))
    if ring[0] != ring[-1]:
        raise BoundaryError(path, where, "the ring is not closed (first position ≠ last)")
    return ring


def _area(path: Path, index: int, feature: Any) -> Area:
    where = f"features[{index}]"
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise BoundaryError(path, where, "not a GeoJSON Feature")
    props = feature.get("properties") or {}
    name, level = props.get("name"), props.get("level")
    if not isinstance(name, str) or not name.strip():
        raise BoundaryError(path, f"{where}.properties.name", "every area needs a name")
    if level not in ("county", "township"):
        raise BoundaryError(path, f"{where}.properties.level", "level must be 'county' or 'township'")
    geometry = feature.get("geometry") or {}
    kind, coords = geometry.get("type"), geometry.get("coordinates")
    raw_polygons: list[Any] = []
    if kind == "Polygon":
        raw_polygons = [coords]
    elif kind == "MultiPolygon":
        raw_polygons = coords if isinstance(coords, list) else []
    else:
        raise BoundaryError(path, f"{where}.geometry", f"{kind!r}: only Polygon and MultiPolygon")
    if not raw_polygons or not all(isinstance(p, list) and p for p in raw_polygons):
        raise BoundaryError(path, f"{where}.geometry.coordinates", "no polygon rings")
    polygons = tuple(
        [_ring(path, f"{where}.geometry.coordinates[{i}][{j}]", r) for j, r in enumerate(p)]
        for i, p in enumerate(raw_polygons)
    )
    code = props.get("code")
    return Area(name.strip(), str(code) if code is not None else None, str(level), polygons, feature)


def load_boundary(path: Path) -> CountyBoundary:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BoundaryError(path, "", f"cannot read file ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BoundaryError(path, "", f"not JSON: {exc}") from None
    if (
        not isinstance(data, dict)
        or data.get("type") != "FeatureCollection"
        or not isinstance(data.get("features"), list)
    ):
        raise BoundaryError(path, "", "expected a GeoJSON FeatureCollection")
    areas = [_area(path, i, f) for i, f in enumerate(data["features"])]
    counties = [a for a in areas if a.level == "county"]
    if len(counties) != 1:
        raise BoundaryError(
            path, "features", f"exactly one feature with level 'county' expected, found {len(counties)}"
        )
    county = counties[0]
    townships = tuple(a for a in areas if a.level == "township")
    for i, area in enumerate(areas):
        if area.level != "township":
            continue
        for polygon in area.polygons:  # shared edges make vertex tests ambiguous: the ring's centroid must be inside
            ring = polygon[0][:-1]
            centre = (sum(x for x, _ in ring) / len(ring), sum(y for _, y in ring) / len(ring))
            if not county.contains(*centre):
                raise BoundaryError(
                    path, f"features[{i}]", f"township {area.name} lies outside the county {county.name}"
                )
    return CountyBoundary(county, townships, str(path), data)


@cache
def _load_cached(path: str, mtime: float) -> CountyBoundary:
    return load_boundary(Path(path))


def configured_boundary() -> CountyBoundary | None:
    """The bureau's boundary (``SENTINEL_COUNTY_BOUNDARY_FILE``), reloaded when the file changes; None if unset."""
    name = os.environ.get(ENV)
    if not name:
        return None
    path = Path(name)
    try:
        mtime = path.stat().st_mtime
    except OSError as exc:
        raise BoundaryError(path, "", f"cannot read file ({exc.strerror or exc})") from None
    return _load_cached(str(path.resolve()), mtime)
