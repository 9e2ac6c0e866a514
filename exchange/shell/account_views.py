"""Read-only views of accounts for people: balances and positions in Decimal.

These turn the ledger's ints into what a trader reads on an exchange's
screen (and what ccxt's ``fetch_balance`` / ``fetch_positions`` return):
free / used / total balances, and per position its entry and mark price,
notional, PnL, liquidation price and margin. Nothing here changes state.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

from exchange.margin.accounts import Position
from exchange.margin.ledger import Ledger
from exchange.margin.tiers import position_liquidation_price
from exchange.units import SCALE, from_e8

__all__ = ["balance_view", "entry_price", "equity_e8", "position_views"]


def equity_e8(ledger: Ledger, name: str) -> int:
    """Return an account's equity (E8): wallets plus unrealized PnL at the marks.

    The cross wallet, every isolated wallet, and every position's unrealized
    PnL (`MarketMargin.upnl`); 0 for an unknown account.
    """
    account = ledger.accounts.get(name)
    if account is None:
        return 0
    return account.wallet + sum(
        p.margin + ledger.markets[p.symbol].upnl(p) for p in account.positions.values()
    )


def balance_view(ledger: Ledger, name: str) -> dict[str, Decimal]:
    """Return wallet / free / used / total (USDT) of one account.

    ``wallet`` = cross wallet + isolated wallets (no unrealized PnL); ``used`` =
    margin held by positions and open orders; ``free`` = what new orders and
    withdrawals may use; ``total`` = wallet + unrealized PnL of every position.
    """
    account = ledger.accounts.get(name)
    if account is None:
        zero = Decimal(0)
        return {"wallet": zero, "free": zero, "used": zero, "total": zero}
    isolated = sum(p.margin for p in account.positions.values())
    _, cross_im, _ = ledger.settlement.cross_totals(account)
    return {
        "wallet": from_e8(account.wallet + isolated),
        "free": from_e8(max(ledger.settlement.available(account), 0)),
        "used": from_e8(account.order_margin + cross_im + isolated),
        "total": from_e8(equity_e8(ledger, name)),
    }


def position_views(ledger: Ledger, name: str) -> list[dict[str, Any]]:
    """Return the account's open positions, ccxt-style, one dict per symbol."""
    account = ledger.accounts.get(name)
    if account is None:
        return []
    upnl, _, mm = ledger.settlement.cross_totals(account)
    return [
        _position_view(ledger, p, upnl, mm, account.wallet)
        for _, p in sorted(account.positions.items())
        if p.size
    ]


def entry_price(cost: int, size_e8: int) -> Decimal:
    """Return a position's entry price, cost / size (both E8; size not 0).

    Shown to 8 decimals, rounded half-even: for display only.
    """
    return from_e8(round(Fraction(cost * SCALE, size_e8)))


def _position_view(
    ledger: Ledger,
    position: Position,
    cross_upnl: int,
    cross_mm: int,
    cross_wallet: int,
) -> dict[str, Any]:
    """Return one position's view; cross positions see the account's other ones."""
    risk = ledger.markets[position.symbol]
    size_e8 = position.size * risk.lot_size
    notional = risk.notional(position.size)
    upnl = risk.upnl(position)
    mm = risk.tiers.maintenance_margin(notional)
    im = risk.tiers.initial_margin(notional, position.leverage)
    if position.mode == "isolated":
        wallet, other_mm, other_upnl, collateral = (
            position.margin,
            0,
            0,
            position.margin,
        )
        balance, maintenance = position.margin + upnl, mm
    else:
        wallet, other_mm, other_upnl = cross_wallet, cross_mm - mm, cross_upnl - upnl
        collateral = cross_wallet
        balance, maintenance = cross_wallet + cross_upnl, cross_mm
    liquidation = position_liquidation_price(
        size_e8,
        position.cost,
        wallet,
        risk.tiers,
        other_mm=other_mm,
        other_upnl=other_upnl,
    )
    entry = entry_price(position.cost, size_e8)
    return {
        "symbol": position.symbol,
        "side": "long" if position.size > 0 else "short",
        "contracts": from_e8(abs(size_e8)),
        "entry_price": entry,
        "mark_price": from_e8(risk.mark) if risk.mark else None,
        "notional": from_e8(notional),
        "leverage": position.leverage,
        "unrealized_pnl": from_e8(upnl),
        "liquidation_price": from_e8(liquidation) if liquidation else None,
        "margin_mode": position.mode,
        "collateral": from_e8(collateral),
        "initial_margin": from_e8(im),
        "maintenance_margin": from_e8(mm),
        # MM over margin balance: 1 (100%) or more means liquidation
        "margin_ratio": (Decimal(maintenance) / Decimal(balance)).quantize(
            Decimal("1e-6")
        )
        if balance > 0
        else None,
    }
