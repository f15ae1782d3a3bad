"""Edge clocks are checked (issue 15), writer-level on real SQLite.

A batch stamped 3 days in the future is refused (dead letter ``clock_ahead``) and does not become the sensor's
latest value; a 10-minute clock skew in the heartbeat is flagged on the agent (presence, counter, cloud alert) and
the readings it sends meanwhile are stored as ``uncertain``; a heartbeat with a good clock clears the flag.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from cloud.alerts import Alert, AlertStatus
from cloud.ingest.clocks import CLOCK_AHEAD, CLOCK_BEHIND, CLOCK_SKEW
from cloud.ingest.writer import IngestWriter, RawMessage
from cloud.presence import AgentPresence
from cloud.telemetry.store import TelemetryStore
from protocols import Channel, Heartbeat, Reading, TelemetryBatch, encode, topic_for
from tests.utils.registration import register

SITE, AGENT = "pharmacy-01", "edge-1"


def batch(seq: int, ts: datetime, value: float) -> RawMessage:
    msg = TelemetryBatch(
        site_id=SITE,
        agent_id=AGENT,
        seq=seq,
        sent_at=ts,
        readings=[Reading(sensor_id="fridge1.temperature", ts=ts, value=value, unit="°C")],
    )
    return RawMessage(topic_for(SITE, AGENT, Channel.TELEMETRY), encode(msg))


def heartbeat(ts: datetime, offset: float | None) -> RawMessage:
    msg = Heartbeat(site_id=SITE, agent_id=AGENT, ts=ts, uptime_s=5, outbox_depth=0, clock_offset_s=offset)
    return RawMessage(topic_for(SITE, AGENT, Channel.HEARTBEAT), encode(msg))


@pytest.fixture(autouse=True)
def installed(cloud_engine: Engine) -> None:
    register(cloud_engine, SITE, sensors=["fridge1.temperature"])  # as installed (unregistered: quarantined, #13)


def skew_alert(engine: Engine) -> Alert | None:
    with Session(engine) as session:
        return session.exec(select(Alert).where(Alert.rule_id == CLOCK_SKEW)).first()


def test_a_batch_three_days_ahead_is_refused_and_never_the_latest(
    cloud_engine: Engine, cloud_store: TelemetryStore
) -> None:
    writer = IngestWriter(cloud_engine, cloud_store, clock_skew_max_s=120)
    now = datetime.now(UTC)
    writer.commit([batch(1, now - timedelta(seconds=5), 4.2)])
    result = writer.commit([batch(2, now + timedelta(days=3), 25.0)])  # what mosquitto_pub once slipped in
    ack = result.acks[(SITE, AGENT, "")]
    assert ack.committed == [] and ack.rejected == [(2, CLOCK_AHEAD)]
    latest = cloud_store.latest(site_id=SITE)
    assert [(r.sensor_id, r.value) for r in latest] == [("fridge1.temperature", 4.2)], "the real value stays latest"
    with cloud_engine.connect() as conn:
        reason, detail = conn.execute(text("SELECT reason, detail FROM dead_letter")).one()
    assert reason == CLOCK_AHEAD and "ahead" in detail
    assert writer.stats.snapshot()["clock_skewed"] == 1
    alert = skew_alert(cloud_engine)
    assert alert is not None and alert.status == AlertStatus.OPEN and "快" in alert.message


def test_a_batch_stamped_1970_is_refused_and_a_month_old_backlog_is_stored(
    cloud_engine: Engine, cloud_store: TelemetryStore
) -> None:
    """Stranger walk: a batch stamped 1970-01-01 (a box whose RTC died) was stored at ts 0 with quality good."""
    writer = IngestWriter(cloud_engine, cloud_store, clock_skew_max_s=120)
    now = datetime.now(UTC)
    backlog = writer.commit([batch(1, now - timedelta(days=30), 4.2)])  # a box offline for a month: legitimate
    assert backlog.acks[(SITE, AGENT, "")].committed == [1]
    dead_rtc = writer.commit([batch(2, datetime(1970, 1, 1, tzinfo=UTC), 5.0)])
    assert dead_rtc.acks[(SITE, AGENT, "")].rejected == [(2, CLOCK_BEHIND)]
    assert [r.value for r in cloud_store.latest(site_id=SITE)] == [4.2]
    with cloud_engine.connect() as conn:
        reason, detail = conn.execute(text("SELECT reason, detail FROM dead_letter")).one()
    assert reason == CLOCK_BEHIND and "1970-01-01" in detail
    assert writer.stats.snapshot()["clock_skewed"] == 1
    alert = skew_alert(cloud_engine)
    assert alert is not None and alert.status == AlertStatus.OPEN and "慢" in alert.message


def test_a_ten_minute_skew_is_flagged_marked_and_cleared(cloud_engine: Engine, cloud_store: TelemetryStore) -> None:
    writer = IngestWriter(cloud_engine, cloud_store, clock_skew_max_s=120)
    now = datetime.now(UTC)
    slow = now - timedelta(minutes=10)  # the box's clock runs 10 minutes behind
    writer.commit([heartbeat(slow, -600.0)])
    with Session(cloud_engine) as session:
        presence = session.get(AgentPresence, (SITE, AGENT))
        assert presence is not None and presence.clock_skew_s is not None
        assert abs(presence.clock_skew_s + 600) < 5 and presence.clock_offset_s == -600.0
    alert = skew_alert(cloud_engine)
    assert alert is not None and alert.status == AlertStatus.OPEN and alert.device_id == AGENT
    assert "慢 600 秒" in alert.message and writer.stats.clock_skewed == 1

    writer.commit([batch(1, slow, 4.4)])  # its readings are mis-timed by 10 minutes: marked
    with cloud_engine.connect() as conn:
        assert conn.execute(text("SELECT quality FROM reading")).scalar_one() in ("uncertain", 1)

    writer.commit([heartbeat(datetime.now(UTC), 0.2)])  # NTP fixed it
    alert = skew_alert(cloud_engine)
    assert alert is not None and alert.status == AlertStatus.CLEARED
    with Session(cloud_engine) as session:
        presence = session.get(AgentPresence, (SITE, AGENT))
        assert presence is not None and presence.clock_skew_s is None
    writer.commit([batch(2, datetime.now(UTC), 4.5)])
    with cloud_engine.connect() as conn:
        qualities = [r[0] for r in conn.execute(text("SELECT quality FROM reading ORDER BY ts_ms"))]
    assert qualities[-1] in ("good", 0)


def test_a_heartbeat_late_in_transit_is_not_a_skew(cloud_engine: Engine, cloud_store: TelemetryStore) -> None:
    """The cloud's estimate says "behind" when the heartbeat waited in a queue; the agent's own (from acks) is
    what tells a delay from a wrong clock."""
    writer = IngestWriter(cloud_engine, cloud_store, clock_skew_max_s=120)
    writer.commit([heartbeat(datetime.now(UTC) - timedelta(minutes=10), 0.05)])
    assert skew_alert(cloud_engine) is None and writer.stats.clock_skewed == 0
