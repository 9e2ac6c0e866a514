"""A margin workload that looks like a venue: a seeded stream of timestamped commands.

`generate` returns a `MarginStream`: the ``setup`` commands (every account's
deposit, margin mode and leverage per market) and then exactly ``n`` ``flow``
commands, each as ``(ts_ns, command)`` with non-decreasing exchange
timestamps. Its shape, with the default `MarginShape`:

- accounts: ``shape.accounts`` (1,000-10,000), of which ``shape.makers`` are
  market makers (``mm-N``, cross margin, large deposits) and the rest takers
  (``t-N``). Takers' activity is skewed (Zipf weights, exponent
  ``shape.activity``): a few takers trade often, most rarely.
- takers: each has an effective leverage of 5-20x (``shape.leverage``) and a
  deposit of 100-2,000 USDT (log-uniform, ``shape.deposit``), a leverage
  setting a quarter above its effective leverage, and per market a margin mode
  (isolated with probability ``shape.p_isolated``, else cross). A position's
  notional is the taker's equity times its effective leverage, kept within the
  first tier (45,000 USDT) so that a liquidation closes it whole. A taker holds
  one position at a time: it opens with a market or IOC limit order, places a
  reduce-only stop-loss (``stop_market``) and sometimes a take-profit
  (``take_profit_market``), both on the mark price, trails or halves it now
  and then, adds isolated margin, and closes with a reduce-only market or IOC
  order after an exponential holding time, canceling what is left by client
  order id. A taker whose equity runs low deposits again.
- makers: quote a ladder of ``shape.levels`` GTC limits on both sides around
  the index (outer levels post-only), skewed against the crowd's net
  position; each re-quotes (`CancelAll`, then the ladder) when the index has
  moved more than its own threshold from its last centre.
- index: per market, ``shape.legs`` legs that each move the index 2-5 %
  (``shape.move_ppm``) up or down, with a little noise, one `SetIndexPrice`
  per market every ``shape.index_every`` flow commands. A share
  ``shape.gap_share`` of the legs happens as one jump while the makers have
  pulled their quotes (a flash move): stops fire into an empty book and
  liquidations find no bids, so the exchange auto-deleverages.
- time: the flow spans ``shape.hours`` of exchange time from 01:00 UTC
  (default 26 h), and an `AdvanceTime` lands on every funding time it
  crosses (08:00, 16:00, 00:00: three funding intervals by default).

Run through ``ExchangeCore(margin=True)`` the default shape gives a few per
mille of positions liquidated, some ADL, a funding payment per open position at
each funding time and well under 2 % rejects (see ``bench._margin``, which
counts them). The generator never consults an exchange: it is an input
stream, pure given its seed, shape and markets. To send reduce-only and
closing orders it keeps its own approximate view of every position: an
opening order fills whole at about the index, a stop fires when the index
crosses it (into an empty book during a jump, where it cannot fill), a
position is liquidated when the index crosses its estimated liquidation price.
Where that view is wrong (an auto-deleveraged position, a stop on the
boundary) the exchange refuses a command; those refusals are the rejects.

The parts, one module each: `_shape` (the knobs), `_market` (one market as
the generator sees it), `_index` (the index path), `_makers` (the makers'
ladders), `_takers` (the taker accounts and their activity), `_positions` (the
takers' positions and orders), `_flow` (the timeline, and `generate`),
`_stream` (the file) and `_cli` (the command line).

Write one to a file (msgpack, or JSON by suffix)::

    python -m clients.margin_flow 1000000 --seed 42 --out margin_1000000.msgpack
"""

from clients.margin_flow._cli import main
from clients.margin_flow._flow import FUNDING_NS, START_NS, generate
from clients.margin_flow._shape import MarginShape
from clients.margin_flow._stream import (
    FORMAT_VERSION,
    MarginStream,
    Stamped,
    read_margin_stream,
    write_margin_stream,
)

__all__ = [
    "FORMAT_VERSION",
    "FUNDING_NS",
    "START_NS",
    "MarginShape",
    "MarginStream",
    "Stamped",
    "generate",
    "main",
    "read_margin_stream",
    "write_margin_stream",
]
