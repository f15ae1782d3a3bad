"""WGS-84 ↔ GCJ-02, distances, and the county GeoJSON validated on load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cloud.geo.boundary import DEMO_BOUNDARY, BoundaryError, load_boundary
from cloud.geo.coords import distance_m, gcj02_to_wgs84, wgs84_to_gcj02


@pytest.mark.parametrize("point", [(120.62, 31.318), (116.3913, 39.9072), (113.26, 23.13), (87.6, 43.8)])
def test_gcj02_round_trip_and_offset_size(point: tuple[float, float]) -> None:
    gcj = wgs84_to_gcj02(*point)
    offset = distance_m(*point, *gcj)
    assert 50 < offset < 1000  # GCJ-02 shifts positions in China by some hundreds of metres
    back = gcj02_to_wgs84(*gcj)
    assert distance_m(*point, *back) < 0.01


def test_no_shift_outside_china() -> None:
    assert wgs84_to_gcj02(2.35, 48.85) == (2.35, 48.85)
    assert gcj02_to_wgs84(-74.0, 40.7) == (-74.0, 40.7)


def test_distance_of_one_degree_of_latitude() -> None:
    assert distance_m(120.0, 31.0, 120.0, 32.0) == pytest.approx(111_195, rel=1e-3)


def test_demo_boundary_loads_with_townships() -> None:
    b = load_boundary(DEMO_BOUNDARY)
    assert "虚构" in b.county.name and len(b.townships) == 2
    assert b.contains(120.629, 31.318) and not b.contains(120.70, 31.318) and not b.contains(0, 0)
    assert b.township_of(120.615, 31.305) is not None


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "county.geojson"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["features"].pop(0), "exactly one feature with level 'county'"),
        (lambda d: d["features"][0]["geometry"]["coordinates"][0].pop(), "not closed"),
        (lambda d: d["features"][0]["geometry"].update(type="LineString"), "only Polygon and MultiPolygon"),
        (lambda d: d["features"][1]["properties"].pop("name"), "needs a name"),
        (lambda d: d["features"][0]["geometry"]["coordinates"][0].__setitem__(1, [200.0, 31.0]), "WGS-84"),
        (
            lambda d: d["features"][1]["geometry"].update(
                coordinates=[[[121.0, 31.0], [121.1, 31.0], [121.1, 31.1], [121.0, 31.0]]]
            ),
            "outside the county",
        ),
    ],
)
def test_bad_boundary_files_name_the_feature_and_reason(tmp_path: Path, mutate: object, message: str) -> None:
    data = json.loads(DEMO_BOUNDARY.read_text(encoding="utf-8"))
    mutate(data)  # type: ignore[operator]
    with pytest.raises(BoundaryError, match=message):
        load_boundary(_write(tmp_path, data))


def test_not_geojson(tmp_path: Path) -> None:
    with pytest.raises(BoundaryError, match="FeatureCollection"):
        load_boundary(_write(tmp_path, {"type": "Feature"}))
