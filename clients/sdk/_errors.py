"""The SDK's exceptions: one root, rejects by the exchange's ccxt-named families.

    ClientError
    ├── RejectedError            the exchange refused a request (code, name, reason)
    │   ├── BadRequest
    │   │   └── BadSymbol
    │   ├── InvalidOrder
    │   │   ├── OrderNotFound
    │   │   ├── DuplicateOrderId
    │   │   ├── OrderImmediatelyFillable
    │   │   └── OrderNotFillable
    │   ├── AuthenticationError
    │   ├── InsufficientFunds
    │   ├── OperationRejected
    │   │   └── NoChange
    │   ├── NotSupported
    │   └── ExchangeNotAvailable
    └── NetworkError             the request's fate is unknown or the link is down
        ├── RequestTimeout       no answer after every retry
        ├── ConnectionLost       a stream ended because the connection dropped
        ├── StreamOverflow       a stream's consumer fell too far behind
        └── ClientClosed         the client was closed

A reject code belongs to the family the exchange gives it
(`exchange.errors.REJECT_CLASSES`, matched by class name), so the SDK and the
in-process facade never disagree; a code this SDK does not know yet (a newer
server) raises plain `RejectedError`.
"""

from __future__ import annotations

from exchange.errors import REJECT_CLASSES

__all__ = [
    "AuthenticationError",
    "BadRequest",
    "BadSymbol",
    "ClientClosed",
    "ClientError",
    "ConnectionLost",
    "DuplicateOrderId",
    "ExchangeNotAvailable",
    "InsufficientFunds",
    "InvalidOrder",
    "NetworkError",
    "NoChange",
    "NotSupported",
    "OperationRejected",
    "OrderImmediatelyFillable",
    "OrderNotFillable",
    "OrderNotFound",
    "RejectedError",
    "RequestTimeout",
    "StreamOverflow",
    "rejected_error",
]


class ClientError(Exception):
    """Root of every exception the SDK raises."""


class RejectedError(ClientError):
    """Raised when the exchange rejects a request; it changed nothing.

    ``code`` and ``name`` are the stable reject code (`exchange.codes`),
    ``reason`` the exchange's message, ``request_id`` the request's id and
    ``seq`` the journal record of a reject the core decided (0: the gateway).
    """

    def __init__(
        self,
        code: int,
        name: str,
        reason: str,
        *,
        request_id: str = "",
        seq: int = 0,
    ) -> None:
        """Keep the reject's code, name, reason, request id and seq."""
        super().__init__(code, name, reason)
        self.code = code
        self.name = name
        self.reason = reason
        self.request_id = request_id
        self.seq = seq

    def __str__(self) -> str:
        """Render as ``[1008 OFF_TICK] price 100.05 is not a multiple of ...``."""
        return f"[{self.code} {self.name}] {self.reason}"


class BadRequest(RejectedError):
    """Raised when the request is malformed or names nothing usable."""


class BadSymbol(BadRequest):
    """Raised when the request names a market that does not exist."""


class InvalidOrder(RejectedError):
    """Raised when an order breaks a market or order rule."""


class OrderNotFound(InvalidOrder):
    """Raised when no such open order exists for this account."""


class DuplicateOrderId(InvalidOrder):
    """Raised when the client order id is in use by an open order."""


class OrderImmediatelyFillable(InvalidOrder):
    """Raised when a post-only order would take, or a stop would fire at once."""


class OrderNotFillable(InvalidOrder):
    """Raised when a fill-or-kill order cannot fill whole."""


class InsufficientFunds(RejectedError):
    """Raised when there is not enough margin or free balance."""


class OperationRejected(RejectedError):
    """Raised when the account's state or limits refuse a well-formed request."""


class NoChange(OperationRejected):
    """Raised when the request would change nothing."""


class NotSupported(RejectedError):
    """Raised when the exchange does not run the feature asked for."""


class AuthenticationError(RejectedError):
    """Raised when a request is unsigned, mis-signed, stale or for no account."""


class ExchangeNotAvailable(RejectedError):
    """Raised when the exchange cannot take the request now (overloaded)."""


class NetworkError(ClientError):
    """Raised when the link to the exchange fails; a request's fate is unknown."""


class RequestTimeout(NetworkError):
    """Raised when a request got no answer after every retry.

    ``request_id`` is the request's id: a later retry with the same id (and
    client order id) is still answered once, never executed twice.
    """

    def __init__(self, request_id: str, attempts: int) -> None:
        """Keep the request id and the number of attempts made."""
        super().__init__(request_id, attempts)
        self.request_id = request_id
        self.attempts = attempts

    def __str__(self) -> str:
        """Name the request and how often it was sent."""
        return f"no answer to request {self.request_id} after {self.attempts} tries"


class ConnectionLost(NetworkError):
    """Raised by a stream when the connection dropped (the client reconnects)."""


class StreamOverflow(NetworkError):
    """Raised by a stream whose consumer fell ``limit`` messages behind."""

    def __init__(self, limit: int) -> None:
        """Keep the queue limit that was exceeded."""
        super().__init__(limit)
        self.limit = limit

    def __str__(self) -> str:
        """Say how far behind the consumer fell."""
        return f"the stream's consumer fell {self.limit} messages behind"


class ClientClosed(NetworkError):
    """Raised when a client is used, or a stream read, after it was closed."""


_FAMILIES: dict[str, type[RejectedError]] = {
    cls.__name__: cls
    for cls in (
        BadRequest,
        BadSymbol,
        InvalidOrder,
        OrderNotFound,
        DuplicateOrderId,
        OrderImmediatelyFillable,
        OrderNotFillable,
        InsufficientFunds,
        OperationRejected,
        NoChange,
        NotSupported,
        AuthenticationError,
        ExchangeNotAvailable,
    )
}
_BY_CODE: dict[int, type[RejectedError]] = {
    int(code): _FAMILIES.get(family.__name__, RejectedError)
    for code, family in REJECT_CLASSES.items()
}


def rejected_error(
    code: int, name: str, reason: str, *, request_id: str = "", seq: int = 0
) -> RejectedError:
    """Return the exception of a reject code's family (`RejectedError` if unknown)."""
    family = _BY_CODE.get(code, RejectedError)
    return family(code, name, reason, request_id=request_id, seq=seq)
