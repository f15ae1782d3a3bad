"""``cloud/rules/geo.toml``: the check-in geofence radius and the console map (colours, optional tile layer)."""

from __future__ import annotations

from functools import cache

from pydantic import Field

from cloud.rules.loader import RuleModel, load_model, rules_path

__all__ = ["GeoRules", "geo_rules"]

_COLOUR = r"^#[0-9a-fA-F]{6}$"


class Geofence(RuleModel):
    radius_m: float = Field(gt=0, le=50_000)


class Colours(RuleModel):
    normal: str = Field(pattern=_COLOUR)
    alert: str = Field(pattern=_COLOUR)
    offline: str = Field(pattern=_COLOUR)


class MapConfig(RuleModel):
    tile_url: str = Field(default="", max_length=500, pattern=r"^(|https?://.*\{z\}.*)$")
    attribution: str = Field(default="", max_length=200)
    colours: Colours
    domain_symbols: dict[str, str] = Field(default_factory=dict)


class GeoRules(RuleModel):
    version: str
    geofence: Geofence
    map: MapConfig


@cache
def geo_rules() -> GeoRules:
    return load_model(GeoRules, rules_path("geo.toml"))
