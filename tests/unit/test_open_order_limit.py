"""The per-market open-order limit: exactly the order over it is refused, coded."""

from __future__ import annotations

import pytest
from gateway_rig import Rig

from exchange import Exchange
from exchange.codes import RejectCode
from exchange.errors import ConfigError, InvalidOrder
from exchange.gateway.answers import Rejected
from exchange.markets import Market, config_hash
from exchange.shell.config import markets_from_toml

LIMIT = 3


def _market(symbol: str = "BTC-PERP", limit: int = LIMIT) -> Market:
    """Return a market whose accounts may hold ``limit`` open orders each."""
    return Market.from_decimals(
        symbol, tick_size="0.1", lot_size="0.001", max_open_orders=limit
    )


@pytest.fixture
def venue() -> Exchange:
    """Return an exchange of two limited markets, without margin."""
    return Exchange([_market(), _market("ETH-PERP")])


def _bid(venue: Exchange, account: str = "alice", symbol: str = "BTC-PERP") -> int:
    """Place a resting bid; return its order id."""
    return venue.place_order(account, symbol, "buy", "limit", "0.01", "100").order_id


class TestOpenOrderLimit:
    """An account holds at most ``max_open_orders`` open orders per market."""

    def test_the_order_over_the_limit_is_refused_and_a_cancel_admits_one(
        self, venue: Exchange
    ) -> None:
        """N orders rest; the N+1-th is MAX_OPEN_ORDERS; after a cancel one rests."""
        ids = [_bid(venue) for _ in range(LIMIT)]
        before = venue.core.state_hash(include_seq=False)
        with pytest.raises(InvalidOrder) as refused:
            _bid(venue)
        assert refused.value.code == RejectCode.MAX_OPEN_ORDERS
        assert "limit is 3" in refused.value.reason
        assert venue.core.state_hash(include_seq=False) == before
        venue.cancel_order("alice", ids[0])
        _bid(venue)
        with pytest.raises(InvalidOrder):
            _bid(venue)

    def test_orders_waiting_for_their_trigger_count_and_are_limited(
        self, venue: Exchange
    ) -> None:
        """A stop is an open order: it counts, and at the limit it is refused."""
        venue.place_order("bob", "BTC-PERP", "sell", "limit", "0.01", "200")
        venue.place_order("alice", "BTC-PERP", "buy", "market", "0.01")  # last: 200
        stop = {"trigger_price": "250"}
        for _ in range(LIMIT):
            venue.place_order("alice", "BTC-PERP", "buy", "stop_market", "0.01", **stop)
        with pytest.raises(InvalidOrder):
            venue.place_order("alice", "BTC-PERP", "buy", "stop_market", "0.01", **stop)
        with pytest.raises(InvalidOrder):
            _bid(venue)

    def test_orders_that_never_stay_open_pass_at_the_limit(
        self, venue: Exchange
    ) -> None:
        """At the limit, market, IOC and FOK orders still trade or expire."""
        for _ in range(LIMIT):
            _bid(venue)
        venue.place_order("bob", "BTC-PERP", "sell", "limit", "0.05", "100")
        venue.place_order("alice", "BTC-PERP", "buy", "market", "0.01")
        ioc = venue.place_order(
            "alice", "BTC-PERP", "buy", "limit", "0.01", "90", tif="IOC"
        )
        fok = venue.place_order(
            "alice", "BTC-PERP", "buy", "limit", "0.01", "100", tif="FOK"
        )
        assert (ioc.status, fok.status) == ("expired", "filled")

    def test_the_limit_is_per_account_and_per_market(self, venue: Exchange) -> None:
        """Alice at her limit in BTC-PERP still quotes ETH-PERP; bob is untouched."""
        for _ in range(LIMIT):
            _bid(venue)
        _bid(venue, "alice", "ETH-PERP")
        _bid(venue, "bob")
        assert len(venue.open_orders("alice")) == LIMIT + 1

    def test_no_limit_by_default(self) -> None:
        """A market without ``max_open_orders`` takes any number of orders."""
        venue = Exchange()
        for _ in range(LIMIT * 10):
            _bid(venue)
        assert len(venue.open_orders("alice")) == LIMIT * 10

    def test_the_wire_answer_is_coded_with_the_core_seq(self) -> None:
        """Over the wire the refusal is a Rejected 4008 of the journaled record."""
        rig = Rig((_market(limit=1),), margin=False)
        order = {"symbol": "BTC-PERP", "side": "buy", "type": "limit", "qty": "0.01"}
        rig.call("alice", "new", price="100", cid="a1", **order)
        answers = rig.call("alice", "new", price="99", cid="a2", **order)
        (reject,) = [m.message for m in answers if isinstance(m.message, Rejected)]
        assert (reject.code, reject.name, reject.cid) == (4008, "MAX_OPEN_ORDERS", "a2")
        assert reject.seq == rig.core.last_seq


class TestMarketTable:
    """``max_open_orders`` in the market table."""

    def test_the_toml_key_sets_the_limit_and_enters_the_config_hash(self) -> None:
        """A limit changes the config hash; no limit leaves it as it always was."""
        base = '[markets.X]\ntick_size = "1"\nlot_size = "1"\n'
        (plain,) = markets_from_toml(base)
        (limited,) = markets_from_toml(base + "max_open_orders = 200\n")
        assert (plain.max_open_orders, limited.max_open_orders) == (0, 200)
        assert "max_open_orders" not in plain.as_mapping()
        assert config_hash([plain]) != config_hash([limited])
        assert Market.from_mapping("X", limited.as_mapping()) == limited

    @pytest.mark.parametrize("value", ["-1", '"5"', "true"])
    def test_a_bad_limit_is_a_config_error(self, value: str) -> None:
        """A negative, quoted or boolean limit is refused with the market named."""
        text = '[markets.X]\ntick_size = "1"\nlot_size = "1"\n'
        text += f"max_open_orders = {value}\n"
        with pytest.raises(ConfigError, match=r"\[markets.X\].*max_open_orders"):
            markets_from_toml(text)
