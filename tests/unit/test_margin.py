"""Margin mathematics: tier tables, MARGIN.md's vectors, the liquidation identity."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.margin.tiers import (
    BTC_TIERS,
    DEFAULT_TIERS,
    ETH_TIERS,
    MaintenanceRate,
    MaintenanceSchedule,
    TierTable,
    bankruptcy_price,
    liquidation_price,
    margin_balance_at,
    notional,
    position_bankruptcy_price,
    position_liquidation_price,
    position_maintenance_margin,
    unrealized_pnl,
)
from exchange.units import PPM, SCALE, from_e8, to_e8

E8 = SCALE
LONG, SHORT = 1, -1


def rounded(value_e8: int | None, places: int = 2) -> Decimal:
    """Return an E8 int as a Decimal rounded to ``places`` decimals."""
    assert value_e8 is not None
    return from_e8(value_e8).quantize(Decimal(1).scaleb(-places))


def gap(
    size: int,
    cost: int | Fraction,
    wallet: int,
    schedule: MaintenanceSchedule,
    other_mm: int = 0,
    other_upnl: int = 0,
    *,
    price: int,
) -> Fraction:
    """Return the exact margin balance minus total MM at an E8 mark (E8 money).

    Evaluated directly (tier of the notional, no solved formula): the position is
    liquidatable at ``price`` exactly when this is <= 0.
    """
    exact_notional = Fraction(abs(size) * price, E8)
    if isinstance(schedule, MaintenanceRate):
        mmr_ppm, cum = schedule.mmr_ppm, schedule.cum
    else:
        tier = schedule.tier_for(math.floor(exact_notional))
        mmr_ppm, cum = tier.mmr_ppm, tier.cum
    mm = max(Fraction(0), exact_notional * mmr_ppm / PPM - cum)
    balance = wallet + other_upnl + Fraction(size * price, E8) - cost
    return balance - other_mm - mm


def recheck_loop(size: int, cost: int, wallet: int, table: TierTable) -> Fraction:
    """Return MARGIN.md's LP by re-checking the tier until it holds (exact).

    Starts from the tier of the entry notional, as a reader of MARGIN.md would.
    """
    qty = abs(size)
    tier = table.tier_for(abs(cost))
    for _ in range(len(table.tiers) + 1):
        lp = Fraction(
            (wallet - cost + tier.cum) * E8 * PPM, qty * tier.mmr_ppm - size * PPM
        )
        following = table.tier_for(max(0, math.floor(qty * lp / E8)))
        if following == tier:
            return lp
        tier = following
    msg = "the tier re-check did not settle"
    raise AssertionError(msg)


@st.composite
def tier_tables(draw: st.DrawFn) -> TierTable:
    """Draw a valid table: whole-USDT bounds, rising MMR, falling leverage."""
    n = draw(st.integers(1, 6))
    caps = sorted(draw(st.sets(st.integers(1, 10**8), min_size=n, max_size=n)))
    rates = sorted(draw(st.lists(st.integers(1, 100_000), min_size=n, max_size=n)))
    rows, leverage, floor = [], 125, 0
    for cap, mmr_ppm in zip(caps, rates, strict=True):
        leverage = draw(st.integers(1, min(leverage, (PPM - 1) // mmr_ppm)))
        rows.append((floor * E8, cap * E8, leverage, mmr_ppm))
        floor = cap
    return TierTable.of(rows)


schedules = st.one_of(
    st.sampled_from([BTC_TIERS, ETH_TIERS]),
    tier_tables(),
    st.builds(
        MaintenanceRate,
        mmr_ppm=st.integers(1, 200_000),
        cum=st.integers(0, 10**6 * E8),
    ),
)
sizes = st.integers(10**5, 10**11).flatmap(lambda q: st.sampled_from([q, -q]))
prices = st.integers(E8, 10**5 * E8)
wallets = st.integers(0, 10**7 * E8)


class TestTierTable:
    """The default tables, tier lookup, MM and IM."""

    def test_btc_table_derives_margin_md_cum_values(self):
        """BTC-PERP's cum values are 0, 50, 950, 11,450 and 131,450 USDT."""
        assert [t.cum for t in BTC_TIERS.tiers] == [
            to_e8(v) for v in ("0", "50", "950", "11450", "131450")
        ]
        assert [(t.max_leverage, t.mmr_ppm) for t in BTC_TIERS.tiers] == [
            (125, 4000), (100, 5000), (75, 6500), (50, 10_000), (25, 20_000),
        ]  # fmt: skip
        assert BTC_TIERS.max_notional == to_e8("70000000")

    def test_eth_table_has_binance_brackets_and_same_cum(self):
        """ETH-PERP has Binance ETHUSDT's five brackets, capped at 50M USDT."""
        assert [t.cum for t in ETH_TIERS.tiers] == [t.cum for t in BTC_TIERS.tiers]
        assert [t.floor for t in ETH_TIERS.tiers[1:]] == [
            to_e8(v) for v in ("50000", "600000", "3000000", "12000000")
        ]
        assert ETH_TIERS.max_notional == to_e8("50000000")

    def test_default_tiers_are_keyed_by_market_symbol(self):
        """DEFAULT_TIERS maps BTC-PERP and ETH-PERP to their tables."""
        assert DEFAULT_TIERS == {"BTC-PERP": BTC_TIERS, "ETH-PERP": ETH_TIERS}

    @pytest.mark.parametrize(
        ("usdt", "tier_index"),
        [("0", 0), ("49999.99999999", 0), ("50000", 1), ("599999", 1),
         ("600000", 2), ("12000000", 4), ("69999999", 4), ("70000000", 4),
         ("90000000", 4)],
    )  # fmt: skip
    def test_tier_for_includes_floor_excludes_cap_and_extends_last(
        self, usdt, tier_index
    ):
        """A notional belongs to floor <= n < cap; beyond the last cap, the last."""
        assert BTC_TIERS.tier_for(to_e8(usdt)) is BTC_TIERS.tiers[tier_index]

    def test_negative_notional_has_no_tier(self):
        """A negative notional is a caller bug, refused."""
        with pytest.raises(ValueError, match="negative"):
            BTC_TIERS.tier_for(-1)

    def test_maintenance_margin_matches_margin_md_vectors(self):
        """MM is 120 at 0.5 x 60,000 and 1,450 at 5 x 60,000."""
        assert BTC_TIERS.maintenance_margin(notional(60_000 * E8, E8 // 2)) == 120 * E8
        assert BTC_TIERS.maintenance_margin(notional(60_000 * E8, 5 * E8)) == 1450 * E8
        assert position_maintenance_margin(5 * E8, 60_000 * E8, BTC_TIERS) == 1450 * E8

    def test_maintenance_margin_rounds_up(self):
        """MM of 1e-8 USDT of notional is a whole unit, not zero."""
        assert BTC_TIERS.maintenance_margin(1) == 1
        assert BTC_TIERS.maintenance_margin(0) == 0
        assert position_maintenance_margin(-3, E8 // 2, BTC_TIERS) == 1

    def test_max_leverage_follows_the_notional_tier(self):
        """Max leverage is 125 below 50,000 USDT and 100 from 50,000."""
        assert BTC_TIERS.max_leverage_for(to_e8("49999")) == 125
        assert BTC_TIERS.max_leverage_for(to_e8("50000")) == 100

    def test_initial_margin_is_notional_over_leverage_rounded_up(self):
        """IM is 3,000 for 30,000 at 10x and rounds a remainder up."""
        assert BTC_TIERS.initial_margin(30_000 * E8, 10) == 3000 * E8
        assert BTC_TIERS.initial_margin(10, 3) == 4
        with pytest.raises(ValueError, match="leverage"):
            BTC_TIERS.initial_margin(10, 0)

    def test_mm_is_continuous_at_every_default_tier_floor(self):
        """At each floor the previous tier's line and the new one give the same MM."""
        for table in (BTC_TIERS, ETH_TIERS):
            for prev, tier in zip(table.tiers, table.tiers[1:], strict=False):
                below = Fraction(tier.floor * prev.mmr_ppm, PPM) - prev.cum
                assert below == Fraction(tier.floor * tier.mmr_ppm, PPM) - tier.cum
                assert table.maintenance_margin(tier.floor) == below

    @given(table=tier_tables(), data=st.data())
    def test_mm_is_continuous_at_floors_of_any_valid_table(self, table, data):
        """Derived cum makes MM continuous at every floor of a random table."""
        tier = data.draw(st.sampled_from(table.tiers))
        if tier.floor:
            prev = table.tier_for(tier.floor - 1)
            below = Fraction(tier.floor * prev.mmr_ppm, PPM) - prev.cum
            assert table.maintenance_margin(tier.floor) == math.ceil(below)

    @given(table=st.one_of(st.just(BTC_TIERS), tier_tables()), data=st.data())
    def test_mm_is_non_negative_non_decreasing_and_the_max_of_lines(self, table, data):
        """MM >= 0, grows with notional, and equals the largest tier line (convex)."""
        a, b = sorted(
            data.draw(st.lists(st.integers(0, 10**17), min_size=2, max_size=2))
        )
        mm_a = table.maintenance_margin(a)
        assert 0 <= mm_a <= table.maintenance_margin(b)
        lines = (Fraction(a * mmr, PPM) - cum for mmr, cum in table.lines())
        assert mm_a == math.ceil(max(lines))


class TestTierTableValidation:
    """Bad tables are refused with a message naming the problem."""

    ROWS = ((0, 100 * E8, 20, 10_000), (100 * E8, 200 * E8, 10, 20_000))

    @pytest.mark.parametrize(
        ("rows", "message"),
        [
            ((), "needs tiers"),
            (((E8, 100 * E8, 20, 10_000),), "floor of 0"),
            ((ROWS[0], (101 * E8, 200 * E8, 10, 20_000)), "not the previous cap"),
            ((ROWS[0], (100 * E8, 200 * E8, 30, 20_000)), "max_leverage rises"),
            ((ROWS[0], (100 * E8, 200 * E8, 10, 5_000)), "mmr falls"),
            (((0, 100 * E8, 20, 0),), "mmr_ppm"),
            (((0, 100 * E8, 0, 10_000),), "max_leverage"),
            (((0, 100 * E8, 100, 10_000),), "1/max_leverage"),
            (((0, 0, 20, 10_000),), "floor < cap"),
            (((0, 3, 20, 10_000), (3, 10, 10, 20_001)), "finer|whole number"),
        ],
    )
    def test_invalid_table_is_refused(self, rows, message):
        """Gaps, rising leverage, falling or impossible MMR and inexact cum fail."""
        with pytest.raises(ValueError, match=message):
            TierTable.of(rows)

    def test_hand_built_table_with_wrong_cum_is_refused(self):
        """A TierTable whose cum is not the derived one is refused."""
        first, second = TierTable.of(self.ROWS).tiers
        wrong = msgspec.structs.replace(second, cum=second.cum + 1)
        with pytest.raises(ValueError, match="derived"):
            TierTable((first, wrong))

    def test_explicit_rate_must_be_a_fraction_below_one(self):
        """A MaintenanceRate of 0 or 100% or a negative cum is refused."""
        for mmr_ppm, cum in ((0, 0), (PPM, 0), (1000, -1)):
            with pytest.raises(ValueError, match="mmr_ppm"):
                MaintenanceRate(mmr_ppm=mmr_ppm, cum=cum)


class TestTierRows:
    """TOML-style rows: decimal strings, percent or ppm, exact or refused."""

    def test_rows_round_trip(self):
        """as_rows gives decimal strings that from_rows turns back into the table."""
        rows = BTC_TIERS.as_rows()
        assert rows[1] == {
            "floor": "50000", "cap": "600000", "max_leverage": 100,
            "mmr": "0.005", "cum": "50",
        }  # fmt: skip
        assert TierTable.from_rows(rows) == BTC_TIERS

    def test_rate_is_read_as_fraction_percent_or_ppm(self):
        """A rate of "0.0065", "0.65%" or 6500 ppm is the same rate."""
        base = {"floor": "0", "cap": "50000", "max_leverage": 125}
        for rate in ({"mmr": "0.0065"}, {"mmr": "0.65%"}, {"mmr_ppm": 6500}):
            table = TierTable.from_rows([base | rate])
            assert table.tiers[0].mmr_ppm == 6500
        assert TierTable.from_rows([base | {"mmr": 0.004}]).tiers[0].mmr_ppm == 4000

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ({"mmr": "0.0040001"}, "more precise than 1 ppm"),
            ({"mmr": "0.00000000001"}, "more than 8 decimals"),
            ({"mmr_ppm": 4000}, "exactly one"),
            ({"leverage": 5}, "unknown field"),
            ({"max_leverage": True}, "Expected `int`"),
            ({"cap": "1.000000001"}, "more than 8 decimals"),
            ({"cum": "1"}, "floor of 0 with cum 0"),
        ],
    )
    def test_bad_rows_are_refused(self, change, message):
        """Too precise, ambiguous, unknown, mistyped or inconsistent rows fail."""
        row = {"floor": "0", "cap": "50000", "max_leverage": 125, "mmr": "0.004"}
        with pytest.raises(ValueError, match=message):
            TierTable.from_rows([row | change])

    def test_stated_cum_must_equal_the_derived_one(self):
        """A row stating cum 51 where 50 is derived is refused."""
        rows = BTC_TIERS.as_rows()
        rows[1]["cum"] = "51"
        with pytest.raises(ValueError, match="derived 50"):
            TierTable.from_rows(rows)


class TestVectors:
    """MARGIN.md's vectors, rounded to the decimals it states."""

    def test_isolated_long_tier_one(self):
        """Long 0.5 @ 60,000 with 3,000: LP 54,216.87, bankruptcy 54,000."""
        lp = liquidation_price(LONG, E8 // 2, 60_000 * E8, 3000 * E8, BTC_TIERS)
        assert rounded(lp) == Decimal("54216.87")
        assert lp == 5_421_686_746_988  # exact 54216.867469879..., rounded up
        assert bankruptcy_price(LONG, E8 // 2, 60_000 * E8, 3000 * E8) == 54_000 * E8

    def test_isolated_short_tier_one(self):
        """Short 0.5 @ 60,000 with 3,000: LP 65,737.05, bankruptcy 66,000."""
        lp = liquidation_price(SHORT, E8 // 2, 60_000 * E8, 3000 * E8, BTC_TIERS)
        assert rounded(lp) == Decimal("65737.05")
        assert lp == 6_573_705_179_282  # exact 65737.051792828..., rounded down
        assert bankruptcy_price(SHORT, E8 // 2, 60_000 * E8, 3000 * E8) == 66_000 * E8

    def test_isolated_long_tier_two(self):
        """Long 5 @ 60,000 with 15,000: LP 57,276.38, bankruptcy 57,000."""
        lp = liquidation_price(LONG, 5 * E8, 60_000 * E8, 15_000 * E8, BTC_TIERS)
        assert rounded(lp) == Decimal("57276.38")
        assert bankruptcy_price(LONG, 5 * E8, 60_000 * E8, 15_000 * E8) == 57_000 * E8

    @pytest.mark.parametrize(
        ("qty", "entry", "mmr_ppm", "cum", "expected"),
        [
            ("3683.979", "1456.84", 100_000, "135365", "1114.78"),
            ("109.488", "32481.98", 25_000, "16300", "18778.73"),
        ],
    )
    def test_isolated_long_large_wallet(self, qty, entry, mmr_ppm, cum, expected):
        """A 1,535,443.01 wallet with an explicit MMR and cum gives the stated LP."""
        rate = MaintenanceRate(mmr_ppm=mmr_ppm, cum=to_e8(cum))
        wallet = to_e8("1535443.01")
        lp = liquidation_price(LONG, to_e8(qty), to_e8(entry), wallet, rate)
        assert rounded(lp) == Decimal(expected)

    @pytest.mark.parametrize(
        ("side", "expected"), [(LONG, "8.0707"), (SHORT, "11.8911")]
    )
    def test_isolated_unit(self, side, expected):
        """EP 10, q 1, WB 2, MMR 1%, cum 0.01: long 8.0707, short 11.8911."""
        rate = MaintenanceRate(mmr_ppm=10_000, cum=to_e8("0.01"))
        lp = liquidation_price(side, E8, 10 * E8, 2 * E8, rate)
        assert rounded(lp, 4) == Decimal(expected)

    def test_ledger_signature_gives_the_same_prices(self):
        """Signed size and cost give what side, quantity and entry price give."""
        size, cost = -E8 // 2, notional(60_000 * E8, -E8 // 2)
        assert position_liquidation_price(
            size, cost, 3000 * E8, BTC_TIERS
        ) == liquidation_price(SHORT, E8 // 2, 60_000 * E8, 3000 * E8, BTC_TIERS)
        assert position_bankruptcy_price(size, cost, 3000 * E8) == 66_000 * E8

    def test_cross_long_with_a_losing_short_on_another_market(self):
        """BTC long LP under cross counts the ETH short's MM and loss, and re-tiers.

        Cross wallet 10,000; long 1 BTC @ 60,000; short 10 ETH @ 3,000 marked at
        3,100 (MM 124, UPNL -1,000). Tier 1 alone gives 51,329.32, whose notional
        is in tier 2; tier 2 gives 51,330.65, consistent.
        """
        other_mm = position_maintenance_margin(-10 * E8, 3100 * E8, ETH_TIERS)
        assert other_mm == 124 * E8
        wallet, other_upnl = 10_000 * E8, -1000 * E8
        lp = liquidation_price(
            LONG, E8, 60_000 * E8, wallet, BTC_TIERS, other_mm, other_upnl
        )
        assert rounded(lp) == Decimal("51330.65")
        assert BTC_TIERS.tier_for(notional(lp, E8)) is BTC_TIERS.tiers[1]
        cost = 60_000 * E8
        args = (E8, cost, wallet, BTC_TIERS, other_mm, other_upnl)
        assert gap(*args, price=lp) >= 0
        assert gap(*args, price=lp - 1) < 0
        balance = margin_balance_at(E8, cost, wallet, lp, other_upnl=other_upnl)
        total_mm = other_mm + position_maintenance_margin(E8, lp, BTC_TIERS)
        assert abs(balance - total_mm) <= 2

    def test_cross_short_held_up_by_a_winning_long(self):
        """ETH short LP under cross counts the BTC long's MM 255 and profit 1,000."""
        other_mm = position_maintenance_margin(E8, 61_000 * E8, BTC_TIERS)
        assert other_mm == 255 * E8
        lp = liquidation_price(
            SHORT, 10 * E8, 3000 * E8, 10_000 * E8, ETH_TIERS, other_mm, 1000 * E8
        )
        assert rounded(lp) == Decimal("4058.27")
        assert lp == 405_826_693_227  # exact 4058.266932270..., rounded down
        isolated = liquidation_price(SHORT, 10 * E8, 3000 * E8, 10_000 * E8, ETH_TIERS)
        assert isolated is not None
        assert lp > isolated  # the winning long holds the short up

    def test_tier_re_check_moves_to_the_tier_of_the_liquidation_notional(self):
        """Long 10.5 @ 60,000 (tier 3) with 63,000 liquidates at 54,266.57 in tier 2."""
        size, cost, wallet = 1050 * E8 // 100, 630_000 * E8, 63_000 * E8
        assert BTC_TIERS.tier_for(cost) is BTC_TIERS.tiers[2]
        lp = position_liquidation_price(size, cost, wallet, BTC_TIERS)
        assert rounded(lp) == Decimal("54266.57")
        assert BTC_TIERS.tier_for(notional(lp, size)) is BTC_TIERS.tiers[1]
        assert lp == math.ceil(recheck_loop(size, cost, wallet, BTC_TIERS))


class TestEdges:
    """Flat positions, no liquidation price, bad arguments, PnL rounding."""

    def test_flat_position_has_no_prices(self):
        """Size 0 has neither a liquidation nor a bankruptcy price."""
        assert position_liquidation_price(0, 0, E8, BTC_TIERS) is None
        assert position_bankruptcy_price(0, 0, E8) is None

    def test_fully_funded_long_has_no_prices(self):
        """A 1x long with its whole cost as margin and more is never liquidated."""
        assert liquidation_price(LONG, E8, 100 * E8, 101 * E8, BTC_TIERS) is None
        assert bankruptcy_price(LONG, E8, 100 * E8, 100 * E8) is None

    def test_short_underwater_at_every_price_has_no_price(self):
        """A cross short whose other losses exceed everything gets None."""
        lp = liquidation_price(SHORT, E8, 100 * E8, E8, BTC_TIERS, 0, -200 * E8)
        assert lp is None
        assert (
            position_bankruptcy_price(-E8, -100 * E8, E8, other_upnl=-200 * E8) is None
        )

    @pytest.mark.parametrize(
        ("side", "qty"), [(0, E8), (2, E8), (LONG, 0), (SHORT, -1)]
    )
    def test_bad_side_or_quantity_is_refused(self, side, qty):
        """A side other than +1/-1 or a non-positive quantity is a caller bug."""
        with pytest.raises(ValueError, match="side"):
            liquidation_price(side, qty, E8, E8, BTC_TIERS)
        with pytest.raises(ValueError, match="side"):
            bankruptcy_price(side, qty, E8, E8)

    def test_notional_and_upnl_round_as_documented(self):
        """Notional truncates toward zero; UPNL rounds down."""
        assert notional(3, E8 // 2) == 1
        assert notional(3, -E8 // 2) == -1
        assert unrealized_pnl(E8 // 2, 0, 3) == 1
        assert unrealized_pnl(-E8 // 2, 0, 3) == -2
        assert margin_balance_at(-E8 // 2, 0, 10, 3, other_upnl=5) == 13


class TestProperties:
    """The liquidation identity and orderings over random inputs."""

    @settings(max_examples=300)
    @given(
        size=sizes, entry=prices, wallet=wallets, schedule=schedules,
        other_mm=st.integers(0, 10**6 * E8),
        other_upnl=st.integers(-(10**6) * E8, 10**6 * E8),
        cross=st.booleans(),
    )  # fmt: skip
    def test_margin_balance_meets_mm_at_the_liquidation_price(
        self, size, entry, wallet, schedule, other_mm, other_upnl, cross
    ):
        """At LP margin balance equals total MM; one E8 step beyond, it is below."""
        if not cross:
            other_mm = other_upnl = 0
        cost = notional(entry, size)
        args = (size, cost, wallet, schedule, other_mm, other_upnl)
        lp = position_liquidation_price(
            size, cost, wallet, schedule, other_mm=other_mm, other_upnl=other_upnl
        )
        if lp is None:
            # Long: never liquidatable at a positive price; short: at every price.
            assert (gap(*args, price=1) > 0) == (size > 0)
            return
        beyond = lp - 1 if size > 0 else lp + 1
        assert gap(*args, price=lp) >= 0
        assert gap(*args, price=beyond) < 0
        balance = margin_balance_at(size, cost, wallet, lp, other_upnl=other_upnl)
        total_mm = other_mm + position_maintenance_margin(size, lp, schedule)
        one_step = math.ceil(Fraction(2 * abs(size), E8))  # one E8 price unit of q
        assert abs(balance - total_mm) <= one_step + 2

    @given(size=sizes, entry=prices, wallet=wallets, table=tier_tables())
    def test_solution_equals_the_tier_re_check_loop(self, size, entry, wallet, table):
        """The closed form equals MARGIN.md's re-check loop from the entry tier."""
        cost = notional(entry, size)
        lp = position_liquidation_price(size, cost, wallet, table)
        exact = recheck_loop(size, cost, wallet, table)
        expected = math.ceil(exact) if size > 0 else math.floor(exact)
        assert lp == (expected if exact > 0 and expected > 0 else None)

    @given(
        qty=st.integers(10**5, 10**11), entry=prices, wallet=wallets, schedule=schedules
    )
    def test_long_lp_below_entry_below_short_lp_when_margin_suffices(
        self, qty, entry, wallet, schedule
    ):
        """With WB above MM at entry (by one price step), LP long < EP < LP short."""
        mm = position_maintenance_margin(qty, entry, schedule)
        if wallet <= mm + qty // E8 + 1:
            return
        long_lp = liquidation_price(LONG, qty, entry, wallet, schedule)
        short_lp = liquidation_price(SHORT, qty, entry, wallet, schedule)
        assert long_lp is None or long_lp < entry
        assert short_lp is not None
        assert short_lp > entry

    @given(size=sizes, entry=prices, wallet=wallets, schedule=schedules)
    def test_bankruptcy_price_lies_beyond_the_liquidation_price(
        self, size, entry, wallet, schedule
    ):
        """A long is bankrupt at or below its LP, a short at or above it."""
        cost = notional(entry, size)
        lp = position_liquidation_price(size, cost, wallet, schedule)
        bp = position_bankruptcy_price(size, cost, wallet)
        if size > 0:
            assert lp is not None or bp is None
            assert bp is None or lp is None or bp <= lp
        else:
            assert bp is not None or lp is None
            assert lp is None or bp is None or lp <= bp
        if bp is not None:
            assert margin_balance_at(size, cost, wallet, bp) >= 0
