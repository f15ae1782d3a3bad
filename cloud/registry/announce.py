"""Handling of ``Announce`` messages: agents tell the cloud which devices and sensors they have.

Known devices are updated (model, type, agent, last announcement). Unknown devices, and unknown sensors of
known devices, are held in ``pending_device`` until a user approves or rejects them; they are never
silently accepted. A rejected announcement stays rejected when it is repeated unchanged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlmodel import Session, select

from cloud.registry.models import ApprovalState, Device, PendingDevice, Sensor
from protocols.messages import Announce, AnnouncedDevice

log = logging.getLogger(__name__)


@dataclass
class AnnounceResult:
    updated: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


def handle_announce(session: Session, msg: Announce) -> AnnounceResult:
    """Apply one announcement inside the caller's transaction (the caller commits)."""
    result = AnnounceResult()
    for announced in msg.devices:
        device = session.get(Device, (msg.site_id, announced.device_id))
        if device is not None:
            device.device_type = announced.device_type
            device.model = announced.model or device.model
            device.agent_id = msg.agent_id
            device.agent_version = msg.agent_version or device.agent_version
            device.last_announced_at = msg.ts
            session.add(device)
            result.updated.append(announced.device_id)
        unknown = (
            [s for s in announced.sensors if session.get(Sensor, (msg.site_id, s)) is None]
            if device is not None
            else list(announced.sensors)
        )
        if device is not None and not unknown:
            continue
        state = _hold(session, msg, announced, unknown, device_known=device is not None)
        (result.rejected if state is ApprovalState.REJECTED else result.pending).append(announced.device_id)
    session.flush()
    if result.pending:
        log.info("announce from %s/%s: %d device(s) held for approval", msg.site_id, msg.agent_id, len(result.pending))
    return result


def _hold(
    session: Session,
    msg: Announce,
    announced: AnnouncedDevice,
    unknown_sensors: list[str],
    *,
    device_known: bool,
) -> ApprovalState:
    row = session.exec(
        select(PendingDevice).where(
            PendingDevice.site_id == msg.site_id, PendingDevice.device_id == announced.device_id
        )
    ).first()
    if row is None:
        row = PendingDevice(
            site_id=msg.site_id,
            agent_id=msg.agent_id,
            device_id=announced.device_id,
            device_type=announced.device_type,
            model=announced.model,
            device_known=device_known,
            sensors=sorted(unknown_sensors),
            first_seen=msg.ts,
            last_seen=msg.ts,
        )
        session.add(row)
        return row.state
    row.last_seen = msg.ts
    row.agent_id = msg.agent_id
    row.model = announced.model or row.model
    row.device_known = device_known
    if row.state is ApprovalState.PENDING:
        row.sensors = sorted(set(row.sensors) | set(unknown_sensors))
    elif row.state is ApprovalState.REJECTED and set(unknown_sensors) <= set(row.sensors):
        pass  # same thing again: stays rejected
    else:  # approved earlier (now something new is unknown) or rejected but different: ask again
        row.state = ApprovalState.PENDING
        row.sensors = sorted(unknown_sensors)
        row.decided_by = row.decided_at = row.note = None
    session.add(row)
    return row.state
