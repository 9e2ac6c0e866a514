"""The session layer: bytes from a bot to core commands, records to messages.

Transport-neutral and free of I/O: a transport adapter (MQTT now, REST and
WebSocket next) drives it with three calls, all on the task that owns the
core, and publishes what they return:

1. ``decode(account, payload, now_ns)`` with the account the transport
   authenticated (MQTT: the topic's) -> `Decoded`: the core commands to
   submit, in order, and the answers already due (rejects, duplicates'
   answers, query results). Nothing malformed, unsigned, stale or off the
   market's grid becomes a command.
2. The adapter submits each command, unchanged (the session knows its
   commands by identity), through the sequencer; if it cannot (the intake
   queue is full), ``refuse(command, code, message)`` answers it instead.
3. ``outcome(record, events)`` for *every* record the core applied, in seq
   order (system records too), once it is durable -> the acks of the
   session's own commands, order updates, fills, account updates and
   public market data.

With an `injector` (the stress settings' reject injection), a command it
draws is sent wrapped in `InjectReject`: the core journals and refuses it
(INJECTED_REJECT), and its answer is the same `Rejected` as any reject of
that command (its request id, op, client order id and the record's seq).

``origin(command)`` is the request id a command came in under, for the
journal to keep beside its record. After a restart the session has
forgotten every request; ``restore(...)`` gives it back the journaled ones
still inside the receive window, with their answers, so a retry of a
request that ran before the crash is answered as a duplicate, not run again.

Every answer is an `Outbound` (topic kind, account or symbol, message);
encode it with ``session.codec``. Nothing raises out of `decode`: whatever
the bytes, the sender gets coded rejects on its ack topic.
"""

from __future__ import annotations

import random
from typing import NamedTuple

import msgspec

from exchange import messages as ev
from exchange.codes import Refusal, RejectCode
from exchange.core import ExchangeCore
from exchange.gateway import answers as out
from exchange.gateway import wire
from exchange.gateway.auth import KeyStore, check_timestamp, verify
from exchange.gateway.intake import to_command
from exchange.gateway.limits import RateLimits
from exchange.gateway.memory import Remembered, RequestMemory
from exchange.gateway.publish import Publisher
from exchange.gateway.queries import answer_query
from exchange.gateway.stress import RejectInjector
from exchange.gateway.wire import Outbound

__all__ = ["MAX_BATCH", "MAX_PAYLOAD", "Decoded", "Session"]

MAX_BATCH = 50  # commands per batch message (Binance's batchOrders takes 5)
MAX_PAYLOAD = 64 * 1024  # bytes of one message; a full batch needs ~15 KiB


class Decoded(NamedTuple):
    """What a payload became: core commands to submit and answers due now."""

    commands: list[ev.Command]
    answers: list[Outbound]


class _IdOnly(msgspec.Struct):
    """Just a request's id, read from a request that failed to decode."""

    id: str = ""
    op: str = ""


class _Pending(NamedTuple):
    """A command on its way to the core: who sent it and what it remembers."""

    account: str
    command: ev.Command
    entry: Remembered


class Session:
    """Decodes and authenticates requests, and answers them from the records."""

    def __init__(
        self,
        core: ExchangeCore,
        keys: KeyStore,
        *,
        codec: wire.Codec | None = None,
        max_batch: int = MAX_BATCH,
        memory: RequestMemory | None = None,
        limits: RateLimits | None = None,
        injector: RejectInjector | None = None,
    ) -> None:
        """Serve ``core``'s markets to the accounts of ``keys``.

        Build it when the core is in its starting state (fresh or recovered)
        and before any record is in flight: the session's views start there.
        ``limits``: per-account request rate limits (None: unlimited).
        ``injector``: which commands to refuse on purpose (None: none).
        """
        self.core = core
        self.keys = keys
        self.codec = codec or wire.Codec()
        self.max_batch = max_batch
        self.memory = memory or RequestMemory()
        self.limits = limits
        self.injector = injector
        self.publisher = Publisher(core)
        self._lenient = (
            msgspec.json.Decoder(_IdOnly)
            if self.codec.fmt == "json"
            else msgspec.msgpack.Decoder(_IdOnly)
        )
        self._pending: dict[int, _Pending] = {}  # id(command) -> its sender
        self._published_seq = core.last_seq

    # ------------------------------------------------------------ intake

    def decode(self, account: str, payload: bytes, now_ns: int) -> Decoded:
        """Turn one payload from ``account`` into commands and answers.

        ``now_ns`` is the exchange's clock, for the timestamp window.
        """
        result = Decoded([], [])
        try:
            self._decode(account, payload, now_ns // 1_000_000, result)
        except Exception as exc:  # noqa: BLE001 -- the session never raises
            # A bug, not bad input: the sender still gets an answer.
            self._reject(result, account, "", "", RejectCode.INTERNAL, repr(exc))
        return result

    def _decode(
        self, account: str, payload: bytes, now_ms: int, result: Decoded
    ) -> None:
        """Decode, authenticate and convert; answers and commands go to ``result``."""
        if len(payload) > MAX_PAYLOAD:
            message = f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}"
            self._reject(result, account, "", "", RejectCode.PAYLOAD_TOO_LARGE, message)
            return
        try:
            envelope = self.codec.envelope(payload)
            request = self.codec.request(envelope.req)
        except msgspec.DecodeError as exc:
            salvaged = self._salvage(payload)
            self._reject(result, account, *salvaged, RejectCode.MALFORMED, str(exc))
            return
        items = request.cmds if isinstance(request, wire.Batch) else [request]
        refusal = self._authenticate(account, bytes(envelope.req), envelope.sig)
        if refusal is None and len(items) > self.max_batch:
            refusal = Refusal(
                RejectCode.BATCH_TOO_LARGE,
                f"a batch of {len(items)} commands exceeds {self.max_batch}",
            )
        for item in items:
            if refusal is not None:
                self._reject(
                    result, account, item.id, _op(item), refusal.code, refusal.reason
                )
            else:
                self._item(account, item, now_ms, result)

    def _item(
        self,
        account: str,
        item: wire.BatchItem | wire.Query,
        now_ms: int,
        result: Decoded,
    ) -> None:
        """Handle one authenticated request: a duplicate, a query or a command."""
        op = _op(item)
        cid = item.cid if isinstance(item, wire.NewOrder) else ""
        if not isinstance(item, wire.Query):
            repeated = self.memory.recall(account, item.id, cid)
            if repeated is not None:
                self._repeat(result, account, repeated, item.id)
                return
        stale = check_timestamp(item.ts_ms, item.recv_window_ms, now_ms)
        if stale is None and item.ts_ms <= self.memory.floor(account):
            stale = Refusal(
                RejectCode.STALE_TIMESTAMP,
                "ts_ms is older than requests already forgotten",
            )
        if stale is not None:
            self._reject(result, account, item.id, op, stale.code, stale.reason, cid)
            return
        wait_ms = 0 if self.limits is None else self.limits.admit(account, now_ms)
        if wait_ms:
            message = f"over the request rate limit: retry after {wait_ms} ms"
            self._reject(
                result,
                account,
                item.id,
                op,
                RejectCode.RATE_LIMITED,
                message,
                cid,
                retry_after_ms=wait_ms,
            )
            return
        if isinstance(item, wire.Query):
            answer = answer_query(self.core, self.publisher, account, item)
            if isinstance(answer, Refusal):
                self._reject(result, account, item.id, op, answer.code, answer.reason)
            else:
                result.answers.append(Outbound("ack", account, answer))
            return
        converted = to_command(account, item, self.publisher.markets)
        if isinstance(converted, Refusal):
            self._reject(
                result, account, item.id, op, converted.code, converted.reason, cid
            )
            return
        command: ev.Command = converted
        if self.injector is not None and self.injector.draw(account):
            command = ev.InjectReject(command=converted)
        entry = Remembered(item.id, op, cid, item.ts_ms)
        self.memory.remember(account, entry, now_ms)
        self._pending[id(command)] = _Pending(account, command, entry)
        result.commands.append(command)

    def _authenticate(
        self, account: str, body: bytes, signature: str
    ) -> Refusal | None:
        """Return why the request is not signed by ``account``, or None."""
        secret = self.keys.secret(account)
        if secret is None:
            return Refusal(
                RejectCode.UNKNOWN_ACCOUNT, f"no API credentials for {account!r}"
            )
        if not signature:
            return Refusal(RejectCode.SIGNATURE_MISSING, "the request is not signed")
        if not verify(secret, body, signature):
            return Refusal(
                RejectCode.BAD_SIGNATURE, "the signature does not match the request"
            )
        return None

    def _salvage(self, payload: bytes) -> tuple[str, str]:
        """Return the id and op of an undecodable request, if they can be read."""
        try:
            envelope = self.codec.envelope(payload)
            found = self._lenient.decode(envelope.req)
        except msgspec.DecodeError:
            return "", ""
        return found.id if len(found.id) <= 64 else "", found.op

    def origin(self, command: ev.Command) -> str:
        """Return the request id ``command`` came in under ("" if not the session's)."""
        pending = self._pending.get(id(command))
        if pending is None or pending.command is not command:
            return ""
        return pending.entry.request_id

    def restore(
        self,
        request_id: str,
        record: ev.Record,
        events: list[ev.Event],
        *,
        order_id: int,
        now_ms: int,
    ) -> None:
        """Remember a journaled request that ran before a restart, with its answer.

        ``events`` are the record's journaled events; ``order_id`` names the
        order a new order's record accepted (0 if it did not), as the
        journal leaves acceptances out. Call it in seq order, before any
        traffic, for the records still inside the receive window.
        """
        command = record.command
        if isinstance(command, ev.InjectReject):  # answered as its command's reject
            command = command.command
        account = getattr(command, "account", "")
        if not account:
            return
        op = str(command.__struct_config__.tag)
        cid = command.client_order_id if isinstance(command, ev.PlaceOrder) else ""
        entry = Remembered(request_id, op, cid, record.ts_ns // 1_000_000)
        self.memory.remember(account, entry, now_ms)
        self.memory.settle(account, entry, _ack(entry, record.seq, events, order_id))

    # ------------------------------------------------------------ outcomes

    def refuse(
        self, command: ev.Command, code: RejectCode, message: str
    ) -> list[Outbound]:
        """Answer a decoded command the adapter could not submit (e.g. OVERLOADED).

        The command never reached the core: it is forgotten, so a retry runs.
        """
        pending = self._pending.pop(id(command), None)
        if pending is None or pending.command is not command:
            return []
        entry = pending.entry
        answer = out.Rejected(
            id=entry.request_id,
            op=entry.op,
            code=int(code),
            name=code.name,
            message=message,
            cid=entry.cid,
        )
        self.memory.forget(pending.account, entry)
        return self._answers(pending.account, entry, answer)

    def outcome(self, record: ev.Record, events: list[ev.Event]) -> list[Outbound]:
        """Return every message of one applied record: acks first, then the rest."""
        self._published_seq = record.seq
        messages: list[Outbound] = []
        pending = self._pending.pop(id(record.command), None)
        if pending is not None and pending.command is record.command:
            answer = _ack(pending.entry, record.seq, events)
            self.memory.settle(pending.account, pending.entry, answer)
            messages += self._answers(pending.account, pending.entry, answer)
        messages += self.publisher.publish(record, events)
        return messages

    def snapshot(self, symbol: str, depth: int = 100) -> Outbound | None:
        """Return a book snapshot for the book topic (None: no such symbol)."""
        if symbol not in self.publisher.books:
            return None
        snap = self.publisher.snapshot(symbol, depth, self._published_seq)
        return Outbound("book", symbol, snap)

    def restate(self, symbol: str, rng: random.Random, ts_ns: int) -> Outbound:
        """Return a book delta of a known symbol that changes nothing (a flood)."""
        delta = self.publisher.restate(symbol, self._published_seq, ts_ns, rng)
        return Outbound("book", symbol, delta)

    # ------------------------------------------------------------ answers

    def _answers(
        self, account: str, entry: Remembered, answer: out.Accepted | out.Rejected
    ) -> list[Outbound]:
        """Return the answer to a request and to the duplicates that waited for it."""
        followers, entry.followers = entry.followers, []
        messages = [Outbound("ack", account, answer)]
        messages += [
            Outbound(
                "ack", account, msgspec.structs.replace(answer, id=f, duplicate=True)
            )
            for f in followers
        ]
        return messages

    def _repeat(
        self, result: Decoded, account: str, entry: Remembered, request_id: str
    ) -> None:
        """Answer a duplicate now from memory, or with its original later."""
        if entry.answer is None:
            entry.followers.append(request_id)
            return
        answer = msgspec.structs.replace(entry.answer, id=request_id, duplicate=True)
        result.answers.append(Outbound("ack", account, answer))

    @staticmethod
    def _reject(
        result: Decoded,
        account: str,
        request_id: str,
        op: str,
        code: RejectCode,
        message: str,
        cid: str = "",
        *,
        retry_after_ms: int = 0,
    ) -> None:
        """Add a reject the session decided (nothing reached the core)."""
        answer = out.Rejected(
            id=request_id,
            op=op,
            code=int(code),
            name=code.name,
            message=message,
            cid=cid,
            retry_after_ms=retry_after_ms,
        )
        result.answers.append(Outbound("ack", account, answer))


def _op(item: wire.BatchItem | wire.Query) -> str:
    """Return a request's ``op`` tag."""
    return str(item.__struct_config__.tag)


def _ack(
    entry: Remembered, seq: int, events: list[ev.Event], order_id: int = 0
) -> out.Accepted | out.Rejected:
    """Return a command's answer from its record's events.

    Only the command itself rejects in its record, so a `CommandRejected`
    there is its outcome; else it took effect, and the first acceptance,
    cancel or amend of its own names the order, unless ``order_id`` does
    already (a journaled record, whose acceptance the journal leaves out).
    """
    own = _OWN_ORDER_EVENTS.get(entry.op)
    for e in events:
        if isinstance(e, ev.CommandRejected):
            code = RejectCode(e.code)
            return out.Rejected(
                id=entry.request_id,
                op=entry.op,
                code=e.code,
                name=code.name,
                message=e.reason,
                seq=seq,
                order_id=e.order_id,
                cid=e.client_order_id or entry.cid,
            )
        if (
            not order_id
            and isinstance(e, ev.OrderAccepted | ev.OrderCanceled | ev.OrderAmended)
            and own is not None
            and isinstance(e, own)
        ):
            order_id = e.order_id
    return out.Accepted(
        id=entry.request_id, op=entry.op, seq=seq, order_id=order_id, cid=entry.cid
    )


# The event that names the order a command acted on, by the command's op.
_OWN_ORDER_EVENTS: dict[str, type[ev.Event]] = {
    "new": ev.OrderAccepted,
    "cancel": ev.OrderCanceled,
    "amend": ev.OrderAmended,
}
