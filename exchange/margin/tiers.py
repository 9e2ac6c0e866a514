"""Margin mathematics: tiered maintenance margin, liquidation and bankruptcy prices.

The rules are MARGIN.md's (Binance USD-M, one-way mode). Units: money and
notional are ints of 1e-8 USDT ("E8 money"); prices and quantities are ints of
1e-8 (E8, see `exchange.units`); rates are ints of parts per million (``*_ppm``:
0.40% is 4000). Inside, arithmetic is exact (ints and `Fraction`); each public
result is rounded once, at the end, in the exchange's favour, as its docstring
states. Position functions take the position as the ledger keeps it:

* ``size``: signed E8 quantity, positive long;
* ``cost``: signed E8 money, ``size * entry price`` (an exact `Fraction` is fine);
* ``wallet``: E8 money, the position's isolated wallet or the cross wallet;
* ``other_mm``, ``other_upnl``: E8 money, MM and UPNL of the account's other
  cross positions at their own marks (MARGIN.md's TMM1 and UPNL1; 0 isolated);
* ``schedule``: the market's `TierTable`, or one explicit `MaintenanceRate`.

Liquidation price without a tier loop: with ``cum`` derived, MM is continuous and
its slopes (MMR) never decrease, so MM is convex and equals the maximum of its
tiers' lines ``notional * MMR_k - cum_k``. Margin balance minus MM is then the
minimum of one linear function of the mark per tier, and MARGIN.md's "recompute
with the tier that ``q * LP`` falls in" has exactly one fixed point: the largest
per-tier candidate for a long, the smallest for a short. It cannot oscillate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import Any

import msgspec
from msgspec.structs import replace

from exchange.units import PPM, SCALE, ceil_div, e8_str, to_e8

__all__ = [
    "BTC_TIERS",
    "DEFAULT_TIERS",
    "ETH_TIERS",
    "MaintenanceRate",
    "MaintenanceSchedule",
    "MarginTier",
    "TierTable",
    "bankruptcy_price",
    "liquidation_price",
    "margin_balance_at",
    "notional",
    "position_bankruptcy_price",
    "position_liquidation_price",
    "position_maintenance_margin",
    "unrealized_pnl",
]


def _line_mm(notional: Fraction | int, mmr_ppm: int, cum: int) -> int:
    """Return ``notional * MMR - cum`` in E8 money, rounded up, never negative."""
    # Rounds up (the exchange's favour: maintenance margin is never understated).
    # Integer arithmetic only (it runs for every position check): for a
    # notional n/d, ceil((n*mmr - cum*PPM*d) / (PPM*d)).
    if isinstance(notional, int):
        num, den = notional * mmr_ppm - cum * PPM, PPM
    else:
        d = notional.denominator
        num, den = notional.numerator * mmr_ppm - cum * PPM * d, PPM * d
    return max(0, ceil_div(num, den))


def notional(price_e8: int, qty_e8: int) -> int:
    """Return ``price * qty`` (E8 price, signed E8 qty): E8 money, toward zero."""
    product = price_e8 * qty_e8
    # Rounds toward zero: down for a long, up for a short.
    return product // SCALE if product >= 0 else ceil_div(product, SCALE)


class MarginTier(msgspec.Struct, frozen=True, kw_only=True):
    """One bracket, for notionals in ``[floor, cap)``: E8 money, ``mmr_ppm`` ppm."""

    floor: int
    cap: int
    max_leverage: int
    mmr_ppm: int
    cum: int = 0

    def __post_init__(self) -> None:
        """Refuse an empty bracket, a leverage below 1 or an impossible rate."""
        checks = (
            (not 0 <= self.floor < self.cap, "need 0 <= floor < cap"),
            (self.max_leverage < 1, "max_leverage must be at least 1"),
            (not 0 < self.mmr_ppm < PPM, "mmr_ppm must be in (0, 1000000)"),
            (self.mmr_ppm * self.max_leverage >= PPM, "MMR must be < 1/max_leverage"),
            (self.cum < 0, "cum must not be negative"),
        )
        problem = next((text for bad, text in checks if bad), None)
        if problem:
            msg = f"tier [{e8_str(self.floor)}, {e8_str(self.cap)}): {problem}"
            raise ValueError(msg)


class MaintenanceRate(msgspec.Struct, frozen=True, kw_only=True):
    """One explicit rate (ppm) and cum (E8 money) instead of a market's table.

    MM = ``notional * MMR - cum``, never negative (MARGIN.md's large-wallet vectors).
    """

    mmr_ppm: int
    cum: int = 0

    def __post_init__(self) -> None:
        """Refuse a rate outside (0, 100%) or a negative cum."""
        if not 0 < self.mmr_ppm < PPM or self.cum < 0:
            msg = f"need 0 < mmr_ppm < 1000000 and cum >= 0, got {self}"
            raise ValueError(msg)

    def lines(self) -> tuple[tuple[int, int], ...]:
        """Return the (mmr_ppm, cum) lines whose maximum is MM (zero line included)."""
        return ((0, 0), (self.mmr_ppm, self.cum))


class TierTable(msgspec.Struct, frozen=True):
    """A market's maintenance-margin brackets (build one with `of` or `from_rows`).

    Contiguous from 0, max leverage never rising, MMR never falling, cum derived.
    """

    tiers: tuple[MarginTier, ...]

    def __post_init__(self) -> None:
        """Refuse a table that is empty, gapped, non-monotone or with a wrong cum."""
        if not self.tiers or self.tiers[0].floor != 0 or self.tiers[0].cum != 0:
            msg = "a tier table needs tiers, the first at a floor of 0 with cum 0"
            raise ValueError(msg)
        pairs = zip(self.tiers, self.tiers[1:], strict=False)
        for n, (prev, tier) in enumerate(pairs, start=2):
            derived = _next_cum(prev, tier.floor, tier.mmr_ppm, n)
            checks = (
                (tier.floor != prev.cap, "its floor is not the previous cap"),
                (tier.max_leverage > prev.max_leverage, "max_leverage rises"),
                (tier.cum != derived, f"cum is not the derived {e8_str(derived)}"),
            )
            problem = next((text for bad, text in checks if bad), None)
            if problem:
                msg = f"tier {n}: {problem}"
                raise ValueError(msg)

    @classmethod
    def of(cls, rows: Iterable[tuple[int, int, int, int]]) -> TierTable:
        """Build a table from ``(floor, cap, max_leverage, mmr_ppm)`` rows.

        ``floor`` and ``cap`` are E8 money. Each ``cum`` is derived exactly:
        ``cum_n = floor_n * (MMR_n - MMR_n-1) + cum_n-1``.

        Raises:
            ValueError: for an invalid table, or a cum finer than 1e-8 (never rounded).
        """
        tiers: list[MarginTier] = []
        for n, (f, c, lev, mmr) in enumerate(rows, start=1):
            cum = _next_cum(tiers[-1], f, mmr, n) if tiers else 0
            tier = MarginTier(floor=f, cap=c, max_leverage=lev, mmr_ppm=mmr, cum=cum)
            tiers.append(tier)
        return cls(tuple(tiers))

    @property
    def max_notional(self) -> int:
        """Return the last tier's cap (E8 money), the ledger's position limit."""
        return self.tiers[-1].cap

    def tier_for(self, notional: int) -> MarginTier:
        """Return the tier with ``floor <= notional < cap`` (E8 money).

        At or beyond the last cap: the last tier (refusing such a position is the
        ledger's position limit, `max_notional`).

        Raises:
            ValueError: for a negative notional.
        """
        if notional < 0:
            msg = f"notional must not be negative, got {notional}"
            raise ValueError(msg)
        for tier in self.tiers:
            if notional < tier.cap:
                return tier
        return self.tiers[-1]

    def maintenance_margin(self, notional: int) -> int:
        """Return the MM of ``notional`` by its tier (E8 money), rounded up, >= 0."""
        tier = self.tier_for(notional)
        return _line_mm(notional, tier.mmr_ppm, tier.cum)

    def max_leverage_for(self, notional: int) -> int:
        """Return the max leverage of the tier holding ``notional`` (E8 money)."""
        return self.tier_for(notional).max_leverage

    def initial_margin(self, notional: int, leverage: int) -> int:
        """Return ``notional / leverage`` (E8 money), rounded up; no max checked.

        Raises:
            ValueError: if ``leverage`` is below 1.
        """
        if leverage < 1:
            msg = f"leverage must be at least 1, got {leverage}"
            raise ValueError(msg)
        # Rounds up: initial margin is never understated (the exchange's favour).
        return ceil_div(notional, leverage)

    def lines(self) -> tuple[tuple[int, int], ...]:
        """Return each tier's (mmr_ppm, cum): MM is their maximum (MM is convex)."""
        return tuple((t.mmr_ppm, t.cum) for t in self.tiers)

    def as_rows(self) -> list[dict[str, str | int]]:
        """Return TOML-shaped rows of decimal strings (inverse of `from_rows`)."""
        return [
            {
                "floor": e8_str(t.floor),
                "cap": e8_str(t.cap),
                "max_leverage": t.max_leverage,
                "mmr": e8_str(t.mmr_ppm * (SCALE // PPM)),  # exact: 1 ppm is 100 E8
                "cum": e8_str(t.cum),
            }
            for t in self.tiers
        ]

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]]) -> TierTable:
        """Build a table from TOML-style rows.

        Each row has ``floor`` and ``cap`` (USDT, decimal strings or numbers),
        ``max_leverage`` (int) and either ``mmr`` (a decimal fraction, ``"0.004"``,
        or a percent, ``"0.4%"``) or ``mmr_ppm`` (int). An optional ``cum`` (USDT)
        must equal the derived one.

        Raises:
            ValueError: for unknown or missing keys, a wrong type, a rate finer
                than 1 ppm, an amount finer than 1e-8, a stated cum that is not
                the derived one, or an invalid table.
        """
        parsed = [msgspec.convert(row, _Row) for row in rows]
        table = cls.of(row.tier(n) for n, row in enumerate(parsed, start=1))
        return cls(
            tuple(
                tier if row.cum is None else replace(tier, cum=to_e8(str(row.cum)))
                for tier, row in zip(table.tiers, parsed, strict=True)
            )
        )  # a stated cum other than the derived one fails validation


class _Row(msgspec.Struct, forbid_unknown_fields=True):
    """One tier as configured (see `TierTable.from_rows`)."""

    floor: str | int | float
    cap: str | int | float
    max_leverage: int
    mmr: str | float | None = None
    mmr_ppm: int | None = None
    cum: str | int | float | None = None

    def tier(self, n: int) -> tuple[int, int, int, int]:
        """Return (floor, cap, max_leverage, mmr_ppm) with exact E8 and ppm ints."""
        if (self.mmr is None) == (self.mmr_ppm is None):
            msg = f"tier {n}: give exactly one of mmr and mmr_ppm"
            raise ValueError(msg)
        mmr_ppm = self.mmr_ppm
        if mmr_ppm is None:
            text = str(self.mmr).strip()
            # 1 ppm is 100 E8 of a fraction, and 10**4 E8 of a percent.
            per_ppm = 10**4 if text.endswith("%") else SCALE // PPM
            scaled = to_e8(text.removesuffix("%"))
            if scaled % per_ppm:
                msg = f"tier {n}: mmr {text!r} is more precise than 1 ppm"
                raise ValueError(msg)
            mmr_ppm = scaled // per_ppm  # exact: divisibility was just checked
        floor, cap = to_e8(str(self.floor)), to_e8(str(self.cap))
        return floor, cap, self.max_leverage, mmr_ppm


MaintenanceSchedule = TierTable | MaintenanceRate
"""What sets a position's MM: a market's tier table, or one explicit rate."""


def _next_cum(prev: MarginTier, floor: int, mmr_ppm: int, n: int) -> int:
    """Return ``floor * (MMR - MMR_prev) + cum_prev`` exactly (E8 money)."""
    if mmr_ppm < prev.mmr_ppm:
        msg = f"tier {n}: mmr falls"
        raise ValueError(msg)
    numerator = floor * (mmr_ppm - prev.mmr_ppm)
    if numerator % PPM:
        msg = f"tier {n}: floor * MMR step is not a whole number of 1e-8 USDT"
        raise ValueError(msg)
    return numerator // PPM + prev.cum  # exact: divisibility was just checked


def _binance_table(last_cap_usdt: int) -> TierTable:
    """Return Binance's first five BTC/ETH brackets, the last capped as given."""
    bounds = [0, 50_000, 600_000, 3_000_000, 12_000_000, last_cap_usdt]
    rates = [(125, 4_000), (100, 5_000), (75, 6_500), (50, 10_000), (25, 20_000)]
    return TierTable.of(
        (bounds[i] * SCALE, bounds[i + 1] * SCALE, lev, mmr)
        for i, (lev, mmr) in enumerate(rates)
    )


BTC_TIERS = _binance_table(70_000_000)
"""MARGIN.md's BTC-PERP table (Binance BTCUSDT, snapshot 2024-10, first tiers)."""
ETH_TIERS = _binance_table(50_000_000)
"""Binance ETHUSDT's first five brackets, for ETH-PERP."""
DEFAULT_TIERS: dict[str, TierTable] = {"BTC-PERP": BTC_TIERS, "ETH-PERP": ETH_TIERS}


def unrealized_pnl(size: int, cost: int, mark_price_e8: int) -> int:
    """Return ``size * mark - cost`` (E8 money), rounded down (never overstated)."""
    # Rounds down (floor division): the trader's PnL is never overstated.
    return (size * mark_price_e8 - cost * SCALE) // SCALE


def margin_balance_at(
    size: int, cost: int, wallet: int, mark_price_e8: int, *, other_upnl: int = 0
) -> int:
    """Return ``wallet + other_upnl + UPNL`` at an E8 mark; UPNL rounded down."""
    return wallet + other_upnl + unrealized_pnl(size, cost, mark_price_e8)


def position_maintenance_margin(
    size: int, mark_price_e8: int, schedule: MaintenanceSchedule
) -> int:
    """Return a position's MM at an E8 mark: exact ``|size| * mark``, rounded up."""
    exact = Fraction(abs(size) * mark_price_e8, SCALE)
    if isinstance(schedule, MaintenanceRate):
        return _line_mm(exact, schedule.mmr_ppm, schedule.cum)
    # Tiers have integer bounds, so the notional's floor finds its tier.
    tier = schedule.tier_for(math.floor(exact))
    return _line_mm(exact, tier.mmr_ppm, tier.cum)


def _rounded_price(exact: Fraction, long: bool) -> int | None:
    """Round a long's price up and a short's down; None unless positive."""
    rounded = math.ceil(exact) if long else math.floor(exact)
    return rounded if exact > 0 and rounded > 0 else None


def position_liquidation_price(
    size: int,
    cost: int | Fraction,
    wallet: int,
    schedule: MaintenanceSchedule,
    *,
    other_mm: int = 0,
    other_upnl: int = 0,
) -> int | None:
    """Return the mark price at which margin balance falls to MM (MARGIN.md).

    ``LP = (WB - TMM1 + UPNL1 + cum - side*q*EP) / (q*MMR - side*q)`` with the
    tier of ``q * LP`` (the module docstring shows why no loop is needed).

    Returns:
        The E8 price, rounded to the side that liquidates earlier (a long up, a
        short down): every E8 mark at which the position is liquidatable lies at
        or beyond it. None for a flat position or when the exact price is not
        positive: a long is then never liquidated at a positive price, while a
        short is liquidatable at every price (its margin check shows it).
    """
    if size == 0:
        return None
    qty, base = abs(size), wallet - other_mm + other_upnl - cost
    # base may be a Fraction (n/d): carry its denominator instead of Fractions.
    if isinstance(base, Fraction):
        num, den = base.numerator, base.denominator
    else:
        num, den = base, 1
    # Exactly, LP in E8 is the base plus cum, times 1e14, over q*mmr - size*1e6.
    # Rounding each candidate first (a long up, a short down) keeps which one is
    # largest or smallest, so the max of the rounded is the rounded max: ints only.
    if size > 0:
        rounded = max(
            ceil_div((num + cum * den) * SCALE * PPM, den * (qty * mmr - size * PPM))
            for mmr, cum in schedule.lines()
        )
    else:
        rounded = min(
            ((num + cum * den) * SCALE * PPM) // (den * (qty * mmr - size * PPM))
            for mmr, cum in schedule.lines()
        )
    return rounded if rounded > 0 else None


def position_bankruptcy_price(
    size: int, cost: int | Fraction, wallet: int, *, other_upnl: int = 0
) -> int | None:
    """Return the mark price at which margin balance falls to zero.

    Isolated long ``EP - WB/q``, short ``EP + WB/q`` (``other_upnl`` 0).

    Returns:
        The E8 price, rounded to the side where the trader is bankrupt earlier (a
        long up, a short down), so closing there never leaves the margin negative:
        the rounding can only give dust to the insurance fund, never draw on it.
        None for a flat position or when the exact price is not positive.
    """
    if size == 0:
        return None
    # Exact: BP_e8 = (cost - wallet - other_upnl) * 1e8 / size.
    exact = Fraction((cost - wallet - other_upnl) * SCALE) / size
    return _rounded_price(exact, size > 0)


def _signed(side: int, qty_e8: int, entry_price_e8: int) -> tuple[int, Fraction]:
    """Return (size, exact cost) of a side, a positive quantity and an entry price."""
    if side not in {1, -1} or qty_e8 <= 0:
        msg = f"need side +1 or -1 and a positive quantity, got {side}, {qty_e8}"
        raise ValueError(msg)
    return side * qty_e8, Fraction(side * qty_e8 * entry_price_e8, SCALE)


def liquidation_price(
    side: int,
    qty_e8: int,
    entry_price_e8: int,
    wallet: int,
    tiers: MaintenanceSchedule,
    other_mm: int = 0,
    other_upnl: int = 0,
) -> int | None:
    """Return `position_liquidation_price` of ``side`` (+1/-1), ``q`` and ``EP``.

    Raises:
        ValueError: if ``side`` is not +1 or -1, or ``qty_e8`` is not positive.
    """
    size, cost = _signed(side, qty_e8, entry_price_e8)
    return position_liquidation_price(
        size, cost, wallet, tiers, other_mm=other_mm, other_upnl=other_upnl
    )


def bankruptcy_price(
    side: int, qty_e8: int, entry_price_e8: int, wallet: int
) -> int | None:
    """Return `position_bankruptcy_price` of ``side`` (+1/-1), ``q`` and ``EP``.

    Raises:
        ValueError: if ``side`` is not +1 or -1, or ``qty_e8`` is not positive.
    """
    size, cost = _signed(side, qty_e8, entry_price_e8)
    return position_bankruptcy_price(size, cost, wallet)
