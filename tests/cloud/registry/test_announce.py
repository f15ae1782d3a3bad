"""Announce handling: known devices update; unknown devices and sensors wait for approval."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from cloud.registry import service
from cloud.registry.announce import handle_announce
from cloud.registry.models import ApprovalState, Device, PendingDevice, Sensor, Site
from protocols.messages import Announce, AnnouncedDevice

TS = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def _announce(*devices: AnnouncedDevice, version: str = "1.0") -> Announce:
    return Announce(site_id="pharmacy-1", agent_id="agent-1", ts=TS, agent_version=version, devices=list(devices))


def _setup(engine: Engine) -> None:
    with Session(engine) as session:
        session.add(Site(site_id="pharmacy-1", name="示例大药房"))
        session.flush()
        session.add(Device(site_id="pharmacy-1", device_id="probe-1", device_type="probe"))
        session.flush()
        session.add(Sensor(site_id="pharmacy-1", sensor_id="t1", device_id="probe-1"))
        session.commit()


def test_unknown_device_is_pending_until_approved(engine: Engine) -> None:
    _setup(engine)
    fridge = AnnouncedDevice(device_id="fridge-2", device_type="probe", model="TH-20", sensors=["t2", "h2"])
    with Session(engine) as session:
        result = handle_announce(session, _announce(fridge))
        session.commit()
    assert result.pending == ["fridge-2"]
    with Session(engine) as session:
        assert session.get(Device, ("pharmacy-1", "fridge-2")) is None  # not silently accepted
        assert not service.is_sensor_registered(session, site_id="pharmacy-1", sensor_id="t2")
        (pending,) = service.list_pending(session)
        assert (pending.device_id, pending.sensors, pending.state) == ("fridge-2", ["h2", "t2"], ApprovalState.PENDING)
        pending_id = pending.id
    with Session(engine) as session:  # announced again: still one pending row
        handle_announce(session, _announce(fridge))
        session.commit()
        assert len(session.exec(select(PendingDevice)).all()) == 1
    with Session(engine) as session:
        assert pending_id is not None
        service.approve_pending(session, pending_id=pending_id, by="supervisor1", note="现场核实")
        session.commit()
    with Session(engine) as session:
        device = session.get(Device, ("pharmacy-1", "fridge-2"))
        assert device is not None and device.model == "TH-20"
        assert service.is_sensor_registered(session, site_id="pharmacy-1", sensor_id="t2")
        assert service.list_pending(session) == []
        with pytest.raises(service.Conflict):
            service.approve_pending(session, pending_id=pending_id, by="x")


def test_known_device_updates_and_new_sensor_is_held(engine: Engine) -> None:
    _setup(engine)
    probe = AnnouncedDevice(device_id="probe-1", device_type="probe", model="TH-30", sensors=["t1", "h1"])
    with Session(engine) as session:
        result = handle_announce(session, _announce(probe, version="2.1"))
        session.commit()
    assert result.updated == ["probe-1"] and result.pending == ["probe-1"]
    with Session(engine) as session:
        device = session.get(Device, ("pharmacy-1", "probe-1"))
        assert device is not None and (device.model, device.agent_version, device.agent_id) == (
            "TH-30",
            "2.1",
            "agent-1",
        )
        (pending,) = service.list_pending(session)
        assert pending.device_known and pending.sensors == ["h1"]


def test_rejected_stays_rejected_unless_something_new_is_announced(engine: Engine) -> None:
    _setup(engine)
    rogue = AnnouncedDevice(device_id="rogue", device_type="camera", sensors=["x1"])
    with Session(engine) as session:
        handle_announce(session, _announce(rogue))
        session.commit()
        (pending,) = service.list_pending(session)
        assert pending.id is not None
        service.reject_pending(session, pending_id=pending.id, by="supervisor1", note="非本场所设备")
        session.commit()
    with Session(engine) as session:
        result = handle_announce(session, _announce(rogue))
        session.commit()
        assert result.rejected == ["rogue"] and service.list_pending(session) == []
    with Session(engine) as session:
        handle_announce(
            session, _announce(AnnouncedDevice(device_id="rogue", device_type="camera", sensors=["x1", "x2"]))
        )
        session.commit()
        (again,) = service.list_pending(session)
        assert again.sensors == ["x1", "x2"] and again.decided_by is None
        assert session.get(Device, ("pharmacy-1", "rogue")) is None


def test_approval_needs_a_registered_site(engine: Engine) -> None:
    msg = Announce(
        site_id="unknown-site", agent_id="a", ts=TS, devices=[AnnouncedDevice(device_id="d", device_type="probe")]
    )
    with Session(engine) as session:
        handle_announce(session, msg)
        session.commit()
        (pending,) = service.list_pending(session)
        assert pending.id is not None
        with pytest.raises(service.Conflict, match="尚未登记"):
            service.approve_pending(session, pending_id=pending.id, by="s")
