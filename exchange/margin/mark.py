"""The mark price of one market: the median rule over index, basis and last trade.

Units: prices are E8 ints (price x 10**8; the caller converts ticks), rates are
E8 rate units (1e-8: 0.01% = 10_000), times are int nanoseconds of exchange
time taken from records. Pure: no clock, no I/O, no floats.

The median rule (MARGIN.md, Binance's USD-M mark price):

    mark = median(P1, P2, P3)
    P1 = index x (1 + funding basis)
         funding basis = predicted funding rate x time to next funding / interval
    P2 = index + moving average of (mid - index)
    P3 = last trade price

With no index feed yet, mark = median(last, mid). Where the rule needs a median
of two values it is their mean. Every division here rounds toward minus
infinity (floor): the mark has no side, so no direction favours the exchange,
and one fixed direction keeps replays identical.
"""

from __future__ import annotations

from collections import deque
from typing import Literal, get_args

from exchange.units import SCALE

__all__ = [
    "DEFAULT_BASIS_WINDOW",
    "DEFAULT_FUNDING_INTERVAL_NS",
    "MarkSource",
    "MarkState",
    "median",
]

MarkSource = Literal["median", "index", "last"]
MARK_SOURCES: tuple[MarkSource, ...] = get_args(MarkSource)

# The (mid - index) average covers the last 60 index updates: about 30 minutes
# of Binance's basis average at one index price every 30 seconds.
DEFAULT_BASIS_WINDOW = 60
DEFAULT_FUNDING_INTERVAL_NS = 8 * 3600 * 10**9


def median(values: list[int]) -> int | None:
    """Return the median of up to three prices; the mean of two; None of none.

    Args:
        values: zero to three E8 prices.

    Returns:
        The middle value of three (exact), the floor of the mean of two, the
        only value of one, or None for an empty list.

    Raises:
        ValueError: for more than three values.
    """
    match values:
        case []:
            return None
        case [only]:
            return only
        case [a, b]:
            # Rounds toward minus infinity: the mark favours no side (module doc).
            return (a + b) // 2
        case [a, b, c]:
            return max(min(a, b), min(max(a, b), c))
    msg = f"median takes at most three prices, got {len(values)}"
    raise ValueError(msg)


class MarkState:
    """The inputs of one market's mark price, fed by the core as records arrive.

    Every update is O(1): the (mid - index) samples sit in a bounded deque
    beside their running sum, so the average never scans the window.
    """

    __slots__ = (
        "_basis_samples",
        "_basis_sum",
        "ask",
        "bid",
        "funding_rate_e8",
        "index",
        "index_ts_ns",
        "interval_ns",
        "last",
        "next_funding_ns",
        "ts_ns",
        "window",
    )

    def __init__(
        self,
        *,
        window: int = DEFAULT_BASIS_WINDOW,
        interval_ns: int = DEFAULT_FUNDING_INTERVAL_NS,
    ) -> None:
        """Create the state of a market that has seen nothing yet.

        Args:
            window: how many index updates the (mid - index) average spans.
            interval_ns: the funding interval, for the funding basis of P1.

        Raises:
            ValueError: if ``window`` or ``interval_ns`` is not positive.
        """
        if window <= 0 or interval_ns <= 0:
            msg = f"window ({window}) and interval_ns ({interval_ns}) must be positive"
            raise ValueError(msg)
        self.window = window
        self.interval_ns = interval_ns
        self.index: int | None = None
        self.index_ts_ns: int | None = None
        self.last: int | None = None
        self.bid: int | None = None
        self.ask: int | None = None
        self.ts_ns = 0
        self.funding_rate_e8 = 0
        self.next_funding_ns = 0
        self._basis_samples: deque[int] = deque()
        self._basis_sum = 0

    # ------------------------------------------------------------ updates

    def on_index(self, price_e8: int, ts_ns: int) -> None:
        """Take a new index price and sample (mid - index) for the basis average.

        A sample is taken only when the book has a mid (both sides); the oldest
        sample leaves once the window is full.

        Args:
            price_e8: the index price, E8.
            ts_ns: exchange time of the index record.
        """
        self.index = price_e8
        self.index_ts_ns = ts_ns
        self.ts_ns = ts_ns
        mid = self.mid()
        if mid is None:
            return
        samples = self._basis_samples
        if len(samples) == self.window:
            self._basis_sum -= samples.popleft()
        sample = mid - price_e8
        samples.append(sample)
        self._basis_sum += sample

    def on_trade(self, price_e8: int) -> None:
        """Take the price of the latest trade, E8."""
        self.last = price_e8

    def on_book(
        self, best_bid_e8: int | None, best_ask_e8: int | None, ts_ns: int
    ) -> None:
        """Take the top of the book (E8 prices, None for an empty side) at ``ts_ns``."""
        self.bid = best_bid_e8
        self.ask = best_ask_e8
        self.ts_ns = ts_ns

    def on_time(self, ts_ns: int) -> None:
        """Move exchange time forward (a clock record) for the funding basis."""
        self.ts_ns = ts_ns

    def set_funding(self, rate_e8: int, next_funding_ns: int) -> None:
        """Take the predicted funding rate (E8 rate units) and the next funding time."""
        self.funding_rate_e8 = rate_e8
        self.next_funding_ns = next_funding_ns

    # ------------------------------------------------------------ queries

    def mid(self) -> int | None:
        """Return the mid of best bid and ask (E8, floor); None if a side is empty."""
        if self.bid is None or self.ask is None:
            return None
        # Rounds toward minus infinity: the mark favours no side (module doc).
        return (self.bid + self.ask) // 2

    def basis_average(self) -> int:
        """Return the moving average of (mid - index), E8, floor; 0 with no sample.

        No sample yet means no evidence of a basis, so it counts as zero.
        """
        count = len(self._basis_samples)
        # Rounds toward minus infinity: the mark favours no side (module doc).
        return self._basis_sum // count if count else 0

    def funding_basis_price(self) -> int | None:
        """Return P1 = index x (1 + rate x time to next funding / interval), E8.

        The time left is clamped to [0, interval]; None without an index.
        """
        if self.index is None:
            return None
        left = min(max(self.next_funding_ns - self.ts_ns, 0), self.interval_ns)
        # Rounds toward minus infinity: the mark favours no side (module doc).
        basis = self.index * self.funding_rate_e8 * left // (SCALE * self.interval_ns)
        return self.index + basis

    def median_mark(self) -> int | None:
        """Return the median-rule mark, E8, or None when nothing is known yet.

        With an index: median(P1, P2, last), leaving ``last`` out before the
        first trade (then the mean of P1 and P2). Without an index:
        median(last, mid), either one alone if the other is missing.
        """
        if self.index is None:
            return median([p for p in (self.last, self.mid()) if p is not None])
        p1 = self.funding_basis_price()
        assert p1 is not None  # there is an index
        p2 = self.index + self.basis_average()
        return median([p1, p2] if self.last is None else [p1, p2, self.last])

    def mark(self, source: MarkSource = "median") -> int | None:
        """Return the mark price (E8) from ``source``, or None when nothing is known.

        ``"median"`` is the median rule (`median_mark`). ``"index"`` and
        ``"last"`` pin the mark to the index or the last trade, and fall back
        to the median rule while that input does not exist yet (no index feed,
        no trade), so a pinned market still has a mark when the rule has one.

        Raises:
            ValueError: for an unknown source.
        """
        match source:
            case "median":
                return self.median_mark()
            case "index":
                return self.median_mark() if self.index is None else self.index
            case "last":
                return self.median_mark() if self.last is None else self.last
        msg = f"unknown mark source {source!r}; expected one of {MARK_SOURCES}"
        raise ValueError(msg)

    # ------------------------------------------------------------ state

    def state_rows(self) -> list[object]:
        """Return the whole state as plain data in one canonical order, for hashing."""
        return [
            self.window,
            self.interval_ns,
            self.index,
            self.index_ts_ns,
            self.last,
            self.bid,
            self.ask,
            self.ts_ns,
            self.funding_rate_e8,
            self.next_funding_ns,
            list(self._basis_samples),
        ]

    @classmethod
    def from_rows(cls, rows: list[object]) -> MarkState:
        """Rebuild a state from `state_rows` output (a snapshot).

        Raises:
            ValueError: if the rows are not a `state_rows` list.
        """
        match rows:
            case [
                int(window),
                int(interval),
                index,
                index_ts,
                last,
                bid,
                ask,
                int(ts),
                int(rate),
                int(next_funding),
                list(samples),
            ]:
                state = cls(window=window, interval_ns=interval)
            case _:
                msg = "not a MarkState.state_rows list"
                raise ValueError(msg)
        state.index, state.index_ts_ns = _opt(index), _opt(index_ts)
        state.last, state.bid, state.ask = _opt(last), _opt(bid), _opt(ask)
        state.ts_ns, state.funding_rate_e8 = ts, rate
        state.next_funding_ns = next_funding
        if len(samples) > window:
            msg = f"{len(samples)} basis samples exceed the window of {window}"
            raise ValueError(msg)
        state._basis_samples = deque(_int(s) for s in samples)
        state._basis_sum = sum(state._basis_samples)
        return state


def _opt(value: object) -> int | None:
    """Return ``value`` as an optional int, refusing anything else."""
    return None if value is None else _int(value)


def _int(value: object) -> int:
    """Return ``value`` if it is an int (not a bool), refusing anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    msg = f"expected an int, got {value!r}"
    raise ValueError(msg)
