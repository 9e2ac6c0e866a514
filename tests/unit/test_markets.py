"""Market specifications: grid checks, decimal constructors and the config hash."""

from __future__ import annotations

from decimal import Decimal

import pytest

from exchange.markets import DEFAULT_MARKETS, Market, config_hash, market_table

E8 = 10**8


def spec(**changes: int) -> dict[str, int]:
    """Return a valid market spec in E8 units with some fields changed."""
    base = {
        "tick_size": E8 // 10,
        "lot_size": E8 // 1000,
        "min_price": E8 // 10,
        "max_price": 1000 * E8,
        "min_qty": E8 // 1000,
        "max_qty": 10 * E8,
    }
    return {**base, **changes}


class TestMarket:
    """Market specs and their constructors."""

    def test_default_markets_are_btc_and_eth_perpetuals(self):
        """The defaults are BTC-PERP and ETH-PERP with their tick and lot sizes."""
        by_symbol = {m.symbol: m for m in DEFAULT_MARKETS}
        assert set(by_symbol) == {"BTC-PERP", "ETH-PERP"}
        assert by_symbol["BTC-PERP"].tick_size == E8 // 10
        assert by_symbol["ETH-PERP"].tick_size == E8 // 100
        assert (
            by_symbol["BTC-PERP"].lot_size
            == by_symbol["ETH-PERP"].lot_size
            == E8 // 1000
        )

    @pytest.mark.parametrize(
        "changes",
        [
            {"tick_size": 0},
            {"lot_size": -1},
            {"min_price": E8 // 10 + 1},
            {"max_qty": 10 * E8 + 1},
            {"min_price": 0},
            {"min_price": 2000 * E8},
            {"min_qty": 20 * E8},
        ],
    )
    def test_inconsistent_market_is_refused(self, changes):
        """A market off its own grid, non-positive, or with min above max is refused."""
        with pytest.raises(ValueError):  # noqa: PT011 -- several messages, one rule
            Market(symbol="M", **spec(**changes))

    def test_market_needs_a_symbol(self):
        """An empty symbol is refused."""
        with pytest.raises(ValueError, match="symbol"):
            Market(symbol="", **spec())

    def test_from_decimals_defaults_minimums_to_one_step(self):
        """Minimums default to one tick of price and one lot of quantity."""
        m = Market.from_decimals("M", tick_size="0.5", lot_size="0.01")
        assert (m.min_price, m.min_qty) == (E8 // 2, E8 // 100)

    def test_from_mapping_round_trips_as_mapping(self):
        """A market rebuilt from its TOML-shaped table is equal to the original."""
        for market in DEFAULT_MARKETS:
            assert Market.from_mapping(market.symbol, market.as_mapping()) == market

    def test_funding_off_round_trips_and_funding_on_keeps_old_tables(self):
        """``funding = false`` survives the table; on, the table has no such key."""
        table = {**DEFAULT_MARKETS[0].as_mapping(), "funding": False}
        market = Market.from_mapping("BTC-PERP", table)
        assert market.funding is False
        assert market.as_mapping()["funding"] is False
        assert "funding" not in DEFAULT_MARKETS[0].as_mapping()

    def test_from_mapping_refuses_unknown_keys(self):
        """A misspelt key in a market table is an error, not ignored."""
        with pytest.raises(ValueError, match="unknown keys"):
            Market.from_mapping("M", {"tick_size": "1", "lot_size": "1", "tick": "1"})

    def test_ticks_and_lots_convert_to_decimals(self):
        """Prices in ticks and quantities in lots read back as exact decimals."""
        m = Market.from_decimals("M", tick_size="0.5", lot_size="0.001")
        assert m.price_decimal(201) == Decimal("100.5")
        assert m.qty_decimal(1500) == Decimal("1.5")


class TestConfigHash:
    """The hash of the market configuration."""

    def test_config_hash_ignores_market_order(self):
        """The hash depends on the markets, not on the order they are listed in."""
        assert config_hash(DEFAULT_MARKETS) == config_hash(reversed(DEFAULT_MARKETS))

    def test_config_hash_changes_with_any_field(self):
        """Changing one market's tick size changes the hash."""
        changed = Market.from_decimals(
            "BTC-PERP", tick_size="1", lot_size="0.001", max_price="4529764"
        )
        assert config_hash(DEFAULT_MARKETS) != config_hash(
            [changed, DEFAULT_MARKETS[1]]
        )

    def test_market_table_is_sorted_by_symbol(self):
        """The canonical table lists markets by symbol."""
        assert list(market_table(reversed(DEFAULT_MARKETS))) == ["BTC-PERP", "ETH-PERP"]
