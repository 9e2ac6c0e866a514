"""Streams: bounded async iterators fed by the client's receive task.

A `Stream` registers with its channel when it is created, so nothing that
arrives after a ``watch_*`` call is missed, and leaves it when it ends or is
closed (``async with`` or ``aclose``). It ends with a typed error: the
connection dropped (`ConnectionLost`), the client closed (`ClientClosed`),
or its consumer fell ``limit`` items behind (`StreamOverflow`: a slow
consumer never slows the client). A conflated stream (the order book) keeps
only the newest item and never overflows.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Generic, Self, TypeVar

from clients.sdk._errors import ClientError, StreamOverflow

__all__ = ["Channels", "Stream"]

T = TypeVar("T")


class Stream(Generic[T]):
    """An async iterator of one channel's items, ending with a typed error."""

    def __init__(
        self,
        channels: Channels,
        channel: str,
        *,
        limit: int,
        conflate: bool = False,
        start: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Register on ``channel``; ``start`` runs before the first item is read."""
        self._channels = channels
        self.channel = channel
        self.limit = limit
        self._items: deque[T] = deque(maxlen=1 if conflate else None)
        self._wakeup = asyncio.Event()
        self._error: ClientError | None = None
        self._start = start
        channels.add(self)

    def push(self, item: T) -> None:
        """Queue an item (the receive task calls this; it never blocks)."""
        if self._error is not None:
            return
        if len(self._items) >= self.limit:
            self.end(StreamOverflow(self.limit))
            return
        self._items.append(item)
        self._wakeup.set()

    def end(self, error: ClientError) -> None:
        """End the stream: its reader gets ``error`` after the queued items."""
        if self._error is None:
            self._error = error
            self._channels.discard(self)
            self._wakeup.set()

    def __aiter__(self) -> Self:
        """Return the stream itself."""
        return self

    async def __anext__(self) -> T:
        """Return the next item, or raise the error that ended the stream."""
        if self._start is not None:
            start, self._start = self._start, None
            await start()
        while not self._items:
            if self._error is not None:
                raise self._error
            self._wakeup.clear()
            await self._wakeup.wait()
        return self._items.popleft()

    async def aclose(self) -> None:
        """Stop receiving; later reads raise `ClientError`."""
        self.end(ClientError("the stream was closed"))
        self._items.clear()

    async def __aenter__(self) -> Self:
        """Use the stream for the block."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the stream."""
        await self.aclose()


class Channels:
    """The live streams of each channel (``orders``, ``book:BTC-PERP``, ...)."""

    def __init__(self) -> None:
        """Start with no streams."""
        self._streams: dict[str, list[Stream[object]]] = {}

    def add(self, stream: Stream[T]) -> None:
        """Register a stream on its channel."""
        self._streams.setdefault(stream.channel, []).append(stream)  # type: ignore[arg-type]

    def discard(self, stream: Stream[T]) -> None:
        """Unregister a stream."""
        streams = self._streams.get(stream.channel, [])
        if stream in streams:
            streams.remove(stream)  # type: ignore[arg-type]

    def wanted(self, channel: str) -> bool:
        """Return True if any stream reads ``channel``."""
        return bool(self._streams.get(channel))

    def push(self, channel: str, item: object) -> None:
        """Give ``item`` to every stream of ``channel``."""
        for stream in list(self._streams.get(channel, ())):
            stream.push(item)

    def end_all(self, error: ClientError) -> None:
        """End every stream with ``error``."""
        for streams in list(self._streams.values()):
            for stream in list(streams):
                stream.end(error)
