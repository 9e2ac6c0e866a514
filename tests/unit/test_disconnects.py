"""Forced disconnects' schedule: fixed times merged with seeded random ones."""

from __future__ import annotations

import pytest

from exchange.gateway.stress import DisconnectPlan, seeded
from exchange.shell.disconnects import disconnect_times


class TestDisconnectTimes:
    """When a plan drops its client: fixed times merged with seeded random ones."""

    def test_fixed_times_come_sorted(self) -> None:
        """Only ``at_s``: exactly those times, in order."""
        plan = DisconnectPlan(at_s=[30, 5, 10.5])
        assert list(disconnect_times(plan, seeded(1, "t"))) == [5, 10.5, 30]

    def test_random_times_are_seeded_with_the_mean_gap(self) -> None:
        """Exponential gaps: the same seed, the same times; their mean is the mean."""
        plan = DisconnectPlan(mean_interval_s=2.0)
        first = disconnect_times(plan, seeded(1, "t"))
        second = disconnect_times(plan, seeded(1, "t"))
        times = [next(first) for _ in range(20_000)]
        assert times == [next(second) for _ in range(20_000)]
        assert times == sorted(times)
        assert times[-1] / len(times) == pytest.approx(2.0, rel=0.03)

    def test_fixed_and_random_times_merge_in_order(self) -> None:
        """Both kinds at once: every fixed time appears, all in order."""
        plan = DisconnectPlan(at_s=[1, 2, 3], mean_interval_s=0.5)
        times = disconnect_times(plan, seeded(1, "t"))
        head = [next(times) for _ in range(40)]
        assert head == sorted(head)
        assert {1, 2, 3} <= set(head)
