"""Mark price: the median rule, the basis average, source pinning, state rows."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.margin.mark import DEFAULT_FUNDING_INTERVAL_NS, MarkState, median
from exchange.units import SCALE

HOUR_NS = 3600 * 10**9
P100 = 100 * SCALE  # 100 USDT, E8

prices = st.integers(min_value=1, max_value=10**7 * SCALE)
events = st.lists(
    st.one_of(
        st.tuples(st.just("index"), prices),
        st.tuples(st.just("trade"), prices),
        st.tuples(st.just("book"), st.none() | prices, st.none() | prices),
    ),
    max_size=80,
)


def feed(state: MarkState, stream: list[tuple]) -> None:
    """Feed a generated event stream to ``state``, one event per nanosecond."""
    for ts, event in enumerate(stream):
        match event:
            case ("index", price):
                state.on_index(price, ts)
            case ("trade", price):
                state.on_trade(price)
            case ("book", bid, ask):
                state.on_book(bid, ask, ts)


class TestMedian:
    """The median of up to three prices."""

    @pytest.mark.parametrize("values", list(itertools.permutations([5, 9, 7])))
    def test_middle_of_three_is_exact_in_any_order(self, values):
        """Three distinct prices give the middle one, whatever their order."""
        assert median(list(values)) == 7

    @pytest.mark.parametrize(
        ("values", "expected"),
        [([4, 4, 9], 4), ([9, 4, 4], 4), ([4, 9, 9], 9), ([6, 6, 6], 6)],
    )
    def test_ties_give_the_repeated_value(self, values, expected):
        """A price that appears twice among three is the median."""
        assert median(values) == expected

    @pytest.mark.parametrize(
        ("values", "expected"), [([10, 20], 15), ([10, 11], 10), ([-3, 0], -2)]
    )
    def test_two_give_their_mean_rounded_down(self, values, expected):
        """Two prices give their mean, rounded toward minus infinity."""
        assert median(values) == expected

    def test_one_gives_itself_and_none_gives_none(self):
        """A single price is its own median; no price has none."""
        assert median([42]) == 42
        assert median([]) is None

    def test_four_values_raise(self):
        """More than three prices is a caller bug."""
        with pytest.raises(ValueError, match="at most three"):
            median([1, 2, 3, 4])

    @given(st.lists(st.integers(), min_size=3, max_size=3))
    def test_three_matches_the_sorted_middle(self, values):
        """The median of three equals the middle of the sorted values."""
        assert median(values) == sorted(values)[1]


class TestMedianRuleWithIndex:
    """mark = median(index x (1 + funding basis), index + MA(mid - index), last)."""

    def test_index_alone_is_the_mark(self):
        """With no book, no trade and no funding rate every component is the index."""
        state = MarkState()
        state.on_index(P100, 1)
        assert state.mark() == P100

    def test_funding_basis_scales_the_rate_by_time_left(self):
        """P1 adds rate x (time to next funding / interval) of the index."""
        state = MarkState()
        state.set_funding(10_000, 8 * HOUR_NS)  # 0.01%, next funding at 08:00
        state.on_index(P100, 4 * HOUR_NS)  # half the interval left: 0.005%
        assert state.funding_basis_price() == P100 + 500_000

    def test_funding_basis_is_zero_once_the_funding_time_has_passed(self):
        """Time to next funding is clamped at zero, so P1 is the index."""
        state = MarkState()
        state.set_funding(10_000, 8 * HOUR_NS)
        state.on_index(P100, 9 * HOUR_NS)
        assert state.funding_basis_price() == P100

    def test_funding_basis_time_left_is_capped_at_one_interval(self):
        """A next funding time more than an interval away counts as one interval."""
        state = MarkState()
        state.set_funding(10_000, 100 * HOUR_NS)
        state.on_index(P100, 0)
        assert state.funding_basis_price() == P100 + 1_000_000

    def test_negative_funding_basis_rounds_down(self):
        """A negative basis that is not a whole 1e-8 rounds toward minus infinity."""
        state = MarkState(interval_ns=3)
        state.set_funding(-1, 1)
        state.on_index(SCALE + 1, 0)  # basis = -(1e8 + 1) x 1 / (1e8 x 3)
        assert state.funding_basis_price() == SCALE + 1 - 1

    def test_last_trade_outside_the_others_is_ignored(self):
        """A last trade far above index and basis leaves the mark between them."""
        state = MarkState()
        state.on_book(P100 + 2 * SCALE, P100 + 4 * SCALE, 0)  # mid = index + 3
        state.on_index(P100, 1)
        state.on_trade(P100 + 50 * SCALE)
        assert state.mark() == P100 + 3 * SCALE  # P2

    def test_last_trade_between_the_others_is_the_mark(self):
        """A last trade between P1 and P2 is the median."""
        state = MarkState()
        state.on_book(P100 + 2 * SCALE, P100 + 4 * SCALE, 0)
        state.on_index(P100, 1)
        state.on_trade(P100 + SCALE)
        assert state.mark() == P100 + SCALE

    def test_no_trade_yet_gives_the_mean_of_the_two_others(self):
        """Before the first trade the mark is the floor mean of P1 and P2."""
        state = MarkState()
        state.on_book(P100 + 2 * SCALE, P100 + 4 * SCALE + 1, 0)  # mid floors
        state.on_index(P100, 1)
        assert state.mark() == P100 + 3 * SCALE // 2


class TestBasisAverage:
    """The moving average of (mid - index), sampled on index updates."""

    def test_samples_only_on_index_updates_with_a_mid(self):
        """Book updates alone add no sample; an index update without a mid neither."""
        state = MarkState()
        state.on_index(P100, 0)  # no book yet: no sample
        state.on_book(P100 + 10, P100 + 20, 1)
        state.on_book(P100 + 100, P100 + 200, 2)
        assert state.basis_average() == 0
        state.on_index(P100, 3)
        assert state.basis_average() == 150

    def test_one_sided_book_adds_no_sample(self):
        """Without both sides there is no mid, so the index update is not sampled."""
        state = MarkState()
        state.on_book(P100 + 10, None, 0)
        state.on_index(P100, 1)
        assert state.basis_average() == 0
        assert state.state_rows()[-1] == []

    def test_window_keeps_only_the_latest_samples(self):
        """Once full, the window drops its oldest sample on each new one."""
        state = MarkState(window=3)
        for ts, basis in enumerate([100, 200, 300, 900]):
            state.on_book(P100 + basis, P100 + basis, ts)
            state.on_index(P100, ts)
        assert state.state_rows()[-1] == [200, 300, 900]
        assert state.basis_average() == (200 + 300 + 900) // 3

    def test_average_rounds_toward_minus_infinity(self):
        """A negative average that is not whole rounds down."""
        state = MarkState()
        for ts, basis in enumerate([-1, -2]):
            state.on_book(P100 + basis, P100 + basis, ts)
            state.on_index(P100, ts)
        assert state.basis_average() == -2

    @given(
        st.integers(min_value=1, max_value=8),
        st.lists(st.tuples(prices, prices, prices), max_size=50),
    )
    def test_running_average_matches_a_recomputed_window(self, window, steps):
        """The running sum always equals the floor mean of the last samples."""
        state = MarkState(window=window)
        seen = []
        for ts, (bid, ask, index) in enumerate(steps):
            state.on_book(bid, ask, ts)
            state.on_index(index, ts)
            seen.append((bid + ask) // 2 - index)
            recent = seen[-window:]
            assert state.basis_average() == sum(recent) // len(recent)

    def test_window_must_be_positive(self):
        """A window of zero samples is refused."""
        with pytest.raises(ValueError, match="must be positive"):
            MarkState(window=0)


class TestMedianRuleWithoutIndex:
    """With no index feed, mark = median(last, mid)."""

    def test_last_and_mid_give_their_mean(self):
        """Both present: the floor mean of last trade and mid."""
        state = MarkState()
        state.on_trade(P100)
        state.on_book(P100 + 1, P100 + 4, 0)  # mid = P100 + 2
        assert state.mark() == P100 + 1

    def test_only_last(self):
        """With an empty book the last trade is the mark."""
        state = MarkState()
        state.on_trade(P100)
        assert state.mark() == P100

    def test_only_mid(self):
        """Before any trade the mid is the mark."""
        state = MarkState()
        state.on_book(P100, P100 + 2, 0)
        assert state.mark() == P100 + 1

    def test_one_sided_book_and_no_trade_has_no_mark(self):
        """A one-sided book has no mid, so with no trade there is no mark."""
        state = MarkState()
        state.on_book(None, P100, 0)
        assert state.mid() is None
        assert state.mark() is None

    def test_nothing_known_has_no_mark_from_any_source(self):
        """A fresh market has no mark whatever the source."""
        state = MarkState()
        assert [state.mark(s) for s in ("median", "index", "last")] == [None] * 3


class TestSourcePinning:
    """A market can pin its mark to the index or the last trade."""

    def pinned_state(self) -> MarkState:
        """Return a state whose index, last trade and median all differ."""
        state = MarkState()
        state.on_book(P100 + 2 * SCALE, P100 + 4 * SCALE, 0)  # P2 = index + 3
        state.on_index(P100, 1)  # P1 = index (no funding rate)
        state.on_trade(P100 + 7 * SCALE)
        return state

    @pytest.mark.parametrize(
        ("source", "expected"),
        [("median", P100 + 3 * SCALE), ("index", P100), ("last", P100 + 7 * SCALE)],
    )
    def test_each_source_reads_its_input(self, source, expected):
        """``index`` reads the index, ``last`` the last trade, ``median`` the rule."""
        assert self.pinned_state().mark(source) == expected

    def test_index_source_falls_back_to_the_median_rule_without_index(self):
        """With no index yet, ``index`` gives median(last, mid)."""
        state = MarkState()
        state.on_trade(P100)
        state.on_book(P100 + 1, P100 + 3, 0)
        assert state.mark("index") == P100 + 1

    def test_last_source_falls_back_to_the_median_rule_without_trade(self):
        """Before the first trade, ``last`` gives the median rule."""
        state = MarkState()
        state.on_index(P100, 0)
        assert state.mark("last") == P100

    def test_unknown_source_raises(self):
        """A source outside median, index and last is a caller bug."""
        with pytest.raises(ValueError, match="unknown mark source"):
            MarkState().mark("mid")  # type: ignore[arg-type]


class TestStateRows:
    """Canonical plain data for hashing and snapshots."""

    @given(events)
    def test_same_inputs_give_the_same_rows_and_marks(self, stream):
        """Two states fed the same events agree on their rows and every mark."""
        first, second = MarkState(window=5), MarkState(window=5)
        feed(first, stream)
        feed(second, stream)
        assert first.state_rows() == second.state_rows()
        for source in ("median", "index", "last"):
            assert first.mark(source) == second.mark(source)

    @given(events)
    def test_rows_round_trip_through_from_rows(self, stream):
        """A state rebuilt from its rows equals the original and goes on alike."""
        state = MarkState(window=5)
        feed(state, stream)
        copy = MarkState.from_rows(state.state_rows())
        assert copy.state_rows() == state.state_rows()
        assert copy.mark() == state.mark()
        for each in (state, copy):
            each.on_book(P100, P100 + 2, 10**6)
            each.on_index(P100, 10**6)
        assert copy.basis_average() == state.basis_average()

    def test_rows_are_plain_ints_and_lists(self):
        """The rows hold only ints, None and a list of ints: hashable as msgpack."""
        state = MarkState()
        state.on_book(P100, P100 + 2, 0)
        state.on_index(P100, 1)
        rows = state.state_rows()
        assert rows[:2] == [60, DEFAULT_FUNDING_INTERVAL_NS]
        assert all(isinstance(v, int | None | list) for v in rows)
        assert rows[-1] == [1]

    @pytest.mark.parametrize(
        "rows",
        [
            [],
            [60, 1, None, None, None, None, None, 0, 0, 0, [1.5]],
            [2, 1, None, None, None, None, None, 0, 0, 0, [1, 2, 3]],
            [60, 1, 1.0, None, None, None, None, 0, 0, 0, []],
        ],
    )
    def test_malformed_rows_raise(self, rows):
        """Rows that no MarkState produces are refused."""
        with pytest.raises(ValueError, match=r"expected an int|not a MarkState|exceed"):
            MarkState.from_rows(rows)
