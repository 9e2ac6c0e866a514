"""Tests of the index feeds: the seeded random walk and recorded CSV prices."""

from __future__ import annotations

import itertools
from decimal import Decimal
from pathlib import Path

import pytest

from exchange.errors import ConfigError
from exchange.messages import SetIndexPrice
from exchange.shell.feeds import random_walk, recorded

E8 = 10**8


class TestRandomWalk:
    """The synthetic index: seeded, int prices, one per symbol per interval."""

    def test_the_same_seed_gives_the_same_walk_and_another_seed_another(
        self,
    ) -> None:
        """Two walks of one seed are equal; a second seed differs."""
        start = {"BTC-PERP": Decimal(65000), "ETH-PERP": Decimal(3500)}

        def walk(seed: int) -> list[tuple[int, SetIndexPrice]]:
            ticks = random_walk(start, Decimal("0.001"), 250, seed)
            return list(itertools.islice(ticks, 40))

        assert walk(7) == walk(7)
        assert walk(7) != walk(8)
        ticks = walk(7)
        assert ticks[:2] == [
            (0, SetIndexPrice(symbol="BTC-PERP", price=65000 * E8)),
            (0, SetIndexPrice(symbol="ETH-PERP", price=3500 * E8)),
        ]
        assert [offset for offset, _ in ticks[::2]] == [250 * i for i in range(20)]
        assert all(isinstance(t.price, int) and t.price > 0 for _, t in ticks)


class TestRecorded:
    """Recorded prices from CSV: replayed in order, bad rows refused up front."""

    def test_rows_become_index_prices_at_their_offsets(self, tmp_path: Path) -> None:
        """Each row is a SetIndexPrice in E8 at its offset."""
        path = tmp_path / "feed.csv"
        path.write_text(
            "offset_ms,symbol,price\n0,BTC-PERP,65000.5\n500,BTC-PERP,65001\n"
        )
        assert list(recorded(path, {"BTC-PERP"})) == [
            (0, SetIndexPrice(symbol="BTC-PERP", price=6500050000000)),
            (500, SetIndexPrice(symbol="BTC-PERP", price=65001 * E8)),
        ]

    @pytest.mark.parametrize(
        "rows",
        [
            "0,ETH-PERP,3500\n",  # not a market of the config
            "500,BTC-PERP,1\n0,BTC-PERP,1\n",  # offsets go back
            "0,BTC-PERP,abc\n",  # not a number
        ],
    )
    def test_a_bad_row_is_a_config_error_naming_its_line(
        self, tmp_path: Path, rows: str
    ) -> None:
        """An unknown symbol, a backward offset or a bad price raises ConfigError."""
        path = tmp_path / "feed.csv"
        path.write_text("offset_ms,symbol,price\n" + rows)
        with pytest.raises(ConfigError, match=r"feed\.csv:\d"):
            list(recorded(path, {"BTC-PERP"}))
