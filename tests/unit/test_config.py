"""Tests of the TOML market configuration."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from exchange import DEFAULT_MARKETS, Exchange
from exchange.shell.config import ConfigError, load_markets, markets_from_toml

SHIPPED = Path(__file__).parents[2] / "exchange" / "markets.toml"


class TestMarketFile:
    """Markets read from a TOML file."""

    def test_shipped_file_equals_the_python_defaults(self) -> None:
        """The markets.toml shipped with paperx describes DEFAULT_MARKETS exactly."""
        assert load_markets(SHIPPED) == list(DEFAULT_MARKETS)

    def test_a_custom_market_trades_on_its_own_grid(self, tmp_path: Path) -> None:
        """A market from TOML sets the tick the exchange enforces."""
        path = tmp_path / "m.toml"
        path.write_text('[markets.SOL-PERP]\ntick_size = "0.01"\nlot_size = "1"\n')
        ex = Exchange(markets=path)
        ex.place_order("a", "SOL-PERP", "buy", "limit", "3", "150.25")
        assert ex.order_book("SOL-PERP")["bids"][0] == (Decimal("150.25"), Decimal(3))

    @pytest.mark.parametrize(
        ("text", "fragment"),
        [
            ("not toml [", "not valid TOML"),
            ("[other]\nx = 1\n", "at least one [markets.SYMBOL]"),
            ('[markets.X]\ntick_size = 0.1\nlot_size = "1"\n', "as strings"),
            (
                '[markets.X]\ntick_size = "0.1"\nlot_size = "1"\ncolour = "red"\n',
                "unknown keys",
            ),
            (
                '[markets.X]\ntick_size = "0.1"\nlot_size = "1"\nmin_price = "0.15"\n',
                "multiple of its step",
            ),
            (
                '[markets.X]\ntick_size = "0.000000001"\nlot_size = "1"\n',
                "more than 8 decimals",
            ),
        ],
    )
    def test_bad_files_are_refused_with_a_reason(
        self, text: str, fragment: str
    ) -> None:
        """Every kind of bad market table raises ConfigError saying what is wrong."""
        with pytest.raises(ConfigError) as info:
            markets_from_toml(text, "m.toml")
        assert fragment in str(info.value)
        assert "m.toml" in str(info.value)

    def test_missing_file_says_so(self, tmp_path: Path) -> None:
        """A missing file raises ConfigError naming the path."""
        with pytest.raises(ConfigError, match="cannot read"):
            load_markets(tmp_path / "nope.toml")
