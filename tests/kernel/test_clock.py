from datetime import UTC, datetime, timedelta

import pytest

from baton.kernel.clock import SimulatedClock, SystemClock, default_clock, use_clock


def test_simulated_clock_moves_only_when_told():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    clock = SimulatedClock(start)
    assert clock.now() == start
    clock.sleep(90)  # never blocks: advances instead
    assert clock.now() == start + timedelta(seconds=90)
    clock.advance(timedelta(hours=2))
    assert clock.now() == start + timedelta(hours=2, seconds=90)


def test_simulated_clock_refuses_to_go_backwards_or_be_naive():
    clock = SimulatedClock(datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="backwards"):
        clock.set(datetime(2025, 1, 1, tzinfo=UTC))
    with pytest.raises(ValueError, match="timezone"):
        SimulatedClock(datetime(2026, 1, 1))


def test_system_clock_is_aware_utc():
    assert SystemClock().now().tzinfo is not None


def test_default_clock_can_be_swapped():
    sim = SimulatedClock(datetime(2030, 5, 5, tzinfo=UTC))
    previous = use_clock(sim)
    try:
        assert default_clock().now().year == 2030
    finally:
        use_clock(previous)
    assert default_clock() is previous
