"""Seed a county from its configuration file (``firmware-config/demo/county.toml``) through the cloud's own API.

Departments, staff (accounts, duties, 执法证号, notification contacts), market subjects with licences, the sites
with their devices and sensors, recusals and the duty roster: everything a supervisor needs to walk the console's
flows. Going through the API means every record is validated (USCC check characters, password policy) and journaled
exactly as if an administrator had typed it. The ``[bureau]`` section is read by the cloud itself
(``SENTINEL_COUNTY_FILE``).

This module imports none of edge/cloud/simulators (it is part of the demo orchestrator).
"""

from __future__ import annotations

import tomllib
import urllib.error
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol


class SeedError(RuntimeError):
    """A seed record was refused by the cloud: names the record and the cloud's reason."""


class JsonApi(Protocol):  # sentinel_cli.demo.Api
    def call(self, method: str, path: str, body: Any = None) -> Any: ...

    def as_user(self, username: str, password: str) -> JsonApi: ...


@dataclass
class Seeded:
    departments: dict[str, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)
    subjects: dict[str, int] = field(default_factory=dict)
    sites: list[str] = field(default_factory=list)


def load(path: Path) -> dict[str, Any]:
    with open(path, "rb") as f:
        return tomllib.load(f)


def call(api: JsonApi, method: str, path: str, body: Any, what: str) -> Any:
    try:
        return api.call(method, f"/api/v1{path}", body)
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:500]
        raise SeedError(f"{what}: HTTP {exc.code} {detail}") from exc


def seed(api: JsonApi, county: dict[str, Any], staff_password: str) -> Seeded:
    """Create the county's records; the caller is logged in as the system administrator."""
    out = Seeded()
    for dep in county.get("departments", []):
        body = {k: dep[k] for k in ("code", "name", "division_code") if k in dep}
        if "parent" in dep:
            body["parent_id"] = out.departments[dep["parent"]]
        out.departments[dep["code"]] = call(api, "POST", "/registry/departments", body, f"部门 {dep['name']}")["id"]
    for person in county.get("staff", []):
        name = person["full_name"]
        user = call(
            api,
            "POST",
            "/users",
            {
                "username": person["username"],
                "password": staff_password,
                "full_name": name,
                "role": person["role"],
                "department": person["department"],
            },
            f"用户 {name}",
        )
        uid = int(user["id"])
        out.users[person["username"]] = uid
        call(
            api,
            "PUT",
            f"/staff/{uid}",
            {
                "duties": person["duties"],
                "department_id": out.departments[person["department"]],
                "cert_no": person.get("cert_no"),
            },
            f"人员职责 {name}",
        )
        rank = "head" if {"department_head", "bureau_head"} & set(person["duties"]) else person["role"]
        call(
            api,
            "POST",
            "/notifications/contacts",
            {
                "key": person["username"],
                "full_name": name,
                "department": person["department"],
                "rank": rank if rank in ("inspector", "supervisor", "head") else "supervisor",
                "mqtt": False,
            },
            f"通知联系人 {name}",
        )
    for subject in county.get("subjects", []):
        body = {
            k: subject[k]
            for k in ("name", "uscc", "legal_representative", "address", "business_scope", "risk_grade")
            if k in subject
        }
        body["department_id"] = out.departments[subject["department"]]
        sid = int(call(api, "POST", "/registry/subjects", body, f"市场主体 {subject['name']}")["id"])
        out.subjects[subject["key"]] = sid
        for licence in subject.get("licences", []):
            call(api, "POST", "/registry/licences", {**licence, "subject_id": sid}, f"许可证 {licence['licence_no']}")
    for site in county.get("sites", []):
        body = {k: site[k] for k in ("site_id", "name", "address", "category", "longitude", "latitude") if k in site}
        body["subject_id"] = out.subjects[site["subject"]]
        body["department_id"] = out.departments[site["department"]]
        call(api, "POST", "/registry/sites", body, f"场所 {site['name']}")
        for device in site.get("devices", []):
            call(
                api,
                "POST",
                "/registry/devices",
                {
                    "site_id": site["site_id"],
                    "device_id": device["device_id"],
                    "device_type": device.get("device_type", "modbus_probe"),
                    "name": device["name"],
                },
                f"设备 {device['name']}",
            )
            for quantity in device.get("quantities", []):
                call(
                    api,
                    "POST",
                    "/registry/sensors",
                    {
                        "site_id": site["site_id"],
                        "sensor_id": f"{device['device_id']}.{quantity}",
                        "device_id": device["device_id"],
                        "quantity": quantity,
                        "unit": {"temperature": "°C", "humidity": "%RH"}.get(quantity),
                    },
                    f"传感器 {device['name']} {quantity}",
                )
        for key in site.get("contacts", []):
            call(
                api,
                "POST",
                "/notifications/site-contacts",
                {"site_id": site["site_id"], "contact_key": key, "designation": "gsp_designated"},
                f"场所联系人 {key}",
            )
        out.sites.append(site["site_id"])
    # recusals are recorded by a head (the system administrator holds no workflow duty)
    heads = [p["username"] for p in county.get("staff", []) if {"department_head", "bureau_head"} & set(p["duties"])]
    head_api = api.as_user(heads[0], staff_password) if heads and county.get("recusals") else api
    for recusal in county.get("recusals", []):
        call(
            head_api,
            "POST",
            "/recusals",
            {
                "user_id": out.users[recusal["username"]],
                "subject_id": out.subjects[recusal["subject"]],
                "reason": recusal["reason"],
            },
            f"回避 {recusal['username']}",
        )
    now = datetime.now(UTC)
    shifts = [
        {
            "department": shift["department"],
            "contact_key": shift["username"],
            "starts_at": (now - timedelta(hours=1)).isoformat(),
            "ends_at": (now + timedelta(days=7)).isoformat(),
        }
        for shift in county.get("roster", [])
    ]
    if shifts:
        call(api, "POST", "/notifications/roster", shifts, "值班表")
    return out
