"""Poll scheduling (issue 15): the first poll produced two readings 23 ms apart (its next poll was due at once)."""

from __future__ import annotations

from edge.bus import SlaveHealth


def test_first_and_late_polls_are_followed_one_interval_later() -> None:
    health = SlaveHealth(interval_s=10, backoff_max_s=60)
    health.succeeded(1000.0)  # the first poll
    assert health.next_due == 1010.0, "not again at once"
    health.succeeded(1010.2)  # on time: the cadence is kept
    assert health.next_due == 1020.0
    health.succeeded(1034.0)  # late (a slow bus): one interval from now, no burst to catch up
    assert health.next_due == 1044.0
    health.failed(1044.0, "no answer")
    health.succeeded(1054.0)  # recovered
    assert health.next_due == 1064.0
