"""Perpetual funding: premium samples, the rate formula, and zero-sum payments.

Units: prices are E8 ints (the caller converts ticks), quantities E8 ints,
money E8 ints (1e-8 USDT), rates E8 rate units (1e-8: 0.01% = 10_000, like
Binance's 8-decimal funding rates), times int nanoseconds of exchange time.
Pure: no clock, no I/O, no floats.

Funding boundaries sit at whole multiples of the interval since ts 0 (with the
8 h default: 00:00, 08:00 and 16:00 UTC, as on Binance). A boundary ``b`` has
elapsed at time ``ts`` when ``b <= ts``; the window it closes holds the premium
samples taken in ``[b - interval, b)``. Time only moves through records, so one
record may pass several boundaries: each settles exactly once, in order.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from typing import Generic, NamedTuple, TypeVar

from exchange.errors import InvariantViolation
from exchange.units import SCALE, ceil_div

__all__ = [
    "DEFAULT_CLAMP_E8",
    "DEFAULT_IMPACT_NOTIONAL_E8",
    "DEFAULT_INTEREST_E8",
    "DEFAULT_INTERVAL_NS",
    "FundingSettlement",
    "FundingState",
    "FundingTick",
    "elapsed_boundaries",
    "funding_payment",
    "funding_rate",
    "impact_price",
    "next_funding_time",
    "premium_index",
    "settle_funding",
]

K = TypeVar("K", bound=Hashable)

DEFAULT_INTERVAL_NS = 8 * 3600 * 10**9
DEFAULT_INTEREST_E8 = 10_000  # 0.01% per interval
DEFAULT_CLAMP_E8 = 50_000  # +-0.05%
# Binance's impact margin notional is 200 USDT of initial margin at the highest
# leverage; for BTCUSDT at 125x that is 25,000 USDT of notional.
DEFAULT_IMPACT_NOTIONAL_E8 = 25_000 * SCALE
# A payment is price E8 x size E8 x rate E8 = 1e-24 USDT; money is 1e-8 USDT.
_PAYMENT_DIVISOR = SCALE * SCALE


# ------------------------------------------------------------------ time


def next_funding_time(ts_ns: int, interval_ns: int = DEFAULT_INTERVAL_NS) -> int:
    """Return the first funding boundary strictly after ``ts_ns``.

    A boundary equal to ``ts_ns`` has already elapsed at ``ts_ns`` (it settles
    then), so the next one is a full interval later.
    """
    # Floor division: the boundary at or before ts, then one interval on.
    return (ts_ns // interval_ns + 1) * interval_ns


def elapsed_boundaries(
    prev_ts_ns: int, ts_ns: int, interval_ns: int = DEFAULT_INTERVAL_NS
) -> range:
    """Return the funding boundaries ``b`` with ``prev_ts_ns < b <= ts_ns``, in order.

    Moving time from ``prev_ts_ns`` to ``ts_ns`` settles each of them once;
    moving it again from ``ts_ns`` never repeats one. Empty if time does not
    move forward.
    """
    return range(next_funding_time(prev_ts_ns, interval_ns), ts_ns + 1, interval_ns)


# ------------------------------------------------------------------ premium


def impact_price(
    levels: Iterable[tuple[int, int]], notional_e8: int, *, bid_side: bool
) -> int | None:
    """Return the average fill price (E8) of a market order of ``notional_e8``.

    The order walks ``levels`` ((price E8, quantity E8), best first); the last
    level it reaches fills in part, by notional. The average is total notional
    over total quantity, computed exactly and divided once.

    Args:
        levels: one side of the book, best first.
        notional_e8: the impact notional, E8 money (> 0).
        bid_side: True for the bids (impact bid: a sell walks them), False for
            the asks (impact ask: a buy walks them).

    Returns:
        The impact price, rounded toward the worse fill for the impact order
        (a bid down, an ask up), which shrinks the premium toward zero; None if
        the levels hold less than ``notional_e8`` (the book is too thin).

    Raises:
        ValueError: if ``notional_e8`` is not positive.
    """
    if notional_e8 <= 0:
        msg = f"impact notional must be positive, got {notional_e8}"
        raise ValueError(msg)
    total = notional_e8 * SCALE  # in price E8 x quantity E8 units
    remaining = total
    qty = 0
    for price, level_qty in levels:
        level_notional = price * level_qty
        if level_notional >= remaining:
            # avg = total / (qty + remaining / price), cleared of the fraction.
            num, den = total * price, qty * price + remaining
            # Bid rounds down (floor), ask rounds up (ceil): the worse fill.
            return num // den if bid_side else ceil_div(num, den)
        remaining -= level_notional
        qty += level_qty
    return None


def premium_index(index_e8: int, impact_bid_e8: int, impact_ask_e8: int) -> int:
    """Return (max(0, bid - index) - max(0, index - ask)) / index in E8 rate units.

    Rounds toward zero (a smaller premium either way).

    Raises:
        ValueError: if ``index_e8`` is not positive.
    """
    if index_e8 <= 0:
        msg = f"index price must be positive, got {index_e8}"
        raise ValueError(msg)
    num = (max(0, impact_bid_e8 - index_e8) - max(0, index_e8 - impact_ask_e8)) * SCALE
    # Rounds toward zero: floor of the magnitude, sign put back.
    magnitude = abs(num) // index_e8
    return magnitude if num >= 0 else -magnitude


def funding_rate(
    avg_premium_e8: int,
    interest_e8: int = DEFAULT_INTEREST_E8,
    clamp_e8: int = DEFAULT_CLAMP_E8,
) -> int:
    """Return premium + clamp(interest - premium, -clamp, +clamp), E8 rate units.

    Exact (no division): 0 premium gives the interest rate; a premium further
    than ``clamp`` from the interest rate gives premium -+ clamp.
    """
    return avg_premium_e8 + min(max(interest_e8 - avg_premium_e8, -clamp_e8), clamp_e8)


# ------------------------------------------------------------------ payments


def funding_payment(mark_e8: int, size_e8: int, rate_e8: int) -> int:
    """Return what a position pays at one funding: mark x size x rate, E8 money.

    ``size_e8`` is signed (long > 0). A positive result is paid, a negative
    one received: with a positive rate longs pay and shorts receive. Rounds up
    (ceil), in the exchange's favour both ways: a payer pays the next 1e-8
    up, a receiver gets the next 1e-8 down.
    """
    # Rounds up (ceil): exchange's favour for payer and receiver alike.
    return ceil_div(mark_e8 * size_e8 * rate_e8, _PAYMENT_DIVISOR)


class FundingSettlement(NamedTuple, Generic[K]):
    """The payments of one funding of one symbol, and the rounding left over.

    ``payments`` holds (key, amount paid in E8 money, negative = received), in
    the order of the positions given. ``remainder`` (>= 0) is what rounding
    kept back: the caller credits it to the insurance fund, so that
    ``-sum(amounts) + remainder == 0``: every account's change plus the fund's
    sums to zero and no money is created.
    """

    payments: list[tuple[K, int]]
    remainder: int


def settle_funding(
    positions: Sequence[tuple[K, int]], mark_e8: int, rate_e8: int
) -> FundingSettlement[K]:
    """Return every position's funding payment and the remainder for the fund.

    Each amount is `funding_payment` (ceil), so payers round up and receivers
    down; the remainder is the sum of the amounts, between 0 and one unit per
    position (exclusive).

    Args:
        positions: (key, signed size E8) of every position of one symbol; the
            sizes sum to zero.
        mark_e8: the mark price, E8.
        rate_e8: the funding rate, E8 rate units.

    Raises:
        InvariantViolation: if the sizes do not sum to zero (a ledger bug).
    """
    net = sum(size for _, size in positions)
    if net != 0:
        msg = f"funding positions do not net to zero (net size {net} E8)"
        raise InvariantViolation(msg)
    payments = [
        (key, funding_payment(mark_e8, size, rate_e8)) for key, size in positions
    ]
    remainder = sum(amount for _, amount in payments)
    if not 0 <= remainder < max(len(payments), 1):
        msg = f"funding remainder {remainder} outside [0, {len(payments)})"
        raise InvariantViolation(msg)
    return FundingSettlement(payments, remainder)


# ------------------------------------------------------------------ state


class FundingTick(NamedTuple):
    """One elapsed funding boundary: its time, rate, and the window behind it."""

    ts_ns: int
    rate_e8: int
    avg_premium_e8: int
    samples: int


class FundingState:
    """One market's funding window: the premium samples since the last boundary.

    Samples are taken whenever the core calls `sample` (for instance on every
    index update); the window's premium is their plain average, kept as a
    running sum and count, so every call is O(1).
    """

    __slots__ = (
        "clamp_e8",
        "impact_notional_e8",
        "interest_e8",
        "interval_ns",
        "next_funding_ns",
        "premium_count",
        "premium_sum",
    )

    def __init__(
        self,
        *,
        start_ns: int = 0,
        interval_ns: int = DEFAULT_INTERVAL_NS,
        interest_e8: int = DEFAULT_INTEREST_E8,
        clamp_e8: int = DEFAULT_CLAMP_E8,
        impact_notional_e8: int = DEFAULT_IMPACT_NOTIONAL_E8,
    ) -> None:
        """Open the first window at ``start_ns``; it closes at the next boundary.

        Raises:
            ValueError: if the interval, clamp or impact notional is not positive.
        """
        if interval_ns <= 0 or clamp_e8 < 0 or impact_notional_e8 <= 0:
            msg = (
                f"interval_ns ({interval_ns}) and impact_notional_e8 "
                f"({impact_notional_e8}) must be positive, "
                f"clamp_e8 ({clamp_e8}) >= 0"
            )
            raise ValueError(msg)
        self.interval_ns = interval_ns
        self.interest_e8 = interest_e8
        self.clamp_e8 = clamp_e8
        self.impact_notional_e8 = impact_notional_e8
        self.next_funding_ns = next_funding_time(start_ns, interval_ns)
        self.premium_sum = 0
        self.premium_count = 0

    def sample(
        self,
        ts_ns: int,
        index_e8: int | None,
        bids: Iterable[tuple[int, int]],
        asks: Iterable[tuple[int, int]],
    ) -> int:
        """Add one premium sample to the window and return it (E8 rate units).

        The sample is 0 without an index or when either side is too thin to
        fill the impact notional; a 0 sample still counts in the average.

        Args:
            ts_ns: exchange time of the sample; must be before the next boundary.
            index_e8: the index price, E8, or None.
            bids: (price E8, quantity E8) best first.
            asks: (price E8, quantity E8) best first.

        Raises:
            InvariantViolation: if ``ts_ns`` is at or past the next boundary
                (the caller must `advance` first, so a sample's window is fixed).
        """
        if ts_ns >= self.next_funding_ns:
            msg = (
                f"premium sample at {ts_ns} is past the unsettled boundary "
                f"{self.next_funding_ns}"
            )
            raise InvariantViolation(msg)
        premium = 0
        if index_e8 is not None:
            bid = impact_price(bids, self.impact_notional_e8, bid_side=True)
            ask = impact_price(asks, self.impact_notional_e8, bid_side=False)
            if bid is not None and ask is not None:
                premium = premium_index(index_e8, bid, ask)
        self.premium_sum += premium
        self.premium_count += 1
        return premium

    def average_premium(self) -> int:
        """Return the window's mean premium (E8 rate units, toward zero); 0 if empty."""
        if not self.premium_count:
            return 0
        # Rounds toward zero: floor of the magnitude, sign put back.
        magnitude = abs(self.premium_sum) // self.premium_count
        return magnitude if self.premium_sum >= 0 else -magnitude

    def predicted_rate(self) -> int:
        """Return the rate the window would settle at now (E8 rate units)."""
        return funding_rate(self.average_premium(), self.interest_e8, self.clamp_e8)

    def advance(self, ts_ns: int) -> list[FundingTick]:
        """Close every window whose boundary has elapsed at ``ts_ns``, in order.

        The first closes with the samples taken so far; any later one passed in
        the same move has no samples (premium 0, so its rate is the interest
        rate, clamped). Returns an empty list if no boundary has elapsed.
        """
        ticks = []
        while self.next_funding_ns <= ts_ns:
            avg = self.average_premium()
            rate = funding_rate(avg, self.interest_e8, self.clamp_e8)
            tick = FundingTick(self.next_funding_ns, rate, avg, self.premium_count)
            ticks.append(tick)
            self.next_funding_ns += self.interval_ns
            self.premium_sum = 0
            self.premium_count = 0
        return ticks

    def state_rows(self) -> list[object]:
        """Return the whole state as plain data in one canonical order, for hashing."""
        return [
            self.interval_ns,
            self.interest_e8,
            self.clamp_e8,
            self.impact_notional_e8,
            self.next_funding_ns,
            self.premium_sum,
            self.premium_count,
        ]

    @classmethod
    def from_rows(cls, rows: list[object]) -> FundingState:
        """Rebuild a state from `state_rows` output (a snapshot).

        Raises:
            ValueError: if the rows are not a `state_rows` list of ints.
        """
        match rows:
            case [
                int(interval),
                int(interest),
                int(clamp),
                int(notional),
                int(next_funding),
                int(total),
                int(count),
            ]:
                state = cls(
                    interval_ns=interval,
                    interest_e8=interest,
                    clamp_e8=clamp,
                    impact_notional_e8=notional,
                )
            case _:
                msg = "not a FundingState.state_rows list"
                raise ValueError(msg)
        state.next_funding_ns = next_funding
        state.premium_sum, state.premium_count = total, count
        return state
