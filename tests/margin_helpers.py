"""Shared pieces of the margin-ledger tests: markets, a clocked exchange, trades.

Markets here pin the mark to the index (``mark_source="index"``), so a test
sets the mark by feeding the index. ``FREE`` markets charge no fees, which
makes MARGIN.md's fee-less vectors exact; ``FEED`` markets charge the default
0.02% maker / 0.05% taker.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest

from exchange import Exchange, Market, Rejected
from exchange.codes import RejectCode
from exchange.messages import AdjustMargin, CommandRejected
from exchange.units import to_e8

if TYPE_CHECKING:
    from exchange.margin.ledger import Ledger

D = Decimal
CENT = D("0.01")


def _btc(**fees: str) -> Market:
    """Return BTC-PERP with Binance's filters, the mark pinned to the index."""
    return Market.from_decimals(
        "BTC-PERP",
        tick_size="0.1",
        lot_size="0.001",
        max_price="4529764",
        max_qty="1000",
        mark_source="index",
        **fees,
    )


def _eth(**fees: str) -> Market:
    """Return ETH-PERP with Binance's filters, the mark pinned to the index."""
    return Market.from_decimals(
        "ETH-PERP",
        tick_size="0.01",
        lot_size="0.001",
        max_price="306177",
        max_qty="10000",
        mark_source="index",
        **fees,
    )


FREE = (_btc(maker_fee="0", taker_fee="0"), _eth(maker_fee="0", taker_fee="0"))
FEED = (_btc(), _eth())


def exchange(markets: tuple[Market, ...] = FREE) -> Exchange:
    """Return a margin exchange over ``markets`` with a deterministic clock."""
    ticks = itertools.count(1_000)
    return Exchange(markets, margin=True, clock=lambda: next(ticks))


def trade(
    ex: Exchange,
    buyer: str,
    seller: str,
    symbol: str,
    qty: str,
    price: str,
    *,
    taker: str = "buyer",
) -> None:
    """Make ``buyer`` and ``seller`` trade ``qty`` at ``price`` (one fill, no rest).

    The maker rests a GTC limit order first; the taker crosses it with an IOC.
    """
    maker_side, maker = ("sell", seller) if taker == "buyer" else ("buy", buyer)
    taker_side, taker_acct = ("buy", buyer) if taker == "buyer" else ("sell", seller)
    ex.place_order(maker, symbol, maker_side, "limit", qty, price)
    result = ex.place_order(
        taker_acct, symbol, taker_side, "limit", qty, price, tif="IOC"
    )
    assert result.status == "filled", result


def adjust(ex: Exchange, account: str, symbol: str, amount: str) -> None:
    """Submit an `AdjustMargin` command and raise `Rejected` like the facade."""
    seq, events = ex.submit(
        AdjustMargin(account=account, symbol=symbol, amount=to_e8(amount))
    )
    if events and isinstance(events[0], CommandRejected):
        raise Rejected(RejectCode(events[0].code), events[0].reason, seq)


def position(ex: Exchange, account: str, symbol: str) -> dict[str, object]:
    """Return the one open position of ``account`` in ``symbol``."""
    found = [p for p in ex.positions(account) if p["symbol"] == symbol]
    assert len(found) == 1, ex.positions(account)
    return found[0]


def cents(value: object) -> Decimal:
    """Return a Decimal rounded half-even to 2 decimals (MARGIN.md's vectors)."""
    assert isinstance(value, Decimal), value
    return value.quantize(CENT)


def money_sides(ledger: Ledger) -> tuple[int, int]:
    """Return both sides of the money identity (E8 ints), which must be equal.

    ``deposits - withdrawals`` against ``cross wallets + isolated margins -
    position costs + insurance fund + fees collected - bad debt``.
    """
    held = 0
    for account in ledger.accounts.values():
        held += account.wallet
        for p in account.positions.values():
            held += p.margin - p.cost
    held += (
        ledger.settlement.insurance_fund
        + ledger.settlement.fees_collected
        - ledger.settlement.bad_debt
    )
    return ledger.settlement.deposits - ledger.settlement.withdrawals, held


def assert_refused(
    ex: Exchange,
    code: RejectCode,
    call: Callable[..., object],
    *args: object,
    **kwargs: object,
) -> Rejected:
    """Assert ``call`` is rejected with ``code`` and leaves the state unchanged."""
    before = ex.core.state_hash(include_seq=False)
    with pytest.raises(Rejected) as info:
        call(*args, **kwargs)
    assert info.value.code == code, info.value
    assert ex.core.state_hash(include_seq=False) == before
    return info.value
