"""``paperx bench memory``: what it fills and how it counts bytes; no timings."""

from __future__ import annotations

import pytest

from bench.memory import BookShape, breakdown, fill_book, main, measure
from exchange.core import ExchangeCore

_SHAPE = BookShape(10, 7, client_ids=False)


def test_the_book_is_filled_with_resting_orders_over_the_levels() -> None:
    """N orders rest, none crossed, over ``levels`` per side and every account."""
    core = ExchangeCore()
    fill_book(core, 1_000, _SHAPE)
    book = core.markets["BTC-PERP"].book
    assert len(core.index) == 1_000
    assert (len(book.bids), len(book.asks)) == (10, 10)
    assert book.best_bid() < book.best_ask()
    assert len(core.by_account) == 7


def test_orders_at_one_level_share_its_price_int() -> None:
    """An order placed at an existing level holds the level's own int, spec too."""
    core = ExchangeCore()
    fill_book(core, 100, _SHAPE)
    level = core.markets["BTC-PERP"].book.bids[core.index[1].price]
    assert len(level.orders) > 1
    for order in level.orders:
        assert order.price is level.price
        assert order.spec.price is level.price


def test_the_itemised_bytes_account_for_what_tracemalloc_saw() -> None:
    """The getsizeof items add up to most of the traced bytes, never far more."""
    result = measure(2_000, _SHAPE, "tracemalloc")
    parts = result["breakdown"]
    assert parts["client order ids (dict, keys, strings)"] < 1  # an empty dict
    assert parts["Order objects"] > 0
    assert parts["OrderAccepted specs"] > 0
    assert 0.8 * result["bytes_per_order"] <= sum(parts.values())
    assert sum(parts.values()) <= 1.05 * result["bytes_per_order"]


def test_client_ids_are_counted_in_their_index() -> None:
    """With client order ids, their index holds one key per order."""
    core = ExchangeCore()
    fill_book(core, 300, BookShape(10, 7, client_ids=True))
    assert len(core.execution.client_ids) == 300
    assert breakdown(core)["client order ids (dict, keys, strings)"] > 0


@pytest.mark.parametrize("argv", [["--n", "0"], ["--levels", "-1"], ["--n", "x"]])
def test_bad_sizes_are_refused_with_a_message(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Sizes, levels and accounts must be positive integers: exit status 2."""
    assert main(argv) == 2
    assert "paperx bench memory:" in capsys.readouterr().err
