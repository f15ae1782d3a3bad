"""The installer's part for test worlds: register the sites (devices, sensors) a test is about to publish from.

Since #13 the ingest holds data of a site, device or sensor the registry does not know (``site_unregistered`` /
``device_unannounced``) instead of storing it, so a test that publishes readings or alerts registers its world
first, as an installation does (``cloud.registry.service.register_installation``, idempotent). Give the sensors
as a flat list (grouped into devices by the agent's ``<device>.<point>`` naming) and/or the devices explicitly
(alert events name their device), or an agent's site config (:func:`devices_of_site_config`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from cloud.core.db import writer
from cloud.registry.service import devices_of, register_installation


def register(
    engine: Engine,
    site_id: str,
    *,
    sensors: Iterable[str] = (),
    devices: Mapping[str, Iterable[str]] | None = None,
    category: str | None = "drug",
    name: str | None = None,
    department_id: int | None = None,
) -> None:
    """Register ``site_id`` with ``devices`` (device → sensors) and the flat ``sensors`` (idempotent)."""
    merged: dict[str, list[str]] = {d: list(s) for d, s in (devices or {}).items()}
    for device, ids in devices_of(sensors).items():
        merged.setdefault(device, []).extend(ids)
    with Session(writer(engine)) as session:
        register_installation(
            session,
            site_id=site_id,
            devices=merged,
            name=name or f"测试场所 {site_id}",
            category=category,
            department_id=department_id,
        )
        session.commit()


def register_many(engine: Engine, sites: Mapping[str, Iterable[str]], **kwargs: Any) -> None:
    """``site id → sensor ids`` for each site (same options as :func:`register`)."""
    for site_id, sensors in sites.items():
        register(engine, site_id, sensors=sensors, **kwargs)


def devices_of_site_config(path: Path) -> tuple[str, dict[str, list[str]]]:
    """(site id, device → sensors) of an edge site config, named as its agent announces them (cameras: no
    sensors)."""
    from edge.config.loader import load_site, points_of

    site = load_site(path)
    devices = {d.id: [f"{d.id}.{p}" for p in points_of(d, site.register_maps)] for d in site.config.devices}
    for camera in getattr(site.config, "cameras", []) or []:
        devices.setdefault(camera.camera_id, [])
    return site.config.agent.site_id, devices


def register_site_config(engine: Engine, path: Path, **kwargs: Any) -> str:
    """Register the site of an edge site config with its devices and sensors; returns its site id."""
    site_id, devices = devices_of_site_config(path)
    register(engine, site_id, devices=devices, **kwargs)
    return site_id
