"""``cloud/rules/geo.toml``: the check-in geofence radius and the console map (colours, optional tile layer)."""

from __future__ import annotations

from functools import cache

from pydantic import Field, model_validator

from cloud.geo.coords import CoordSystem
from cloud.rules.loader import RuleModel, load_model, rules_path

__all__ = ["GeoRules", "MapConfig", "geo_rules"]

_COLOUR = r"^#[0-9a-fA-F]{6}$"


class Geofence(RuleModel):
    radius_m: float = Field(gt=0, le=50_000)


class Colours(RuleModel):
    normal: str = Field(pattern=_COLOUR)
    alert: str = Field(pattern=_COLOUR)
    offline: str = Field(pattern=_COLOUR)


class MapConfig(RuleModel):
    tile_url: str = Field(
        default="",
        max_length=500,
        pattern=r"^(|https?://.*)$",
        description="XYZ Web-Mercator tile template with {x} {y} {z}, optional {s} (subdomain) and {key}",
    )
    tile_crs: CoordSystem = Field(
        default="wgs84",
        description="datum of the tiles: wgs84 (天地图 = CGCS2000, OSM) or gcj02 (高德, 腾讯); markers and the "
        "boundary are drawn in the same datum so that they sit on the tiles",
    )
    tile_subdomains: str = Field(default="", max_length=20, pattern=r"^[0-9a-z]*$")
    tile_zoom: tuple[int, int] = Field(default=(3, 18), description="lowest and highest zoom level served")
    attribution: str = Field(default="", max_length=200)
    colours: Colours
    domain_symbols: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _tiles(self) -> MapConfig:
        missing = [p for p in ("{x}", "{y}", "{z}") if self.tile_url and p not in self.tile_url]
        if missing:
            raise ValueError(f"tile_url needs {', '.join(missing)} (an XYZ Web-Mercator tile template)")
        low, high = self.tile_zoom
        if not 0 <= low <= high <= 22:
            raise ValueError("tile_zoom must be [low, high] with 0 <= low <= high <= 22")
        return self


class GeoRules(RuleModel):
    version: str
    geofence: Geofence
    map: MapConfig


@cache
def geo_rules() -> GeoRules:
    return load_model(GeoRules, rules_path("geo.toml"))
