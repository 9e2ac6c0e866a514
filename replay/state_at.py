"""The state of a recorded run at any point: rebuilt up to a seq or a time, then viewed.

`rebuild_until` folds the journal's records (`Rebuilder`), from its newest
valid snapshot before the point asked for, up to and including a seq, or
every record stamped at or before an exchange time; `state_view`
returns what a trader's screen would show at that point: the top of every
book, every account's balance and positions (entry, mark, unrealized PnL,
liquidation price; `exchange.shell.account_views`), and the insurance fund,
as plain data (decimal strings); `state_text` renders it as tables.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from exchange.journal.snapshots import SnapshotFile, snapshot_store
from exchange.shell.account_views import balance_view, position_views
from exchange.units import from_e8
from replay.fmt import iso_utc, table
from replay.rebuild import Rebuilder
from replay.recover import newest_snapshot

if TYPE_CHECKING:
    from exchange.core import ExchangeCore
    from replay.log import ExchangeLog

__all__ = ["rebuild_until", "state_text", "state_view"]


def rebuild_until(
    log: ExchangeLog,
    *,
    seq: int | None = None,
    ts_ns: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> ExchangeCore:
    """Return the state after record ``seq``, or after the last one at ``ts_ns``.

    With neither, the state at the end of the journal. The rebuild starts
    from the journal's newest valid snapshot at or before that point
    (`replay.recover.newest_snapshot`), else from the first record.
    ``progress(seq)`` is called every 1,024 records.

    Raises:
        Divergence: if an event contradicts the rebuilt state.
    """

    def fits(body: SnapshotFile) -> bool:
        """Keep snapshots taken at or before the point asked for."""
        # exchange time never goes back, so a snapshot's time bounds its records'
        return (seq is None or body.seq <= seq) and (
            ts_ns is None or body.ts_ns <= ts_ns
        )

    store = snapshot_store(log.path)
    try:
        start = newest_snapshot(store, log, fits=fits)
    finally:
        store.close()
    rebuilder = Rebuilder(log.markets, margin=log.margin, core=start.core)
    for entry in log.entries(rebuilder.core.last_seq + 1):
        record = entry.record
        if (seq is not None and record.seq > seq) or (
            ts_ns is not None and record.ts_ns > ts_ns
        ):
            break
        rebuilder.apply(entry)
        if progress is not None and not record.seq % 1024:
            progress(record.seq)
    return rebuilder.core


def _text(value: object) -> object:
    """Return plain data with every Decimal as a decimal string."""
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, dict):
        return {k: _text(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_text(v) for v in value]
    return value


def state_view(
    core: ExchangeCore, *, depth: int = 5, accounts: list[str] | None = None
) -> dict[str, Any]:
    """Return the state as plain data: books, accounts (all, or ``accounts``), fund."""
    books = {}
    for symbol, state in sorted(core.markets.items()):
        m = state.market
        books[symbol] = {
            side: [
                [m.price_decimal(p), m.qty_decimal(q)]
                for p, q in state.book.depth(is_buy=side == "bids", levels=depth)
            ]
            for side in ("bids", "asks")
        }
    view: dict[str, Any] = {
        "seq": core.last_seq,
        "time": iso_utc(core.ts_ns) if core.ts_ns else None,
        "books": books,
    }
    ledger = core.ledger
    if ledger is not None:
        names = sorted(ledger.accounts) if accounts is None else accounts
        view["accounts"] = {
            name: {
                **balance_view(ledger, name),
                "positions": position_views(ledger, name),
            }
            for name in names
        }
        view["insurance_fund"] = from_e8(ledger.settlement.insurance_fund)
    result = _text(view)
    assert isinstance(result, dict)
    return result


def state_text(view: dict[str, Any]) -> str:
    """Render a `state_view` as tables: books, balances, positions, the fund."""
    lines = [f"state after seq {view['seq']}  ({view['time'] or 'no time yet'})", ""]
    for symbol, book in view["books"].items():
        rows = [
            [
                f"{bid[1]} @ {bid[0]}" if bid else "",
                f"{ask[0]} x {ask[1]}" if ask else "",
            ]
            for bid, ask in _pairs(book["bids"], book["asks"])
        ]
        lines += [table([f"{symbol}  bids", "asks"], rows or [["(empty)", ""]]), ""]
    accounts = view.get("accounts")
    if accounts is None:
        return "\n".join(lines).rstrip()
    balances = [
        [name, a["wallet"], a["free"], a["used"], a["total"]]
        for name, a in accounts.items()
    ]
    lines += [table(["account", "wallet", "free", "used", "equity"], balances), ""]
    positions = [
        [
            name,
            p["symbol"],
            f"{p['side']} {p['contracts']}",
            p["margin_mode"],
            str(p["leverage"]),
            p["entry_price"],
            p["mark_price"] or "-",
            p["unrealized_pnl"],
            p["liquidation_price"] or "-",
        ]
        for name, a in accounts.items()
        for p in a["positions"]
    ]
    if positions:
        header = ["account", "symbol", "position", "mode", "lev", "entry", "mark"]
        lines += [table([*header, "upnl", "liq. price"], positions), ""]
    lines.append(f"insurance fund  {view['insurance_fund']}")
    return "\n".join(lines)


def _pairs(bids: list[Any], asks: list[Any]) -> list[tuple[Any, Any]]:
    """Return the book's levels side by side, the shorter side padded."""
    n = max(len(bids), len(asks))
    return [
        (bids[i] if i < len(bids) else None, asks[i] if i < len(asks) else None)
        for i in range(n)
    ]
