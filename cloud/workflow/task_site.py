"""Where an inspection task happens, as the inspector's phone shows it: the site's name, address and party, a way
there (``geo:`` URI in WGS-84, RFC 5870, and an AMap marker URL in GCJ-02, what Chinese map apps display), the
site's latest readings relevant to the task's clue (its sensor and device first) with Chinese sensor names, and
where the inspector checked in (the check-in's coordinates and its geofence verdict).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from sqlmodel import Session

from cloud.geo.coords import wgs84_to_gcj02
from cloud.registry.models import MarketSubject, Sensor, Site
from cloud.telemetry.store import ReadingRow, TelemetryStore
from cloud.workflow.clues import Clue, place_label
from cloud.workflow.models import InspectionTask

__all__ = ["GEOFENCE_LABELS", "check_in_view", "map_links", "relevant_readings", "site_brief"]

MAX_READINGS = 6
GEOFENCE_LABELS = {"inside": "在场所范围内", "outside": "不在场所范围内", "unknown": "无法判断（缺少定位）"}
QUALITY_LABELS = {"good": "正常", "uncertain": "存疑", "bad": "无效"}


def map_links(lon: float, lat: float, name: str) -> dict[str, Any]:
    """A ``geo:`` URI (WGS-84) and an AMap marker URL (GCJ-02) for a WGS-84 point."""
    glon, glat = wgs84_to_gcj02(lon, lat)
    label = quote(name, safe="")
    return {
        "wgs84": {"lon": round(lon, 6), "lat": round(lat, 6)},
        "gcj02": {"lon": round(glon, 6), "lat": round(glat, 6)},
        "geo_uri": f"geo:{lat:.6f},{lon:.6f}?q={lat:.6f},{lon:.6f}({label})",
        "amap_url": (
            f"https://uri.amap.com/marker?position={glon:.6f},{glat:.6f}&name={label}&coordinate=gaode&callnative=1"
        ),
    }


def relevant_readings(
    session: Session, store: TelemetryStore | None, site_id: str, clue: Clue | None
) -> list[dict[str, Any]]:
    """The site's latest readings, the clue's sensor first, then the same device, then the rest (at most 6)."""
    if store is None:
        return []
    rows: list[ReadingRow] = store.latest(site_id=site_id)
    sensor = clue.sensor_id if clue is not None else None
    device = clue.device_id if clue is not None else None
    devices: dict[str, str] = {}

    def device_of(r: ReadingRow) -> str | None:
        if r.sensor_id not in devices:
            row = session.get(Sensor, (site_id, r.sensor_id))
            devices[r.sensor_id] = row.device_id if row is not None else r.sensor_id.split(".", 1)[0]
        return devices[r.sensor_id]

    def rank(r: ReadingRow) -> tuple[int, str]:
        if sensor and r.sensor_id == sensor:
            return 0, r.sensor_id
        if device and device_of(r) == device:
            return 1, r.sensor_id
        return 2, r.sensor_id

    site = session.get(Site, site_id)
    prefix = f"{site.name}·" if site is not None else ""

    def name(r: ReadingRow) -> str:  # the card is the site's: 药品冷藏柜温度, not 某药店·药品冷藏柜温度
        text = place_label(session, site_id, device_of(r), r.sensor_id)
        return text[len(prefix) :] if prefix and text.startswith(prefix) else text

    out = []
    for r in sorted(rows, key=rank)[:MAX_READINGS]:
        out.append(
            {
                "sensor_id": r.sensor_id,
                "name": name(r),
                "value": r.value,
                "unit": r.unit,
                "ts": r.ts.isoformat(),
                "quality": r.quality,
                "quality_label": QUALITY_LABELS.get(r.quality, r.quality),
                "relevant": rank(r)[0] < 2,
            }
        )
    return out


def check_in_view(task: InspectionTask) -> dict[str, Any] | None:
    """Where the inspector checked in: coordinates, distance to the site and the geofence verdict in Chinese."""
    c = task.check_in or {}
    if not c and task.checked_in_at is None:
        return None
    lat, lon = c.get("lat"), c.get("lon")
    located = isinstance(lat, int | float) and isinstance(lon, int | float)
    verdict = str(c.get("geofence") or "unknown")
    text = f"定位 {lat:.5f}, {lon:.5f}" if located else "未取得定位"
    if c.get("distance_m") is not None:
        text += f"，距场所 {c['distance_m']} 米"
    return {
        "lat": lat if located else None,
        "lon": lon if located else None,
        "note": c.get("note"),
        "distance_m": c.get("distance_m"),
        "geofence": verdict,
        "geofence_label": GEOFENCE_LABELS.get(verdict, verdict),
        "text": f"{text}（{GEOFENCE_LABELS.get(verdict, verdict)}）",
        "at": task.checked_in_at.isoformat() if task.checked_in_at else None,
    }


def site_brief(session: Session, store: TelemetryStore | None, task: InspectionTask) -> dict[str, Any] | None:
    """The task's site for the inspector (None for a task without a site)."""
    site = session.get(Site, task.site_id) if task.site_id else None
    subject = session.get(MarketSubject, task.subject_id) if task.subject_id else None
    if site is None and subject is None:
        return None
    clue = session.get(Clue, task.clue_id) if task.clue_id else None
    name = site.name if site is not None else (subject.name if subject is not None else "")
    address = (site.address if site is not None else None) or (subject.address if subject is not None else None)
    brief: dict[str, Any] = {
        "site_id": site.site_id if site is not None else None,
        "name": name,
        "address": address,
        "party": subject.name if subject is not None else None,
        "map": None,
        "readings": relevant_readings(session, store, site.site_id, clue) if site is not None else [],
    }
    if site is not None and site.longitude is not None and site.latitude is not None:
        brief["map"] = map_links(site.longitude, site.latitude, name)
    return brief
