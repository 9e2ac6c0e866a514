"""The money side of one market: contract value, fees, tiers, mark and funding.

`MarketMargin` turns a market's ticks and lots into E8 money (values round
down; a fill's value is exact because one tick times one lot is a whole E8
amount), keeps the market's mark price (index, last trade and mid through
`MarkState`) and its open funding window, and values positions at the mark.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from exchange.margin.funding import FundingState
from exchange.margin.mark import MarkState
from exchange.messages import Event, MarkPriceChanged
from exchange.units import SCALE

if TYPE_CHECKING:
    from exchange.margin.accounts import Position
    from exchange.margin.interfaces import Quotes
    from exchange.margin.tiers import TierTable
    from exchange.markets import Market

__all__ = ["MarketMargin"]


class MarketMargin:
    """The money side of one market: contract value, fees, tiers, prices."""

    __slots__ = (
        "funding",
        "lot_size",
        "maker_fee_ppm",
        "mark",
        "mark_state",
        "market",
        "taker_fee_ppm",
        "tick_size",
        "tiers",
    )

    def __init__(self, market: Market, tiers: TierTable) -> None:
        """Derive the money constants of ``market``."""
        self.market = market
        self.tick_size = market.tick_size  # E8 per tick
        self.lot_size = market.lot_size  # E8 per lot
        self.maker_fee_ppm = market.maker_fee_ppm
        self.taker_fee_ppm = market.taker_fee_ppm
        self.tiers = tiers
        self.mark_state = MarkState()  # index, last trade, mid -> mark
        # The current funding interval's premium samples; opened at the first
        # exchange time seen, so a run starting today does not first settle
        # every 8 h since 1970.
        self.funding: FundingState | None = None
        self.mark = 0  # E8 current mark; 0 = no price yet

    def value(self, lots: int, price_e8: int) -> int:
        """Return the E8 value of ``lots`` at ``price_e8``, rounded down."""
        return lots * self.lot_size * price_e8 // SCALE

    def fill_value(self, lots: int, ticks: int) -> int:
        """Return the exact E8 value of a fill (lots x ticks on the market's grid)."""
        return lots * self.lot_size * ticks * self.tick_size // SCALE

    def notional(self, size: int) -> int:
        """Return the E8 notional of a position of ``size`` lots at the mark."""
        return self.value(abs(size), self.mark)

    def funding_window(self, ts_ns: int) -> FundingState:
        """Return the open funding window, opening it at ``ts_ns`` if need be."""
        if self.funding is None:
            self.funding = FundingState(start_ns=ts_ns)
        return self.funding

    def market_order_price(self, book: Quotes, is_buy: bool) -> int:
        """Return the E8 price a market order is valued at: best opposite, else mark."""
        best = book.best_ask() if is_buy else book.best_bid()
        if best is None:
            return self.mark
        price = best * self.tick_size
        if not self.mark:
            return price
        # value a buy at the higher of the two, a sell at the lower: the worse case
        return max(price, self.mark) if is_buy else min(price, self.mark)

    def take_index(self, price_e8: int, ts_ns: int, book: Quotes) -> None:
        """Take an index price (E8): feed the mark and sample the funding premium."""
        self.mark_state.on_index(price_e8, ts_ns)
        tick, lot = self.tick_size, self.lot_size
        # lazily: the impact walk stops as soon as its notional is filled
        bids = ((p * tick, q * lot) for p, q in book.levels(is_buy=True))
        asks = ((p * tick, q * lot) for p, q in book.levels(is_buy=False))
        window = self.funding_window(ts_ns)
        window.sample(ts_ns, price_e8, bids, asks)
        self.mark_state.set_funding(window.predicted_rate(), window.next_funding_ns)

    def on_trade(self, ticks: int) -> None:
        """Feed a trade price (ticks) to the mark."""
        self.mark_state.on_trade(ticks * self.tick_size)

    def refresh_mark(
        self, seq: int, book: Quotes, ts_ns: int, events: list[Event]
    ) -> bool:
        """Recompute the mark from index, last trade and mid; report a change."""
        state = self.mark_state
        bid, ask = book.best_bid(), book.best_ask()
        state.on_book(
            None if bid is None else bid * self.tick_size,
            None if ask is None else ask * self.tick_size,
            ts_ns,
        )
        mark = state.mark(self.market.mark_source) or 0
        if mark == self.mark:
            return False
        self.mark = mark
        events.append(
            MarkPriceChanged(
                seq=seq, symbol=self.market.symbol, mark=mark, index=state.index or 0
            )
        )
        return True

    def upnl(self, position: Position) -> int:
        """Return the unrealized PnL at the mark, rounded against the trader."""
        if not position.size or not self.mark:
            return 0
        # floor of the signed value: lower for longs, more negative for shorts
        value = position.size * self.lot_size * self.mark // SCALE
        return value - position.cost
