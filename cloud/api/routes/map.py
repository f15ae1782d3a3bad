"""The county map (一张图, standard §5.1): boundary, townships and site markers with their live state.

* ``GET /map/county`` the county GeoJSON (``SENTINEL_COUNTY_BOUNDARY_FILE``; null when unset), its bbox, and the
  map configuration of ``cloud/rules/geo.toml`` (state colours, domain symbols, optional tile layer). The GeoJSON
  is given in ``display_crs``: WGS-84, or GCJ-02 when the configured tiles are GCJ-02 (高德/腾讯), so that the
  boundary sits on the tiles; markers then use their ``gcj02`` position.
* ``GET /map/sites`` one marker per located site in the caller's jurisdiction: WGS-84 and GCJ-02 positions,
  domain, live state ``normal`` / ``alert`` / ``offline`` with its colour, risk grade, open alerts and clues
  (filters ``domain``, ``risk_grade``, ``open_clues=true``); ``unlocated`` lists the sites without coordinates.
  State: ``offline`` when the site has agents and none is online; else ``alert`` with an open alert; else
  ``normal`` (a site without agents is ``normal`` with ``reporting: false``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlmodel import col, select

from cloud.alerts import Alert, AlertStatus
from cloud.api.deps import SessionDep, SettingsDep, StaffUser
from cloud.api.routes.console import DOMAINS, domain_of
from cloud.core.config import Settings
from cloud.geo.boundary import configured_boundary
from cloud.geo.config import MapConfig, geo_rules
from cloud.geo.coords import geojson_to_gcj02, wgs84_to_gcj02
from cloud.presence import AgentPresence
from cloud.registry.models import MarketSubject, Site
from cloud.security.scoping import ScopeDep, county_wide, visible_sites
from cloud.workflow.clues import Clue, ClueStatus

router = APIRouter(prefix="/map", tags=["map 一张图"])
STATE_LABELS = {"normal": "正常", "alert": "告警", "offline": "离线"}


@router.get(
    "/county",
    summary="辖区边界与乡镇（GeoJSON）及地图配置",
    dependencies=[county_wide("the county boundary belongs to no department")],
)
def get_county(_: StaffUser, settings: SettingsDep) -> dict[str, Any]:
    rules = geo_rules()
    boundary = configured_boundary()
    tiles, tile_notice = _tile_layer(rules.map, settings)
    display_crs = tiles["crs"] if tiles else "wgs84"
    geojson = boundary.geojson if boundary else None
    if geojson is not None and display_crs == "gcj02":
        geojson = geojson_to_gcj02(geojson)
    return {
        "name": boundary.county.name if boundary else None,
        "geojson": geojson,
        "display_crs": display_crs,
        "bbox": list(boundary.county.bbox()) if boundary else None,
        "townships": [t.name for t in boundary.townships] if boundary else [],
        "tiles": tiles,
        "tile_notice": tile_notice,
        "attribution": rules.map.attribution,
        "colours": rules.map.colours.model_dump(),
        "state_labels": STATE_LABELS,
        "domain_symbols": rules.map.domain_symbols,
        "domains": DOMAINS,
    }


def _tile_layer(config: MapConfig, settings: Settings) -> tuple[dict[str, Any] | None, str | None]:
    """The optional tile layer for the page, its ``{key}`` filled from ``SENTINEL_MAP_TILE_KEY``; without a key
    the layer is left out and the notice says why (the offline map is drawn either way)."""
    if not config.tile_url:
        return None, None
    url = config.tile_url
    if "{key}" in url:
        if settings.map_tile_key is None:
            return None, "底图未显示：geo.toml 的 tile_url 需要密钥，请设置环境变量 SENTINEL_MAP_TILE_KEY。"
        url = url.replace("{key}", settings.map_tile_key.get_secret_value())
    low, high = config.tile_zoom
    tiles = {"url": url, "crs": config.tile_crs, "subdomains": config.tile_subdomains, "min_zoom": low}
    tiles["max_zoom"] = high
    return tiles, None


@router.get("/sites", summary="地图场所标注：实时状态（正常/告警/离线）、领域、风险等级、在办线索")
def get_sites(
    session: SessionDep,
    _: StaffUser,
    scope: ScopeDep,
    domain: str | None = None,
    risk_grade: str | None = None,
    open_clues: bool = False,
) -> dict[str, Any]:
    visible = visible_sites(session, scope)
    sites = [
        s for s in session.exec(select(Site).order_by(col(Site.site_id))) if visible is None or s.site_id in visible
    ]
    subjects = {s.id: s for s in session.exec(select(MarketSubject))}
    online: dict[str, bool] = {}
    for agent in session.exec(select(AgentPresence)):
        online[agent.site_id] = online.get(agent.site_id, False) or agent.state == "online"
    alerts: dict[str, int] = {}
    for alert in session.exec(select(Alert).where(Alert.status == AlertStatus.OPEN)):
        alerts[alert.site_id] = alerts.get(alert.site_id, 0) + 1
    clues: dict[str, list[dict[str, Any]]] = {}
    for clue in session.exec(select(Clue).where(Clue.status == ClueStatus.OPEN).order_by(col(Clue.id).desc())):
        if clue.site_id:
            clues.setdefault(clue.site_id, []).append({"id": clue.id, "title": clue.title, "severity": clue.severity})
    rules = geo_rules().map
    boundary = configured_boundary()
    markers: list[dict[str, Any]] = []
    unlocated: list[str] = []
    for site in sites:
        subject = subjects.get(site.subject_id) if site.subject_id is not None else None
        site_domain = domain_of(None, site.category) or "other"
        grade = subject.risk_grade.value if subject else None
        site_clues = clues.get(site.site_id, [])
        if (
            (domain and site_domain != domain)
            or (risk_grade and grade != risk_grade)
            or (open_clues and not site_clues)
        ):
            continue
        if site.longitude is None or site.latitude is None:
            unlocated.append(site.site_id)
            continue
        reporting = site.site_id in online
        if reporting and not online[site.site_id]:
            state = "offline"
        elif alerts.get(site.site_id):
            state = "alert"
        else:
            state = "normal"
        gcj = wgs84_to_gcj02(site.longitude, site.latitude)
        township = boundary.township_of(site.longitude, site.latitude) if boundary else None
        markers.append(
            {
                "site_id": site.site_id,
                "name": site.name,
                "address": site.address,
                "longitude": site.longitude,
                "latitude": site.latitude,
                "gcj02": [round(gcj[0], 7), round(gcj[1], 7)],
                "domain": site_domain,
                "domain_label": DOMAINS.get(site_domain, "其他"),
                "state": state,
                "state_label": STATE_LABELS[state],
                "colour": getattr(rules.colours, state),
                "reporting": reporting,
                "subject_id": site.subject_id,
                "subject_name": subject.name if subject else None,
                "risk_grade": grade,
                "township": township.name if township else None,
                "open_alerts": alerts.get(site.site_id, 0),
                "open_clues": len(site_clues),
                "clues": site_clues[:20],
            }
        )
    return {"markers": markers, "unlocated": unlocated}
