"""The session layer: bad input is a reject that changes nothing; none runs twice."""

from __future__ import annotations

import os

import msgspec
import pytest
from gateway_rig import NOW_MS, SECRETS, Rig, rejects, to
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.codes import RejectCode
from exchange.gateway.answers import Accepted, OrderUpdate, Rejected
from exchange.gateway.session import MAX_BATCH, MAX_PAYLOAD
from exchange.messages import Deposit, PlaceOrder, SetIndexPrice

EXAMPLES = int(os.environ.get("PAPERX_PROPERTY_EXAMPLES", "150"))
ORDER = {"symbol": "BTC-PERP", "side": "buy", "type": "limit", "qty": "0.1"}


@pytest.fixture
def rig() -> Rig:
    """A margin exchange where alice and bob each hold 100,000 USDT."""
    rig = Rig()
    for account in ("alice", "bob"):
        rig.apply(Deposit(account=account, amount=100_000 * 10**8))
    rig.apply(SetIndexPrice(symbol="BTC-PERP", price=65_000 * 10**8))
    return rig


def refused(rig: Rig, account: str, payload: bytes) -> list[tuple[str, str]]:
    """Send a payload, check it changed nothing, and return its rejects."""
    before, seq = rig.core.state_hash(), rig.core.last_seq
    decoded = rig.session.decode(account, payload, rig.now_ns)
    assert decoded.commands == []
    assert rig.core.state_hash() == before
    assert rig.core.last_seq == seq
    assert all(m.kind == "ack" and m.key == account for m in decoded.answers)
    return rejects(decoded.answers)


class TestBadInput:
    """Every kind of bad input: the right code on the sender's ack topic."""

    @pytest.mark.parametrize(
        "payload",
        [
            b"",
            b"{",
            b"not json",
            b"[]",
            b'{"req":{},"sig":"x"}',
            b'{"sig":"x"}',
            b'{"req":{"op":"cancel"},"sig":"x","extra":1}',
        ],
    )
    def test_malformed_payload_is_malformed(self, rig: Rig, payload):
        """Undecodable payloads and envelopes are MALFORMED."""
        assert [code for _, code in refused(rig, "alice", payload)] == ["MALFORMED"]

    @pytest.mark.parametrize(
        ("fields", "code"),
        [
            ({"side": "long"}, "MALFORMED"),  # not a side
            ({"qty": 0.1, "price": []}, "MALFORMED"),  # wrong type
            ({"account": "bob"}, "MALFORMED"),  # unknown field: no account on wire
            ({"qty": "NaN"}, "MALFORMED"),
            ({"qty": "1e30"}, "MALFORMED"),  # beyond a command's int
            ({"price": "65000.000000001"}, "TOO_PRECISE"),
            ({"price": "65000.05"}, "OFF_TICK"),
            ({"qty": "0.0005"}, "OFF_LOT"),
            ({"symbol": "DOGE-PERP"}, "UNKNOWN_SYMBOL"),
            ({"type": "market", "price": "65000"}, "PRICE_NOT_ALLOWED"),
            ({"price": None}, "PRICE_REQUIRED"),
            ({"cid": "x" * 37}, "INVALID_CLIENT_ORDER_ID"),
        ],
    )
    def test_bad_new_order_is_refused_with_its_code(self, rig: Rig, fields, code):
        """A new order that breaks a rule gets that rule's code, echoing its id."""
        request = rig.request("new", **{**ORDER, "price": "65000", **fields})
        assert refused(rig, "alice", rig.payload("alice", request)) == [
            (request["id"], code)
        ]

    def test_missing_field_is_malformed(self, rig: Rig):
        """A request without a required field is MALFORMED, with its id echoed."""
        request = rig.request("new", symbol="BTC-PERP", side="buy", type="market")
        assert refused(rig, "alice", rig.payload("alice", request)) == [
            (request["id"], "MALFORMED")
        ]

    @pytest.mark.parametrize(
        ("op", "fields", "code"),
        [
            ("cancel", {}, "MALFORMED"),
            ("amend", {"qty": "1"}, "MALFORMED"),
            ("amend", {"order_id": 1, "qty": "1.000000001"}, "TOO_PRECISE"),
            ("leverage", {"symbol": "X", "leverage": 5}, "UNKNOWN_SYMBOL"),
            ("cancel_all", {"symbol": "X"}, "UNKNOWN_SYMBOL"),
            ("margin_mode", {"symbol": "BTC-PERP", "mode": "both"}, "MALFORMED"),
            ("adjust_margin", {"symbol": "BTC-PERP", "amount": True}, "MALFORMED"),
            ("book", {"symbol": "X"}, "UNKNOWN_SYMBOL"),
            ("open_orders", {"symbol": "X"}, "UNKNOWN_SYMBOL"),
            ("deposit", {"amount": "100"}, "MALFORMED"),  # not a bot's command
        ],
    )
    def test_other_bad_requests(self, rig: Rig, op, fields, code):
        """Commands and queries that cannot mean anything are refused at the edge."""
        request = rig.request(op, **fields)
        ((_, name),) = refused(rig, "alice", rig.payload("alice", request))
        assert name == code

    def test_bad_signature_is_refused(self, rig: Rig):
        """A request signed with another secret is BAD_SIGNATURE."""
        payload = rig.payload("alice", rig.request("new", **ORDER), SECRETS["bob"])
        assert [c for _, c in refused(rig, "alice", payload)] == ["BAD_SIGNATURE"]

    def test_unsigned_request_is_refused(self, rig: Rig):
        """A request without a signature is SIGNATURE_MISSING."""
        body = msgspec.json.encode(rig.request("balance"))
        payload = b'{"req":' + body + b"}"
        assert [c for _, c in refused(rig, "alice", payload)] == ["SIGNATURE_MISSING"]

    def test_tampered_request_is_refused(self, rig: Rig):
        """Changing one byte after signing breaks the signature."""
        payload = rig.payload("alice", rig.request("new", **ORDER, price="65000"))
        tampered = payload.replace(b'"0.1"', b'"9.1"')
        assert [c for _, c in refused(rig, "alice", tampered)] == ["BAD_SIGNATURE"]

    def test_unknown_account_is_refused(self, rig: Rig):
        """An account without credentials is UNKNOWN_ACCOUNT."""
        payload = rig.payload("alice", rig.request("balance"))
        assert [c for _, c in refused(rig, "mallory", payload)] == ["UNKNOWN_ACCOUNT"]

    @pytest.mark.parametrize("offset_ms", [-5_001, 1_001, -(10**12)])
    def test_stale_timestamp_is_refused(self, rig: Rig, offset_ms):
        """A request stamped outside its receive window is STALE_TIMESTAMP."""
        request = rig.request("new", **ORDER, price="65000", ts_ms=NOW_MS + offset_ms)
        assert [c for _, c in refused(rig, "alice", rig.payload("alice", request))] == [
            "STALE_TIMESTAMP"
        ]

    def test_oversized_batch_refuses_every_command(self, rig: Rig):
        """A batch past the limit answers each of its commands BATCH_TOO_LARGE."""
        cmds = [rig.request("cancel", order_id=1) for _ in range(MAX_BATCH + 1)]
        payload = rig.payload("alice", {"op": "batch", "cmds": cmds})
        answers = refused(rig, "alice", payload)
        assert answers == [(c["id"], "BATCH_TOO_LARGE") for c in cmds]

    def test_oversized_payload_is_refused(self, rig: Rig):
        """A payload longer than the gateway reads is PAYLOAD_TOO_LARGE."""
        payload = b" " * (MAX_PAYLOAD + 1)
        assert [c for _, c in refused(rig, "alice", payload)] == ["PAYLOAD_TOO_LARGE"]

    def test_cancel_of_another_accounts_order_is_unknown(self, rig: Rig):
        """Bob cannot cancel alice's order: the core knows no such order of his."""
        placed = rig.call("alice", "new", **ORDER, price="64000")
        (accepted,) = [m for m in to(placed, "ack", "alice") if isinstance(m, Accepted)]
        before = rig.core.state_hash(include_seq=False)
        answers = rig.call("bob", "cancel", order_id=accepted.order_id)
        assert [(a.key, a.message.name) for a in answers] == [  # type: ignore[union-attr]
            ("bob", "UNKNOWN_ORDER")
        ]
        assert rig.core.state_hash(include_seq=False) == before
        assert rig.core.index[accepted.order_id].account == "alice"


class TestIdempotency:
    """A redelivery or a retry never executes twice."""

    def test_redelivery_is_answered_with_the_original_outcome(self, rig: Rig):
        """The same payload twice places one order; the second gets the same ack."""
        payload = rig.payload("alice", rig.request("new", **ORDER, price="64000"))
        first = to(rig.send("alice", payload), "ack", "alice")[0]
        before = rig.core.state_hash()
        again = rig.session.decode("alice", payload, rig.now_ns)
        assert again.commands == []
        assert rig.core.state_hash() == before
        (answer,) = [m.message for m in again.answers]
        assert isinstance(first, Accepted)
        assert answer == msgspec.structs.replace(first, duplicate=True)

    def test_redelivery_while_in_flight_is_answered_with_the_original(self, rig: Rig):
        """A duplicate that arrives before the outcome is answered with it."""
        payload = rig.payload("alice", rig.request("new", **ORDER, price="64000"))
        first = rig.session.decode("alice", payload, rig.now_ns)
        second = rig.session.decode("alice", payload, rig.now_ns)
        assert len(first.commands) == 1
        assert second == ([], [])
        acks = [m.message for m in rig.apply(first.commands[0]) if m.kind == "ack"]
        accepted = [a for a in acks if isinstance(a, Accepted)]
        assert [a.duplicate for a in accepted] == [False, True]

    def test_retry_with_the_same_client_order_id_does_not_place_twice(self, rig: Rig):
        """A new request id with an accepted order's cid gets that acceptance."""
        rig.call("alice", "new", **ORDER, price="64000", cid="once")
        retry = rig.call("alice", "new", **ORDER, price="64000", cid="once")
        (answer,) = [m.message for m in retry]
        assert isinstance(answer, Accepted)
        assert answer.duplicate
        assert len(rig.core.by_account["alice"]) == 1

    def test_rejected_order_frees_its_client_order_id(self, rig: Rig):
        """After a core reject, a corrected retry with the same cid runs."""
        too_big = rig.call(
            "alice", "new", **{**ORDER, "qty": "999"}, price="64000", cid="c"
        )
        assert rejects(too_big)[0][1] == "INSUFFICIENT_MARGIN"
        retry = rig.call("alice", "new", **ORDER, price="64000", cid="c")
        assert not to(retry, "ack", "alice")[0].duplicate  # type: ignore[union-attr]
        assert len(rig.core.by_account["alice"]) == 1

    def test_refused_command_is_forgotten_so_a_retry_runs(self, rig: Rig):
        """A command the adapter cannot submit is answered OVERLOADED; a retry runs."""
        payload = rig.payload("alice", rig.request("new", **ORDER, price="64000"))
        (command,) = rig.session.decode("alice", payload, rig.now_ns).commands
        (answer,) = rig.session.refuse(command, RejectCode.OVERLOADED, "queue full")
        assert answer.message.name == "OVERLOADED"  # type: ignore[union-attr]
        retried = rig.session.decode("alice", payload, rig.now_ns)
        assert len(retried.commands) == 1

    def test_forgotten_requests_cannot_be_replayed(self, rig: Rig):
        """Once memory is full, a request older than what it forgot is stale."""
        rig.session.memory.capacity = 2
        old = rig.payload("alice", rig.request("cancel", order_id=99))
        rig.send("alice", old)
        rig.now_ns += 1_000_000
        for _ in range(2):
            rig.call("alice", "cancel", order_id=99)
        assert [c for _, c in refused(rig, "alice", old)] == ["STALE_TIMESTAMP"]


class TestBatchAndQueries:
    """Batches answer each command; queries answer from the published state."""

    def test_batch_commands_are_answered_one_by_one(self, rig: Rig):
        """A batch of a good and a bad order: one accepted, one rejected."""
        good = rig.request("new", **ORDER, price="64000")
        bad = rig.request("new", **ORDER, price="64000.05")
        messages = rig.send(
            "alice", rig.payload("alice", {"op": "batch", "cmds": [good, bad]})
        )
        acks = [
            (a.id, type(a).__name__)
            for a in to(messages, "ack", "alice")
            if isinstance(a, Accepted | Rejected)
        ]
        assert sorted(acks) == sorted(
            [(good["id"], "Accepted"), (bad["id"], "Rejected")]
        )

    def test_open_orders_and_book_queries(self, rig: Rig):
        """Queries list alice's orders and the book, and change nothing."""
        rig.call("alice", "new", **ORDER, price="64000", cid="q1")
        before = rig.core.state_hash()
        (orders,) = [m.message for m in rig.call("alice", "open_orders")]
        (book,) = [m.message for m in rig.call("bob", "book", symbol="BTC-PERP")]
        (empty,) = [m.message for m in rig.call("bob", "open_orders")]
        assert [o.client_order_id for o in orders.orders] == ["q1"]  # type: ignore[union-attr]
        assert [str(p) for p, _ in book.bids] == ["64000"]  # type: ignore[union-attr]
        assert empty.orders == []  # type: ignore[union-attr]
        assert rig.core.state_hash() == before

    def test_balance_query_without_margin_is_refused(self):
        """A venue without the margin ledger refuses balance queries."""
        rig = Rig(margin=False)
        (answer,) = [m.message for m in rig.call("alice", "balance")]
        assert answer.name == "MARGIN_DISABLED"  # type: ignore[union-attr]


class TestFuzz:
    """Whatever arrives, the session answers and never raises."""

    @settings(max_examples=EXAMPLES)
    @given(payload=st.binary(max_size=300))
    def test_random_bytes_never_raise_and_change_nothing(self, payload):
        """Random bytes are refused with coded rejects; the core is untouched."""
        rig = Rig()
        assert refused(rig, "alice", payload)

    @settings(max_examples=EXAMPLES)
    @given(
        fields=st.dictionaries(
            st.sampled_from(
                [
                    "op",
                    "id",
                    "ts_ms",
                    "symbol",
                    "side",
                    "type",
                    "qty",
                    "price",
                    "cid",
                    "order_id",
                    "leverage",
                    "mode",
                    "amount",
                    "cmds",
                    "depth",
                    "x",
                ]
            ),
            st.recursive(
                st.none()
                | st.booleans()
                | st.integers()
                | st.text(max_size=8)
                | st.sampled_from(
                    [
                        "new",
                        "cancel",
                        "amend",
                        "batch",
                        "BTC-PERP",
                        "buy",
                        "limit",
                        "market",
                        "0.1",
                        "65000",
                        "1e9",
                        "-1",
                        "isolated",
                    ]
                ),
                lambda inner: (
                    st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=4), inner, max_size=3)
                ),
                max_leaves=6,
            ),
            max_size=8,
        )
    )
    def test_signed_random_requests_never_raise(self, fields):
        """Signed random JSON gives rejects or well-typed commands the core applies."""
        rig = Rig()
        rig.apply(Deposit(account="alice", amount=10**12))
        fields.setdefault("ts_ms", NOW_MS)
        decoded = rig.session.decode("alice", rig.payload("alice", fields), rig.now_ns)
        for command in decoded.commands:
            assert (
                msgspec.convert(msgspec.to_builtins(command), type(command)) == command
            )
            assert command.account == "alice"  # type: ignore[union-attr]
            rig.apply(command)
        assert all(m.kind == "ack" for m in decoded.answers)


def test_order_updates_follow_a_recovered_book():
    """A session built over a core with open orders reports their fills."""
    rig = Rig()
    for account in ("alice", "bob"):
        rig.apply(Deposit(account=account, amount=100_000 * 10**8))
    rig.apply(SetIndexPrice(symbol="BTC-PERP", price=65_000 * 10**8))
    rig.apply(
        PlaceOrder(
            account="alice",
            symbol="BTC-PERP",
            side="sell",
            type="limit",
            qty=10**7,
            price=65_000 * 10**8,
        )
    )
    rig.session = type(rig.session)(rig.core, rig.session.keys, codec=rig.codec)
    messages = rig.call("bob", "new", **{**ORDER, "qty": "0.05"}, price="65000")
    (update,) = [m for m in to(messages, "ack", "alice") if isinstance(m, OrderUpdate)]
    assert (update.status, str(update.filled), str(update.remaining)) == (
        "partially_filled",
        "0.05",
        "0.05",
    )
    (snapshot,) = [rig.session.snapshot("BTC-PERP")]
    assert [str(q) for _, q in snapshot.message.asks] == ["0.05"]  # type: ignore[union-attr]
