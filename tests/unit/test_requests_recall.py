"""A restarted session remembers the journaled requests of the receive window."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from gateway_rig import NOW_MS, SECRETS, Rig, to
from margin_helpers import FREE
from window_rig import check_window_starts, write_stamped

from exchange.gateway import answers as out
from exchange.gateway.auth import ApiCredentials, KeyStore
from exchange.gateway.session import Session
from exchange.gateway.stress import RejectInjector, RejectSettings
from exchange.gateway.wire import Outbound
from exchange.journal import FileJournal, read_journal
from exchange.journal.payload import JOURNALED_DECODER, exchange_header, journal_payload
from exchange.messages import Command, Deposit, Record, SetIndexPrice
from exchange.shell.requests import recent_requests, window_start

E8 = 10**8
BTC = "BTC-PERP"


class JournaledRig(Rig):
    """The gateway rig with a file journal that keeps each command's request id."""

    def __init__(self, directory: Path, segment_bytes: int = 64 << 20) -> None:
        """Create the rig and its journal in ``directory``."""
        super().__init__()
        self.journal = FileJournal.open(
            directory,
            header=exchange_header(FREE, margin=True),
            fsync="off",
            segment_bytes=segment_bytes,
        )

    def apply(self, command: Command) -> list[Outbound]:
        """Sequence and journal a command with its request id; return the messages."""
        record = Record(self.core.last_seq + 1, self.now_ns, command)
        events = self.core.handle(record)
        origin = self.session.origin(command)
        self.journal.append(record.seq, journal_payload(record, events, origin))
        messages = self.session.outcome(record, events)
        for system_command in self.core.take_system_commands():
            messages += self.apply(system_command)
        return messages


def _restarted(rig: Rig, directory: Path, since_ns: int = 0) -> Session:
    """Return a fresh session that remembers what the journal says ran."""
    keys = KeyStore(
        {a: ApiCredentials(api_key=f"{a}-key", secret=s) for a, s in SECRETS.items()}
    )
    session = Session(rig.core, keys, codec=rig.codec)
    reader = read_journal(directory)
    for request in recent_requests(reader, since_ns, rig.core.execution.next_order_id):
        session.restore(
            request.request_id,
            request.record,
            request.events,
            order_id=request.order_id,
            now_ms=rig.now_ns // 1_000_000,
        )
    return session


def _core_answers(log: list[Outbound]) -> dict[str, tuple[str, out.Answer]]:
    """Return the answers the core decided (seq set), by request id, with account."""
    return {
        m.message.id: (m.key, m.message)
        for m in log
        if m.kind == "ack"
        and isinstance(m.message, out.Accepted | out.Rejected)
        and m.message.seq
    }


def _trade_through_a_liquidation(rig: Rig) -> list[Outbound]:
    """Orders, a fill, a liquidation order between them, a reject, cancel and amend."""
    log: list[Outbound] = []
    for account, amount in (("alice", 1_000), ("bob", 100_000), ("carol", 100_000)):
        log += rig.apply(Deposit(account=account, amount=amount * E8))
    log += rig.apply(SetIndexPrice(symbol=BTC, price=65_000 * E8))
    order = {"symbol": BTC, "type": "limit", "qty": "0.5"}
    log += rig.call("alice", "margin_mode", symbol=BTC, mode="isolated")
    log += rig.call("alice", "leverage", symbol=BTC, leverage=50)
    log += rig.call("bob", "new", **order, side="sell", price="65000", cid="b-ask")
    log += rig.call("alice", "new", **order, side="buy", price="65000", cid="a-bid")
    log += rig.call("carol", "new", **order, side="buy", price="63750", cid="c-bid")
    log += rig.apply(SetIndexPrice(symbol=BTC, price=63_800 * E8))  # liquidates
    log += rig.call("bob", "new", **order, side="sell", price="70000", cid="b-2")
    log += rig.call(
        "carol", "new", **order, side="buy", price="70000", cid="c-po", post_only=True
    )
    log += rig.call("bob", "amend", cid="b-2", price="71000")
    log += rig.call("bob", "new", **order, side="sell", price="72000", cid="b-3")
    log += rig.call("bob", "cancel", cid="b-3")
    log += rig.call("carol", "new", **order, side="buy", price="60000", cid="c-2")
    return log


def test_restored_answers_equal_the_live_ones_order_ids_included(tmp_path):
    """Each journaled request is recalled with the answer the live session gave."""
    rig = JournaledRig(tmp_path)
    log = _trade_through_a_liquidation(rig)
    rig.journal.close()
    live = _core_answers(log)
    names = [a.name for _, a in live.values() if isinstance(a, out.Rejected)]
    assert names == ["POST_ONLY_WOULD_TAKE"]
    assert any(
        isinstance(f, out.TradeFill) and f.liquidity == "taker" and not f.cid
        for f in to(log, "ack", "alice")
    )  # the liquidation order took an order id between the users' orders
    restarted = _restarted(rig, tmp_path)
    for request_id, (account, answer) in live.items():
        remembered = restarted.memory.recall(account, request_id, "")
        assert remembered is not None
        assert remembered.answer == answer


def test_a_retry_after_a_restart_is_answered_and_never_runs(tmp_path):
    """The same request id (or an open order's client id) gets the original answer."""
    rig = JournaledRig(tmp_path)
    rig.apply(Deposit(account="bob", amount=100_000 * E8))
    original = rig.request(
        "new", symbol=BTC, type="limit", qty="0.5", side="sell", price="65000", cid="x"
    )
    (ack,) = [
        m.message
        for m in rig.send("bob", rig.payload("bob", original))
        if isinstance(m.message, out.Accepted)
    ]
    rig.journal.close()
    rig.session = _restarted(rig, tmp_path)
    retry = rig.payload("bob", original | {"ts_ms": NOW_MS + 5_000})
    rig.now_ns += 5_000_000_000
    decoded = rig.session.decode("bob", retry, rig.now_ns)
    again = rig.request(
        "new", symbol=BTC, type="limit", qty="0.5", side="sell", price="65000", cid="x"
    )  # a new request id, the same client order id
    by_cid = rig.session.decode("bob", rig.payload("bob", again), rig.now_ns)
    assert decoded.commands == by_cid.commands == []
    (answer,) = [m.message for m in decoded.answers]
    (cid_answer,) = [m.message for m in by_cid.answers]
    assert isinstance(ack, out.Accepted)
    assert isinstance(answer, out.Accepted)
    assert isinstance(cid_answer, out.Accepted)
    assert (answer.order_id, answer.seq, answer.duplicate) == (
        ack.order_id,
        ack.seq,
        True,
    )
    assert (cid_answer.order_id, cid_answer.id) == (ack.order_id, again["id"])
    assert len(rig.core.execution.index) == 1


def test_an_injected_reject_is_recalled_as_the_commands_own_reject(tmp_path):
    """After a restart, a retry of a request refused on purpose repeats the reject."""
    rig = JournaledRig(tmp_path)
    rig.apply(Deposit(account="bob", amount=100_000 * E8))
    rig.session.injector = RejectInjector(RejectSettings(probability=1.0), 1)
    original = rig.request(
        "new", symbol=BTC, type="limit", qty="0.5", side="sell", price="65000", cid="x"
    )
    (live,) = [m.message for m in rig.send("bob", rig.payload("bob", original))]
    rig.journal.close()
    rig.session = _restarted(rig, tmp_path)
    decoded = rig.session.decode("bob", rig.payload("bob", original), rig.now_ns)
    (again,) = [m.message for m in decoded.answers]
    assert decoded.commands == []
    assert isinstance(live, out.Rejected)
    assert again == msgspec.structs.replace(live, duplicate=True)
    assert (again.op, again.cid, again.name) == ("new", "x", "INJECTED_REJECT")


def test_only_the_window_is_read_and_recalled(tmp_path):
    """Requests older than the window are left out, and older segments unread."""
    rig = JournaledRig(tmp_path, segment_bytes=600)
    rig.apply(Deposit(account="bob", amount=100_000 * E8))
    acks = []
    for n in range(30):
        rig.now_ns += 1_000_000_000
        price = str(66_000 + n * 10)
        messages = rig.call("bob", "new", symbol=BTC, type="limit", qty="0.01",
                            side="sell", price=price)  # fmt: skip
        acks += [m.message for m in messages if isinstance(m.message, out.Accepted)]
    rig.journal.close()
    since_ns = rig.now_ns - 9_500_000_000  # the last ten requests
    reader = read_journal(tmp_path)
    start = window_start(reader, since_ns)
    stamps = {
        seq: JOURNALED_DECODER.decode(payload).record.ts_ns
        for seq, payload in reader.read()
    }
    recalled = recent_requests(reader, since_ns, rig.core.execution.next_order_id)
    assert start == min(s for s, ts in stamps.items() if ts >= since_ns)
    assert [(r.request_id, r.order_id) for r in recalled] == [
        (a.id, a.order_id) for a in acks[-10:]
    ]


@pytest.mark.parametrize("segment_bytes", [64 << 20, 300])
def test_the_window_starts_at_the_first_record_at_or_after_its_time(
    tmp_path: Path, segment_bytes: int
) -> None:
    """One segment or many: segments' first records, then a search inside one."""
    header = exchange_header(FREE, margin=True)
    journal = FileJournal.open(
        tmp_path, header=header, fsync="off", segment_bytes=segment_bytes
    )
    write_stamped(journal)
    check_window_starts(str(tmp_path))
