"""When a fleet worker may call the stream ended (stream.fleet_worker.IdleClock): no Kafka needed."""

from __future__ import annotations

from stream.fleet_worker import IdleClock


def _clock(seen: bool = True) -> IdleClock:
    c = IdleClock(idle_s=8.0, await_s=30.0)
    c.activity(0.0, data=seen)
    return c


def test_the_stream_ends_idle_seconds_after_the_last_data():
    c = _clock()
    assert not c.ended(7.9)
    assert c.ended(8.0)


def test_nothing_ends_before_any_data_was_seen():
    c = _clock(seen=False)
    assert not c.ended(100.0)


def test_a_worker_waiting_for_its_next_assignment_does_not_end_the_stream():
    c = _clock()
    c.revoked(5.0)
    assert not c.ended(20.0)  # well past idle_s, but its partitions are in flight
    c.assigned(25.0)
    assert not c.ended(32.9)
    assert c.ended(33.0)  # idle_s after the assignment arrived


def test_a_rebalance_that_never_completes_stops_blocking_after_await_s():
    c = _clock()
    c.revoked(5.0)
    assert not c.ended(34.9)
    assert not c.ended(35.0)  # the wait is over: idle time counts from here
    assert c.ended(43.0)


def test_a_second_revocation_does_not_extend_the_wait():
    c = _clock()
    c.revoked(5.0)
    c.revoked(30.0)
    assert not c.ended(34.0)
    assert c.ended(43.0)


def test_without_idle_exit_the_stream_never_ends():
    c = IdleClock(idle_s=None, await_s=30.0)
    c.activity(0.0, data=True)
    assert not c.ended(1e9)
