"""The margin stream's file: a generated stream with its recipe, msgpack or JSON."""

from __future__ import annotations

from pathlib import Path

import msgspec

from clients.margin_flow._shape import MarginShape
from exchange.messages import Command

FORMAT_VERSION = 1
Stamped = tuple[int, Command]
"""One command of the stream with its exchange time, ``(ts_ns, command)``."""


class MarginStream(msgspec.Struct, frozen=True, kw_only=True):
    """A generated stream as written to a file: its recipe, then its commands."""

    version: int = FORMAT_VERSION
    seed: int
    symbols: list[str]
    shape: MarginShape
    setup: list[Stamped]
    flow: list[Stamped]


def write_margin_stream(path: str | Path, stream: MarginStream) -> None:
    """Write a stream as msgpack (``.msgpack``) or JSON (``.json``), by suffix.

    Raises:
        ValueError: for another suffix.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".msgpack":
        p.write_bytes(msgspec.msgpack.encode(stream))
    elif suffix == ".json":
        p.write_bytes(msgspec.json.encode(stream))
    else:
        msg = f"{p}: cannot write format {suffix!r}; use .msgpack or .json"
        raise ValueError(msg)


def read_margin_stream(path: str | Path) -> MarginStream:
    """Read a stream `write_margin_stream` wrote.

    Raises:
        ValueError: for an unknown suffix, a malformed file or another version.
        OSError: if the file cannot be read.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in {".msgpack", ".json"}:
        msg = f"{p}: unknown margin stream format {suffix!r}; use .msgpack or .json"
        raise ValueError(msg)
    data = p.read_bytes()
    try:
        stream = (
            msgspec.msgpack.decode(data, type=MarginStream)
            if suffix == ".msgpack"
            else msgspec.json.decode(data, type=MarginStream)
        )
    except msgspec.DecodeError as exc:
        msg = f"{p}: not a margin stream: {exc}"
        raise ValueError(msg) from exc
    if stream.version != FORMAT_VERSION:
        msg = f"{p}: margin stream version {stream.version}, expected {FORMAT_VERSION}"
        raise ValueError(msg)
    return stream
