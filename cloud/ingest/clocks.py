"""Edge clocks are not trusted blindly: what the ingest checks and what it does about a wrong clock.

* **Ahead**: a telemetry batch or alert event stamped later than the cloud's receive time plus
  ``SENTINEL_CLOCK_SKEW_MAX_S`` cannot be right (nothing is measured in the future). It is dead-lettered
  ``clock_ahead`` (raw bytes kept, rejected in the ack), so a batch stamped 3 days ahead never becomes a sensor's
  latest value nor a mis-timed GSP record.
* **Far behind**: data stamped earlier than ``SENTINEL_CLOCK_BEHIND_MAX_S`` (default 366 days) before the receive
  time is older than any backlog an edge outbox can hold (the default quota fills in weeks): a box whose RTC died
  and restarted at 1970 or 2000. Dead-lettered ``clock_behind`` the same way, so it never becomes a record dated
  1970. Anything within that window is a legitimate backlog (a box offline for weeks) and is stored.
* **Offset**: every heartbeat gives two estimates of the agent's clock minus the cloud's — the cloud's own
  (``heartbeat.ts`` minus receive time; a delay in transit only makes it look *behind*) and the agent's
  (``clock_offset_s``, from recent ack timestamps). Beyond the threshold in both (or in the cloud's when the agent
  has none yet) the agent is *skewed*: recorded in its presence row (``clock_skew_s``), counted
  (``clock_skewed``), a cloud alert ``clock_skew`` on the agent (→ clue, notification, fleet view), and the
  readings it sends while skewed are stored with quality ``uncertain`` (GSP records show them as such). A
  heartbeat back within the threshold clears the alert.
"""

from __future__ import annotations

from datetime import datetime

from cloud.alerts import AlertSignal, AlertSource
from protocols import AlertPhase, Heartbeat

CLOCK_AHEAD = "clock_ahead"
CLOCK_BEHIND = "clock_behind"
CLOCK_SKEW = "clock_skew"


def ahead_s(stamp: datetime, now: datetime) -> float:
    """How far ``stamp`` lies after the cloud's ``now``, in seconds (negative: before)."""
    return (stamp - now).total_seconds()


def heartbeat_offset(msg: Heartbeat, now: datetime, max_s: float) -> tuple[float, bool]:
    """(the agent's clock offset, skewed?) from one heartbeat received at ``now``."""
    observed = ahead_s(msg.ts, now)
    reported = msg.clock_offset_s
    if reported is None:
        return observed, abs(observed) > max_s
    skewed = abs(observed) > max_s and abs(reported) > max_s
    return (reported if skewed else observed), skewed


def skew_signal(site_id: str, agent_id: str, offset_s: float, now: datetime, *, skewed: bool) -> AlertSignal:
    direction = "快" if offset_s > 0 else "慢"
    message = (
        f"边缘代理 {agent_id} 的时钟比云端{direction} {abs(offset_s):.0f} 秒：其读数的时间不可信"
        "（已标记为“存疑”，超前的读数进入死信）；请检查该设备的 NTP 同步或实时时钟电池"
        if skewed
        else f"边缘代理 {agent_id} 的时钟已恢复正常（偏差 {offset_s:.0f} 秒）"
    )
    return AlertSignal(
        site_id=site_id,
        device_id=agent_id,
        rule_id=CLOCK_SKEW,
        phase=AlertPhase.RAISE if skewed else AlertPhase.CLEAR,
        severity="major",
        category="fleet",
        message=message,
        ts=now,
        started_at=now,
        agent_id=agent_id,
        value=round(offset_s, 1),
        unit="s",
        source=AlertSource.CLOUD,
    )
