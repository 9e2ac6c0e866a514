"""Per-account request rate limits: refused over the rate, told when to retry."""

from __future__ import annotations

import pytest
from gateway_rig import Rig, rejects

from exchange.gateway.answers import Rejected
from exchange.gateway.limits import RateLimits
from exchange.messages import Deposit, SetIndexPrice

ORDER = {"symbol": "BTC-PERP", "side": "buy", "type": "limit", "qty": "0.1"}


class TestRateLimits:
    """The token bucket, in whole milliseconds and thousandths of a request."""

    def test_a_burst_is_admitted_then_the_next_waits_for_one_refill(self) -> None:
        """Burst 3 at 10/s: three pass at once, the fourth waits 100 ms."""
        limits = RateLimits(10, burst=3)
        assert [limits.admit("a", 0) for _ in range(3)] == [0, 0, 0]
        assert limits.admit("a", 0) == 100
        assert limits.admit("a", 60) == 40  # 0.6 of a request refilled
        assert limits.admit("a", 100) == 0

    def test_the_bucket_refills_up_to_the_burst_only(self) -> None:
        """A long idle time gives back the burst, no more."""
        limits = RateLimits(100, burst=2)
        limits.admit("a", 0)
        assert [limits.admit("a", 60_000) for _ in range(3)] == [0, 0, 10]

    def test_accounts_have_buckets_of_their_own(self) -> None:
        """One account's burst does not use another's."""
        limits = RateLimits(1)
        assert limits.admit("a", 0) == 0
        assert limits.admit("a", 0) == 1000
        assert limits.admit("b", 0) == 0

    def test_a_clock_going_back_refills_nothing(self) -> None:
        """An earlier time than the last one seen neither refills nor breaks."""
        limits = RateLimits(1)
        assert limits.admit("a", 5_000) == 0
        assert limits.admit("a", 4_000) == 1000

    @pytest.mark.parametrize(("rate", "burst"), [(0, 0), (-1, 5), (5, -1)])
    def test_impossible_limits_are_refused(self, rate: int, burst: int) -> None:
        """A rate below 1 or a negative burst is a configuration error."""
        with pytest.raises(ValueError, match="per_second"):
            RateLimits(rate, burst)


class TestSessionRateLimit:
    """The session answers RATE_LIMITED with a retry-after, before the core."""

    @pytest.fixture
    def rig(self) -> Rig:
        """Alice may send 2 requests a second, in bursts of 2."""
        rig = Rig()
        rig.session.limits = RateLimits(2, burst=2)
        rig.apply(Deposit(account="alice", amount=100_000 * 10**8))
        rig.apply(SetIndexPrice(symbol="BTC-PERP", price=65_000 * 10**8))
        return rig

    def test_over_the_rate_is_refused_with_a_retry_after_and_changes_nothing(
        self, rig: Rig
    ) -> None:
        """The third request in the same instant is refused, its state untouched."""
        rig.call("alice", "new", **ORDER, price="64000")
        rig.call("alice", "new", **ORDER, price="63000")
        before, seq = rig.core.state_hash(), rig.core.last_seq
        third = rig.call("alice", "new", **ORDER, price="62000")
        (answer,) = [m.message for m in third]
        assert isinstance(answer, Rejected)
        assert (answer.name, answer.retry_after_ms) == ("RATE_LIMITED", 500)
        assert (rig.core.state_hash(), rig.core.last_seq) == (before, seq)

    def test_after_the_wait_the_account_may_send_again(self, rig: Rig) -> None:
        """Waiting the retry-after lets the next request through."""
        for price in ("64000", "63000"):
            rig.call("alice", "new", **ORDER, price=price)
        rig.now_ns += 500 * 1_000_000
        assert rejects(rig.call("alice", "new", **ORDER, price="62000")) == []

    def test_every_command_of_a_batch_counts(self, rig: Rig) -> None:
        """A batch of three with a burst of two refuses its third command."""
        commands = [
            rig.request("new", **ORDER, price=price)
            for price in ("64000", "63000", "62000")
        ]
        answers = rig.send(
            "alice", rig.payload("alice", {"op": "batch", "cmds": commands})
        )
        assert [name for _, name in rejects(answers)] == ["RATE_LIMITED"]

    def test_a_redelivery_costs_nothing(self, rig: Rig) -> None:
        """A QoS 1 redelivery is answered from memory, not counted."""
        payload = rig.payload("alice", rig.request("new", **ORDER, price="64000"))
        for _ in range(3):
            rig.send("alice", payload)
        assert rejects(rig.call("alice", "new", **ORDER, price="63000")) == []
