"""A small recorded run for the market replay tests: a recorded seller meets a bid.

Recorded at a standing clock that moves a second between steps, on the
market `write_config` (serve_rig) and the unit tests use (BTC-PERP, tick 0.1,
lot 0.001, mark from the index).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from clock import START_NS, FixedClock

from exchange import Exchange, Market

if TYPE_CHECKING:
    from pathlib import Path

BTC = "BTC-PERP"
MARKET = Market.from_decimals(
    BTC, tick_size="0.1", lot_size="0.001", mark_source="index"
)
SECOND_NS = 10**9


def record_seller(path: Path) -> None:
    """Journal alice's bid placed and cancelled, then bob's IOC sell of 0.01 at 64,990.

    In the recording nobody bids when bob sells: his IOC order expires. Run
    beside a live bid at 65,000, it fills there. Alice's cancel names her
    order by the recorded id (1), and the clock and checkpoint records are
    the recording's own.
    """
    clock = FixedClock(START_NS)
    ex = Exchange([MARKET], margin=True, journal=path, clock=clock)
    ex.deposit("alice", "100000")
    ex.deposit("bob", "100000")
    ex.set_index_price(BTC, "65000")
    bid = ex.place_order("alice", BTC, "buy", "limit", "0.01", "64000")
    clock.now += SECOND_NS
    ex.advance_time(clock.now)
    ex.cancel_order("alice", bid.order_id)
    clock.now += SECOND_NS
    ex.place_order("bob", BTC, "sell", "limit", "0.01", "64990", tif="IOC")
    ex.close()
