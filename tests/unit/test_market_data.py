"""Tests of the market data files a replay reads: Binance klines, aggTrades, prices."""

from __future__ import annotations

from pathlib import Path

import pytest

from exchange import Market
from exchange.errors import ConfigError
from exchange.messages import Deposit, PlaceOrder, SetIndexPrice
from exchange.units import to_e8
from replay.market_data import FLOW_ACCOUNT, FLOW_DEPOSIT, market_flow, market_for

E8 = 10**8
MS = 10**6
BTC = "BTC-PERP"
MARKET = Market.from_decimals(
    BTC, tick_size="0.1", lot_size="0.001", min_qty="0.002", max_qty="5"
)
KLINE_HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
    "taker_buy_volume,taker_buy_quote_volume,ignore\n"
)
AGG_HEADER = (
    "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,"
    "is_buyer_maker\n"
)


def _file(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    """Write ``text`` to a CSV file in ``tmp_path`` and return its path."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _index(ts_ns: int, price: str) -> tuple[int, SetIndexPrice]:
    """Return the index price command expected at ``ts_ns``."""
    return ts_ns, SetIndexPrice(symbol=BTC, price=to_e8(price))


class TestKlines:
    """A candle becomes four index prices along the conventional path."""

    def test_a_rising_candle_goes_open_low_high_close(self, tmp_path: Path) -> None:
        """Open at open_time, low and high at the thirds, close at close_time."""
        row = "1000,65000,65300,64900,65200,12.5,1299,0,10,0,0,0\n"
        flow = market_flow(_file(tmp_path, KLINE_HEADER + row), MARKET)
        assert list(flow) == [
            _index(1000 * MS, "65000"),
            _index(1000 * MS + 99_666_666, "64900"),  # a third of 299 ms, in ns
            _index(1000 * MS + 199_333_332, "65300"),
            _index(1299 * MS, "65200"),
        ]
        assert flow.counts.read == 1

    def test_a_falling_candle_without_header_goes_open_high_low_close(
        self, tmp_path: Path
    ) -> None:
        """A header-less file is known by its 12 columns; a fall visits high first."""
        row = "1000,65000,65300,64900,64950,1,1299,0,10,0,0,0\n"
        commands = list(market_flow(_file(tmp_path, row), MARKET))
        assert [c.price for _, c in commands] == [
            65000 * E8,
            65300 * E8,
            64900 * E8,
            64950 * E8,
        ]


class TestAggTrades:
    """Trades become index prices and the recorded taker's market IOC orders."""

    def test_each_trade_is_an_index_price_and_a_taker_order_of_its_side(
        self, tmp_path: Path
    ) -> None:
        """A buyer-maker trade is a taker sell, else a buy; the deposit goes first."""
        rows = "1,65000.1,0.25,1,3,5000,true\n2,65000.2,0.0105,4,4,5001,false\n"
        flow = market_flow(_file(tmp_path, AGG_HEADER + rows), MARKET)
        sell = PlaceOrder(
            account=FLOW_ACCOUNT,
            symbol=BTC,
            side="sell",
            type="market",
            qty=25_000_000,
            tif="IOC",
        )
        buy = PlaceOrder(
            account=FLOW_ACCOUNT,
            symbol=BTC,
            side="buy",
            type="market",
            qty=1_000_000,  # 0.0105 down to the lot: 0.010
            tif="IOC",
        )
        assert list(flow) == [
            (5000 * MS, Deposit(account=FLOW_ACCOUNT, amount=FLOW_DEPOSIT)),
            _index(5000 * MS, "65000.1"),
            (5000 * MS, sell),
            _index(5001 * MS, "65000.2"),
            (5001 * MS, buy),
        ]

    def test_sizes_are_capped_at_max_qty_and_dust_moves_only_the_index(
        self, tmp_path: Path
    ) -> None:
        """Spot's 8-column header-less rows: 9 BTC is sent as 5, 0.0015 as no order."""
        rows = "1,65000,9,1,3,5000,false,true\n2,65000,0.0015,4,4,5001,true,true\n"
        commands = [c for _, c in market_flow(_file(tmp_path, rows), MARKET)]
        orders = [c for c in commands if isinstance(c, PlaceOrder)]
        assert [o.qty for o in orders] == [5 * E8]
        assert sum(isinstance(c, SetIndexPrice) for c in commands) == 2

    def test_microsecond_times_are_told_from_milliseconds(self, tmp_path: Path) -> None:
        """A 16-digit transact_time is read as µs since the epoch."""
        rows = "1,65000,0.01,1,1,1735689600000000,false\n"
        times = {ts for ts, _ in market_flow(_file(tmp_path, rows), MARKET)}
        assert times == {1_735_689_600_000 * MS}


class TestPrices:
    """A plain timestamp,price file: ms or ISO-8601, header or not."""

    def test_ms_and_iso_times_become_index_prices(self, tmp_path: Path) -> None:
        """Both time forms give the same ns; the header row is skipped."""
        text = "timestamp,price\n1735689600000,65000\n2025-01-01T00:00:01Z,65001.5\n"
        assert list(market_flow(_file(tmp_path, text), MARKET)) == [
            _index(1_735_689_600_000 * MS, "65000"),
            _index(1_735_689_601_000 * MS, "65001.5"),
        ]

    def test_a_file_without_header_starts_at_its_first_row(
        self, tmp_path: Path
    ) -> None:
        """With no header, the first row is a price too."""
        flow = market_flow(_file(tmp_path, "1000,1\n2000,2\n"), MARKET)
        assert [ts for ts, _ in flow] == [1000 * MS, 2000 * MS]


class TestRefusals:
    """Bad files are refused whole, before anything is sent."""

    @pytest.mark.parametrize(
        "text",
        [
            "2000,1\n1000,1\n",  # the time goes back
            "1000,abc\n",  # not a price
            AGG_HEADER + "1,65000,0.01,1,1,5000,maybe\n",  # not a flag
            "a,b,c\n1,2,3\n",  # no known format
        ],
    )
    def test_a_bad_file_is_a_config_error(self, tmp_path: Path, text: str) -> None:
        """Malformed rows, times out of order and unknown formats raise ConfigError."""
        with pytest.raises(ConfigError):
            market_flow(_file(tmp_path, text), MARKET)


class TestMarketFor:
    """Which market a file is for: named, from the file name, or the only one."""

    def test_the_symbol_comes_from_the_argument_the_name_or_the_only_market(
        self,
    ) -> None:
        """SYMBOL=FILE wins; else a file name's prefix; else the single market."""
        eth = Market.from_decimals("ETHUSDT", tick_size="0.01", lot_size="0.001")
        both = [MARKET, eth]
        assert market_for(f"{BTC}=a.csv", both) == (MARKET, Path("a.csv"))
        assert market_for("d/ETHUSDT-aggTrades-2024-01-01.csv", both)[0] == eth
        assert market_for("prices.csv", [MARKET]) == (MARKET, Path("prices.csv"))

    def test_an_unknown_or_ambiguous_market_is_a_config_error(self) -> None:
        """A symbol not in the config, or a bare file among two markets, is refused."""
        eth = Market.from_decimals("ETHUSDT", tick_size="0.01", lot_size="0.001")
        with pytest.raises(ConfigError, match="which market"):
            market_for("XRP=a.csv", [MARKET])
        with pytest.raises(ConfigError, match="which market"):
            market_for("prices.csv", [MARKET, eth])
