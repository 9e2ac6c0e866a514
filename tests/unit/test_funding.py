"""Funding: the rate formula, impact prices, premium windows, zero-sum payments."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.errors import InvariantViolation
from exchange.margin.funding import (
    DEFAULT_CLAMP_E8,
    DEFAULT_IMPACT_NOTIONAL_E8,
    DEFAULT_INTEREST_E8,
    DEFAULT_INTERVAL_NS,
    FundingState,
    FundingTick,
    elapsed_boundaries,
    funding_payment,
    funding_rate,
    impact_price,
    next_funding_time,
    premium_index,
    settle_funding,
)
from exchange.units import SCALE

H = 3600 * 10**9
P100 = 100 * SCALE
PCT = 1_000_000  # 1% in E8 rate units

levels = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=10**6 * SCALE),
        st.integers(min_value=1, max_value=10**4 * SCALE),
    ),
    min_size=1,
    max_size=10,
)


def deep(price: int) -> list[tuple[int, int]]:
    """Return one level at ``price`` deep enough for the default impact notional."""
    return [(price, 10**6 * SCALE)]


class TestDefaults:
    """The documented defaults."""

    def test_defaults_are_binance_like(self):
        """8 h interval, 0.01% interest, +-0.05% clamp, 25,000 USDT impact notional."""
        assert DEFAULT_INTERVAL_NS == 8 * H
        assert DEFAULT_INTEREST_E8 == PCT // 100
        assert DEFAULT_CLAMP_E8 == 5 * PCT // 100
        assert DEFAULT_IMPACT_NOTIONAL_E8 == 25_000 * SCALE


class TestFundingRate:
    """rate = premium + clamp(interest - premium, +-clamp)."""

    @pytest.mark.parametrize(
        ("premium", "expected"),
        [
            (0, 10_000),  # no premium: the interest rate, 0.01%
            (30_000, 10_000),  # within the clamp of interest: still interest
            (-40_000, 10_000),  # interest - premium = 0.05%: just inside
            (60_000, 10_000),  # interest - premium = -0.05%: just inside
            (200_000, 150_000),  # 0.2% premium: 0.2% - 0.05%
            (70_000, 20_000),  # 0.07%: 0.07% - 0.05%
            (-200_000, -150_000),  # -0.2%: -0.2% + 0.05%
            (-50_000, 0),  # -0.05%: -0.05% + 0.05%
        ],
    )
    def test_default_interest_and_clamp(self, premium, expected):
        """The rate follows MARGIN.md's formula with 0.01% interest, 0.05% clamp."""
        assert funding_rate(premium) == expected

    def test_custom_interest_and_clamp(self):
        """Interest and clamp are parameters."""
        assert funding_rate(0, interest_e8=30_000, clamp_e8=20_000) == 20_000
        assert funding_rate(0, interest_e8=0, clamp_e8=0) == 0
        assert funding_rate(123, interest_e8=10_000, clamp_e8=0) == 123

    @given(
        st.integers(-10 * PCT, 10 * PCT), st.integers(-PCT, PCT), st.integers(0, PCT)
    )
    def test_rate_is_interest_or_premium_shifted_by_clamp(
        self, premium, interest, clamp
    ):
        """Near the interest rate the rate is the interest; else premium -+ clamp."""
        rate = funding_rate(premium, interest, clamp)
        if abs(interest - premium) <= clamp:
            assert rate == interest
        else:
            assert rate - premium == (clamp if interest > premium else -clamp)


class TestImpactPrice:
    """Average fill price of the impact notional walked over the book."""

    def test_partial_fill_of_the_second_level(self):
        """1 lot at 100 and 102 USDT of the 102 level average to 101."""
        asks = [(P100, SCALE), (102 * SCALE, 10 * SCALE)]
        assert impact_price(asks, 202 * SCALE, bid_side=False) == 101 * SCALE

    def test_notional_exactly_filling_a_level(self):
        """A notional equal to the first level's notional fills it at its price."""
        assert impact_price([(P100, SCALE)], P100, bid_side=True) == P100

    def test_bid_rounds_down_and_ask_rounds_up(self):
        """An inexact average rounds toward the worse fill for the impact order."""
        book = [(SCALE, SCALE), (2 * SCALE, 10 * SCALE)]  # avg = 2 / 1.5
        assert impact_price(book, 2 * SCALE, bid_side=True) == 133_333_333
        assert impact_price(book, 2 * SCALE, bid_side=False) == 133_333_334

    @pytest.mark.parametrize("book", [[], [(P100, SCALE)], [(P100, SCALE)] * 3])
    def test_thin_book_has_no_impact_price(self, book):
        """Levels holding less than the notional give None."""
        assert impact_price(book, 1_000 * SCALE, bid_side=True) is None

    def test_notional_must_be_positive(self):
        """A zero impact notional is refused."""
        with pytest.raises(ValueError, match="must be positive"):
            impact_price(deep(P100), 0, bid_side=True)

    @given(levels, st.integers(min_value=1, max_value=10**9 * SCALE))
    def test_impact_lies_between_the_levels_it_walks(self, book, notional):
        """An impact price lies between the best level and the last one walked."""
        book = sorted(book, reverse=True)  # a bid side, best first
        price = impact_price(book, notional, bid_side=True)
        if price is not None:
            assert book[-1][0] <= price <= book[0][0]
        else:
            assert sum(p * q for p, q in book) < notional * SCALE


class TestPremiumIndex:
    """(max(0, impact bid - index) - max(0, index - impact ask)) / index."""

    def test_impact_bid_above_index_is_a_positive_premium(self):
        """Buyers paying above the index give a positive premium."""
        assert premium_index(P100, P100 + SCALE // 10, P100 + SCALE) == 100_000

    def test_impact_ask_below_index_is_a_negative_premium(self):
        """Sellers offering below the index give a negative premium."""
        assert premium_index(P100, P100 - SCALE, P100 - SCALE // 10) == -100_000

    def test_index_inside_the_impact_spread_is_no_premium(self):
        """An index between impact bid and ask gives zero."""
        assert premium_index(P100, P100 - 1, P100 + 1) == 0

    def test_rounds_toward_zero_both_ways(self):
        """Inexact premiums are truncated toward zero, either sign."""
        index = 3 * SCALE
        assert premium_index(index, index + 100, index + 200) == 33
        assert premium_index(index, index - 200, index - 100) == -33

    def test_index_must_be_positive(self):
        """A zero index is refused."""
        with pytest.raises(ValueError, match="must be positive"):
            premium_index(0, 1, 2)


class TestFundingWindow:
    """A window's premium is the plain average of its samples."""

    def test_average_of_samples_sets_the_predicted_rate(self):
        """Two samples of 0.2% and 0% average to 0.1%, giving 0.1% - 0.05%."""
        state = FundingState()
        bid, ask = P100 + P100 // 500, P100 + P100 // 250  # impact bid +0.2%
        assert state.sample(1, P100, deep(bid), deep(ask)) == 200_000
        assert state.sample(2, P100, deep(P100 - 1), deep(P100 + 1)) == 0
        assert state.average_premium() == 100_000
        assert state.predicted_rate() == 50_000

    def test_thin_book_and_missing_index_sample_zero_and_count(self):
        """A thin side or no index gives a 0 sample that still counts."""
        state = FundingState()
        state.sample(1, P100, deep(P100 + SCALE), deep(P100 + 2 * SCALE))  # 1%
        assert state.sample(2, P100, [], deep(P100)) == 0
        assert state.sample(3, None, deep(P100 + SCALE), deep(P100 + SCALE)) == 0
        assert state.premium_count == 3
        assert state.average_premium() == 1_000_000 // 3

    def test_empty_window_predicts_the_interest_rate(self):
        """With no sample the premium is 0 and the rate is the interest rate."""
        assert FundingState().predicted_rate() == DEFAULT_INTEREST_E8

    def test_negative_average_rounds_toward_zero(self):
        """The window average truncates toward zero."""
        state = FundingState()
        state.premium_sum, state.premium_count = -5, 3
        assert state.average_premium() == -1

    def test_sample_past_an_unsettled_boundary_raises(self):
        """A sample at or past the next boundary means the caller skipped `advance`."""
        state = FundingState()
        with pytest.raises(InvariantViolation, match="past the unsettled boundary"):
            state.sample(8 * H, P100, deep(P100), deep(P100))

    def test_invalid_parameters_raise(self):
        """A zero interval is refused."""
        with pytest.raises(ValueError, match="must be positive"):
            FundingState(interval_ns=0)


class TestFundingTime:
    """Boundaries at multiples of the interval; each settles exactly once."""

    @pytest.mark.parametrize(
        ("ts", "expected"),
        [(0, 8 * H), (1, 8 * H), (8 * H - 1, 8 * H), (8 * H, 16 * H)],
    )
    def test_next_funding_time_is_strictly_after(self, ts, expected):
        """The next boundary is the first multiple of the interval after ``ts``."""
        assert next_funding_time(ts) == expected

    def test_elapsed_boundaries_across_several_intervals(self):
        """Moving from 07:00 to 33:00 passes 08:00, 16:00, 24:00 and 32:00."""
        assert list(elapsed_boundaries(7 * H, 33 * H)) == [
            8 * H,
            16 * H,
            24 * H,
            32 * H,
        ]

    def test_elapsed_boundaries_include_the_end_but_not_the_start(self):
        """A move ending on a boundary settles it; one starting on it does not."""
        assert list(elapsed_boundaries(0, 8 * H)) == [8 * H]
        assert list(elapsed_boundaries(8 * H, 16 * H - 1)) == []

    def test_no_boundary_when_time_does_not_advance(self):
        """Staying still or going back passes no boundary."""
        assert list(elapsed_boundaries(9 * H, 9 * H)) == []
        assert list(elapsed_boundaries(20 * H, 9 * H)) == []

    @given(
        st.lists(st.integers(min_value=0, max_value=100 * H), min_size=1, max_size=20)
    )
    def test_a_chain_of_moves_settles_each_boundary_once(self, times):
        """Splitting a time range into moves settles each boundary exactly once."""
        times = sorted(times)
        settled = []
        for prev, ts in zip([0, *times], times, strict=False):
            settled.extend(elapsed_boundaries(prev, ts, interval_ns=7 * H))
        assert settled == list(range(7 * H, times[-1] + 1, 7 * H))

    def test_advance_closes_every_elapsed_window_in_order(self):
        """A move over three boundaries yields three ticks; the later are empty."""
        state = FundingState()
        state.sample(1, P100, deep(P100 + P100 // 500), deep(P100 + P100 // 250))
        ticks = state.advance(24 * H + 5)
        assert ticks == [
            FundingTick(8 * H, 150_000, 200_000, 1),
            FundingTick(16 * H, DEFAULT_INTEREST_E8, 0, 0),
            FundingTick(24 * H, DEFAULT_INTEREST_E8, 0, 0),
        ]
        assert state.next_funding_ns == 32 * H
        assert state.advance(24 * H + 6) == []
        assert state.premium_count == 0

    def test_start_time_sets_the_first_boundary(self):
        """A market opened at 09:00 first funds at 16:00."""
        assert FundingState(start_ns=9 * H).next_funding_ns == 16 * H

    def test_state_rows_round_trip(self):
        """Rows are plain ints and rebuild an equal state."""
        state = FundingState(interest_e8=7, clamp_e8=9)
        state.sample(5, P100, deep(P100 + SCALE), deep(P100 + 2 * SCALE))
        rows = state.state_rows()
        assert all(type(v) is int for v in rows)
        assert FundingState.from_rows(rows).state_rows() == rows
        with pytest.raises(ValueError, match="not a FundingState"):
            FundingState.from_rows([*rows[:-1], 1.0])


class TestFundingPayment:
    """payment = mark x size x rate; positive means paid."""

    def test_positive_rate_longs_pay_shorts_receive(self):
        """At +0.01% a 2-lot long at 100 pays 0.02 USDT; the short receives it."""
        assert funding_payment(P100, 2 * SCALE, 10_000) == 2_000_000
        assert funding_payment(P100, -2 * SCALE, 10_000) == -2_000_000

    def test_negative_rate_shorts_pay_longs_receive(self):
        """At a negative rate the signs swap."""
        assert funding_payment(P100, 2 * SCALE, -10_000) == -2_000_000
        assert funding_payment(P100, -2 * SCALE, -10_000) == 2_000_000

    def test_payer_rounds_up_and_receiver_rounds_down(self):
        """An inexact amount rounds up for the payer and down for the receiver."""
        assert funding_payment(P100, 1, 1) == 1  # exact 1e-14 USDT, paid as 1e-8
        assert funding_payment(P100, -1, 1) == 0  # received: nothing

    def test_flat_position_pays_nothing(self):
        """A zero size pays and receives nothing."""
        assert funding_payment(P100, 0, 10_000) == 0


class TestSettleFunding:
    """Every position's payment, with the rounding remainder for the fund."""

    def test_exact_example_conserves_money(self):
        """Two longs and a short at 0.01%: exact amounts and no remainder."""
        result = settle_funding(
            [("a", 3 * SCALE), ("b", SCALE), ("c", -4 * SCALE)], P100, 10_000
        )
        assert result.payments == [
            ("a", 3_000_000),
            ("b", 1_000_000),
            ("c", -4_000_000),
        ]
        assert result.remainder == 0

    def test_rounding_crumbs_go_to_the_remainder(self):
        """Inexact amounts leave a positive remainder that balances the books."""
        payments, remainder = settle_funding([("a", 1), ("b", 1), ("c", -2)], P100, 1)
        assert payments == [("a", 1), ("b", 1), ("c", 0)]
        assert remainder == 2

    def test_sizes_not_netting_to_zero_raise(self):
        """Positions of a symbol that do not net to zero are a ledger bug."""
        with pytest.raises(InvariantViolation, match="do not net to zero"):
            settle_funding([("a", 1)], P100, 10_000)

    def test_no_positions_settle_to_nothing(self):
        """An empty symbol pays nothing and leaves no remainder."""
        assert settle_funding([], P100, 10_000) == ([], 0)

    @given(
        st.lists(st.integers(-(10**6) * SCALE, 10**6 * SCALE), max_size=30),
        st.integers(min_value=1, max_value=10**7 * SCALE),
        st.integers(min_value=-10 * PCT, max_value=10 * PCT),
    )
    def test_money_is_conserved_exactly(self, sizes, mark, rate):
        """Account changes plus the remainder sum to zero; the remainder is < n."""
        sizes = [*sizes, -sum(sizes)]
        payments, remainder = settle_funding(list(enumerate(sizes)), mark, rate)
        account_changes = [-amount for _, amount in payments]
        assert sum(account_changes) + remainder == 0
        assert 0 <= remainder < len(sizes)
        for (_, amount), size in zip(payments, sizes, strict=True):
            exact = mark * size * rate
            assert amount * SCALE * SCALE >= exact  # never in the trader's favour
            assert (amount - 1) * SCALE * SCALE < exact
