"""Tests of the margin-modes demo table."""

from __future__ import annotations

from exchange.cli.margin_demo import PATH, compare_margin_modes


class TestMarginDemo:
    """The isolated-versus-cross demo table."""

    def test_the_table_shows_isolated_liquidating_first_and_cross_losing_more(
        self,
    ) -> None:
        """Isolated is liquidated at 54,000, cross at 40,000, and the losses say why."""
        table = compare_margin_modes().splitlines()
        assert len(table) == len(PATH) + 3
        rows = {line.split("|")[0].strip(): line for line in table[2:-1]}
        assert "LIQUIDATED" in rows["54,000"].split("|")[1]
        assert "LIQUIDATED" not in rows["54,000"].split("|")[2]
        assert "LIQUIDATED" in rows["40,000"].split("|")[2]
        assert table[-1].startswith("loss: isolated 3,015.00")
        assert "cross 10,000.00" in table[-1]
