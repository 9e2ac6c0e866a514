"""The standard benchmark order stream: read it, turn it into commands, hash its fills.

The stream is the format of ``../shared/bench/workload.py``: a sequence of
6-tuples ``(op, oid, acct, side, price, qty)`` where ``op`` is "N" (new limit),
"M" (market, remainder dropped), "C" (cancel) or "A" (amend: ``qty`` is the new
open quantity, lower than the current one), ``oid`` an order id, ``acct`` an
int account, ``side`` "B" or "S", ``price`` ticks (0 for "M") and ``qty`` lots
(0 for "C"). It is stored either as one msgpack array of 6-arrays
(``.msgpack``) or as JSON lines with keys op, id, acct, side, px, qty
(``.jsonl``); ``orders_<N>.meta.json`` beside it holds the expected fills.

The stream's ids are the exchange's ids: "N" and "M" allocate 1, 2, 3, ... in
order, exactly as `exchange.core.ExchangeCore` numbers accepted orders, and the
stream never produces a reject on a market with a tick and a lot of one unit
(`standard_market`), so a "C" or "A" names the same order in both.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import msgspec

from exchange.errors import PaperxError
from exchange.markets import Market
from exchange.messages import (
    AmendOrder,
    CancelOrder,
    Command,
    Event,
    OrderFilled,
    PlaceOrder,
    Record,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

__all__ = [
    "FIELDS",
    "FillHash",
    "StreamError",
    "StreamMeta",
    "StreamTuple",
    "fill_hash",
    "meta_path",
    "read_meta",
    "read_stream",
    "standard_market",
    "to_command",
    "to_commands",
    "to_records",
    "write_stream",
]

Op = Literal["N", "C", "M", "A"]
StreamSide = Literal["B", "S"]
StreamTuple = tuple[Op, int, int, StreamSide, int, int]
"""One stream command: ``(op, oid, acct, side, price ticks, qty lots)``."""

FIELDS = ("op", "id", "acct", "side", "px", "qty")
"""The JSONL keys, in tuple order."""

_HASH_MASK = 0xFFFFFFFFFFFFFFFF


class StreamError(PaperxError):
    """Raised when a stream file cannot be read as the standard stream."""

    def __init__(self, path: str, detail: str) -> None:
        """Keep the file and what is wrong with it."""
        super().__init__(path, detail)
        self.path = path
        self.detail = detail

    def __str__(self) -> str:
        """Render the file and the problem."""
        return f"{self.path}: {self.detail}"


class _JsonLine(msgspec.Struct, forbid_unknown_fields=True):
    """One JSONL line of the standard stream."""

    op: Op
    id: int
    acct: int
    side: StreamSide
    px: int
    qty: int


_MSGPACK_DECODER = msgspec.msgpack.Decoder(list[StreamTuple])
_JSON_LINE_DECODER = msgspec.json.Decoder(_JsonLine)


class StreamMeta(msgspec.Struct, frozen=True, kw_only=True):
    """The expected totals ``workload.py`` writes beside a stream (``.meta.json``)."""

    n: int
    expected_fills: int
    expected_fill_qty: int
    expected_fill_hash: int


# ------------------------------------------------------------------ files


def read_stream(path: str | Path) -> list[StreamTuple]:
    """Return every command tuple of a ``.msgpack`` or ``.jsonl`` standard stream.

    Args:
        path: the stream file; its suffix names the format.

    Returns:
        The tuples in stream order.

    Raises:
        StreamError: if the suffix is neither ``.msgpack`` nor ``.jsonl``, or
            the content is not a well-formed standard stream (the message says
            where: the array item for msgpack, the line number for JSONL).
        OSError: if the file cannot be read.

    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".msgpack":
        try:
            return _MSGPACK_DECODER.decode(p.read_bytes())
        except msgspec.DecodeError as exc:
            raise StreamError(
                str(p), f"not a msgpack array of 6-arrays: {exc}"
            ) from exc
    if suffix == ".jsonl":
        return list(_read_jsonl(p))
    msg = (
        f"unknown stream format {suffix or '(no suffix)'!r}; expected .msgpack "
        "(one array of [op, id, acct, side, px, qty] arrays) or .jsonl (one "
        '{"op","id","acct","side","px","qty"} object per line)'
    )
    raise StreamError(str(p), msg)


def _read_jsonl(p: Path) -> Iterator[StreamTuple]:
    """Yield the tuples of a JSONL stream, naming the line of any bad one."""
    decode = _JSON_LINE_DECODER.decode
    with p.open("rb") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                x = decode(line)
            except msgspec.DecodeError as exc:
                raise StreamError(str(p), f"line {lineno}: {exc}") from exc
            yield (x.op, x.id, x.acct, x.side, x.px, x.qty)


def write_stream(path: str | Path, stream: Iterable[StreamTuple]) -> None:
    """Write tuples as a standard stream in the format its suffix names.

    Raises:
        StreamError: if the suffix is neither ``.msgpack`` nor ``.jsonl``.

    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".msgpack":
        p.write_bytes(msgspec.msgpack.encode(list(stream)))
    elif suffix == ".jsonl":
        with p.open("w") as f:
            for t in stream:
                f.write(
                    json.dumps(dict(zip(FIELDS, t, strict=True)), separators=(",", ":"))
                )
                f.write("\n")
    else:
        raise StreamError(str(p), f"cannot write format {suffix!r}")


def meta_path(path: str | Path) -> Path:
    """Return where ``workload.py`` puts a stream's meta file (``<stem>.meta.json``)."""
    p = Path(path)
    return p.with_name(p.stem + ".meta.json")


def read_meta(path: str | Path) -> StreamMeta | None:
    """Return the expected totals beside a stream file, or None if there are none."""
    mp = meta_path(path)
    if not mp.exists():
        return None
    try:
        return msgspec.json.decode(mp.read_bytes(), type=StreamMeta)
    except msgspec.DecodeError as exc:
        raise StreamError(str(mp), f"not a workload meta file: {exc}") from exc


# ------------------------------------------------------------------ commands


def standard_market(symbol: str = "X") -> Market:
    """Return the market the standard stream assumes: tick 1, lot 1, wide limits."""
    return Market.from_decimals(
        symbol, tick_size="1", lot_size="1", max_qty="1000000", max_price="100000000"
    )


def to_command(t: StreamTuple, market: Market) -> Command:
    """Return the paperx command for one stream tuple on ``market``.

    Prices become ``ticks * market.tick_size`` and quantities ``lots *
    market.lot_size`` (E8 units); accounts become their decimal strings.
    "N" is a GTC limit, "M" a market order, "C" a cancel by id and "A" an
    amend whose ``qty`` is the new open quantity (price unchanged).

    Raises:
        StreamError: if ``op`` is not one of N, M, C, A.

    """
    op, oid, acct, side, price, qty = t
    account = sys.intern(str(acct))  # a million commands share four account strings
    if op == "N":
        return PlaceOrder(
            account=account,
            symbol=market.symbol,
            side="buy" if side == "B" else "sell",
            type="limit",
            qty=qty * market.lot_size,
            price=price * market.tick_size,
        )
    if op == "M":
        return PlaceOrder(
            account=account,
            symbol=market.symbol,
            side="buy" if side == "B" else "sell",
            type="market",
            qty=qty * market.lot_size,
        )
    if op == "C":
        return CancelOrder(account=account, order_id=oid)
    if op == "A":
        return AmendOrder(account=account, order_id=oid, qty=qty * market.lot_size)
    detail = f"unknown op {op!r} in {t!r}"
    raise StreamError(path="<stream>", detail=detail)


def to_commands(stream: Iterable[StreamTuple], market: Market) -> list[Command]:
    """Return the paperx commands for a whole stream (see `to_command`)."""
    return [to_command(t, market) for t in stream]


def to_records(
    commands: Iterable[Command], first_seq: int = 1, ts_ns: int = 0
) -> list[Record]:
    """Return commands sequenced from ``first_seq``, all stamped ``ts_ns``."""
    return [Record(seq, ts_ns, c) for seq, c in enumerate(commands, first_seq)]


# ------------------------------------------------------------------ fill hash


class FillHash:
    """The running fill count, quantity and hash of ``workload.fill_hash``.

    Each fill folds in ``(taker_order_id, maker_order_id, price ticks, qty
    lots)`` as ``h = (h * 1000003 + (taker * 31 + maker) * 131 + px * 7 + qty)
    mod 2**64``, in fill order; equal hashes mean the same fills in the same
    order as the reference shadow book.
    """

    __slots__ = ("count", "qty", "value")

    def __init__(self) -> None:
        """Start with no fills (hash 0)."""
        self.count = 0
        self.qty = 0
        self.value = 0

    def add(self, taker: int, maker: int, price: int, qty: int) -> None:
        """Fold in one fill (ids, price in ticks, quantity in lots)."""
        self.count += 1
        self.qty += qty
        self.value = (
            self.value * 1000003 + (taker * 31 + maker) * 131 + price * 7 + qty
        ) & _HASH_MASK

    def update(self, events: Iterable[Event]) -> None:
        """Fold in every `OrderFilled` among ``events``, in order."""
        for e in events:
            if type(e) is OrderFilled:
                self.add(e.taker_order_id, e.maker_order_id, e.price, e.qty)


def fill_hash(events: Iterable[Event] | Sequence[Event]) -> tuple[int, int]:
    """Return ``(fill count, fill hash)`` of the `OrderFilled` events in ``events``."""
    h = FillHash()
    h.update(events)
    return h.count, h.value
