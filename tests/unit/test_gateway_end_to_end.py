"""An exchange driven through the session layer: decode -> core.handle -> outcome."""

from __future__ import annotations

from decimal import Decimal

import pytest
from gateway_rig import Rig, to

from exchange.gateway import answers as out
from exchange.messages import Deposit, SetIndexPrice

D = Decimal


def book_from(messages: list, symbol: str) -> dict[str, dict[Decimal, Decimal]]:
    """Rebuild a book from a snapshot-free stream of deltas, checking book_seq."""
    book: dict[str, dict[Decimal, Decimal]] = {"bids": {}, "asks": {}}
    deltas = [m for m in to(messages, "book", symbol) if isinstance(m, out.BookUpdate)]
    assert [d.book_seq for d in deltas] == list(range(1, len(deltas) + 1))
    for delta in deltas:
        for side, levels in (("bids", delta.bids), ("asks", delta.asks)):
            for price, qty in levels:
                if qty:
                    book[side][price] = qty
                else:
                    book[side].pop(price, None)
    return book


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_fills_and_a_liquidation_reach_each_account_and_the_market(fmt):
    """Alice's leveraged long fills, is liquidated into carol's bid; all are told."""
    rig = Rig(fmt=fmt)
    log = []
    for account, amount in (("alice", 1_000), ("bob", 100_000), ("carol", 100_000)):
        log += rig.apply(Deposit(account=account, amount=amount * 10**8))
    log += rig.apply(SetIndexPrice(symbol="BTC-PERP", price=65_000 * 10**8))
    order = {"symbol": "BTC-PERP", "type": "limit", "qty": "0.5"}
    log += rig.call("alice", "margin_mode", symbol="BTC-PERP", mode="isolated")
    log += rig.call("alice", "leverage", symbol="BTC-PERP", leverage=50)
    log += rig.call("bob", "new", **order, side="sell", price="65000", cid="b-ask")
    log += rig.call("alice", "new", **order, side="buy", price="65000", cid="a-bid")
    log += rig.call("carol", "new", **order, side="buy", price="63750", cid="c-bid")
    log += rig.apply(SetIndexPrice(symbol="BTC-PERP", price=63_800 * 10**8))

    alice_acks = to(log, "ack", "alice")
    accepted = [a for a in alice_acks if isinstance(a, out.Accepted)]
    assert [a.op for a in accepted] == ["margin_mode", "leverage", "new"]
    assert not any(isinstance(a, out.Rejected) for a in log)
    fills = [f for f in alice_acks if isinstance(f, out.TradeFill)]
    assert [(f.side, f.price, f.qty, f.liquidity) for f in fills] == [
        ("buy", D(65000), D("0.5"), "taker"),
        ("sell", D(63750), D("0.5"), "taker"),  # the liquidation order
    ]
    assert fills[0].cid == "a-bid"

    alice_acct = to(log, "acct", "alice")
    (call,) = [n for n in alice_acct if isinstance(n, out.MarginCallNotice)]
    (liquidation,) = [n for n in alice_acct if isinstance(n, out.LiquidationNotice)]
    assert (call.symbol, liquidation.mode) == ("BTC-PERP", "isolated")
    assert (liquidation.qty, liquidation.filled, liquidation.left) == (
        D("0.5"),
        D("0.5"),
        D(0),
    )
    assert liquidation.bankruptcy_price == D(63700)
    positions = [p for p in alice_acct if isinstance(p, out.PositionUpdate)]
    assert positions[-1].size == 0

    carol_fills = [f for f in to(log, "ack", "carol") if isinstance(f, out.TradeFill)]
    assert [(f.cid, f.liquidity, f.qty) for f in carol_fills] == [
        ("c-bid", "maker", D("0.5"))
    ]
    bob_updates = [u for u in to(log, "ack", "bob") if isinstance(u, out.OrderUpdate)]
    assert [u.status for u in bob_updates] == ["new", "filled"]

    trades = to(log, "trades", "BTC-PERP")
    assert [(t.price, t.taker_side) for t in trades] == [  # type: ignore[union-attr]
        (D(65000), "buy"),
        (D(63750), "sell"),
    ]
    marks = [m.mark for m in to(log, "mark", "BTC-PERP")]  # type: ignore[union-attr]
    assert marks[-1] == D(63800)

    rebuilt = book_from(log, "BTC-PERP")
    snapshot = rig.session.snapshot("BTC-PERP").message  # type: ignore[union-attr]
    assert dict(snapshot.bids) == rebuilt["bids"]
    assert dict(snapshot.asks) == rebuilt["asks"] == {}
    core_bids = rig.core.markets["BTC-PERP"].book.depth(is_buy=True, levels=100)
    assert len(core_bids) == len(rebuilt["bids"])


def test_each_account_hears_only_its_own_private_messages():
    """Private messages go to their owner's topics; the rest is public."""
    rig = Rig()
    log = []
    for account in ("alice", "bob"):
        log += rig.apply(Deposit(account=account, amount=100_000 * 10**8))
    log += rig.apply(SetIndexPrice(symbol="ETH-PERP", price=3_000 * 10**8))
    order = {"symbol": "ETH-PERP", "type": "limit", "qty": "1", "price": "3000"}
    log += rig.call("alice", "new", **order, side="sell")
    log += rig.call("bob", "new", **order, side="buy")
    owned = {
        a.order_id: m.key
        for m in log
        if isinstance(a := m.message, out.Accepted) and a.op == "new"
    }
    assert sorted(owned.values()) == ["alice", "bob"]
    private = [m for m in log if m.kind in ("ack", "acct")]
    for message in private:
        if isinstance(message.message, out.TradeFill | out.OrderUpdate):
            assert owned[message.message.order_id] == message.key
    assert {m.key for m in log if m.kind not in ("ack", "acct")} == {"ETH-PERP"}
    assert sum(isinstance(m.message, out.TradeFill) for m in private) == 2
