"""The exception tree: exceptions are for bugs and infrastructure, never bad input.

Bad input becomes a reject *value* (`exchange.messages.CommandRejected`); the only
exception a caller sees for it is :class:`Rejected`, raised by the synchronous
`exchange.Exchange` facade to mirror how ccxt raises typed errors. Each reject
code belongs to one family, named as ccxt names it (``REJECT_CLASSES``):
``Rejected(code, ...)`` builds the family's class, so ``except InsufficientFunds``
catches exactly the margin and balance refusals and ``except Rejected`` all.

    PaperxError
    ├── Rejected                 (ccxt ExchangeError)
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
    ├── ConfigError, Precision   (also ValueError)
    ├── InvariantViolation
    └── JournalError
        ├── JournalCorrupt, JournalSeqError, JournalMismatch
        └── JournalNotEmpty      (also ValueError)
"""

from __future__ import annotations

from typing import Self, cast

from exchange.codes import RejectCode

__all__ = [
    "REJECT_CLASSES",
    "AuthenticationError",
    "BadRequest",
    "BadSymbol",
    "ConfigError",
    "DuplicateOrderId",
    "ExchangeNotAvailable",
    "InsufficientFunds",
    "InvalidOrder",
    "InvariantViolation",
    "JournalCorrupt",
    "JournalError",
    "JournalMismatch",
    "JournalNotEmpty",
    "JournalSeqError",
    "NoChange",
    "NotSupported",
    "OperationRejected",
    "OrderImmediatelyFillable",
    "OrderNotFillable",
    "OrderNotFound",
    "PaperxError",
    "Precision",
    "Rejected",
]


class PaperxError(Exception):
    """Root of every exception paperx raises."""


class Rejected(PaperxError):
    """Raised by the in-process facade when the exchange rejects a command.

    ``Rejected(code, reason, seq)`` returns an instance of the code's family
    (see ``REJECT_CLASSES``); naming a family class builds that class as named.
    """

    def __new__(cls, code: RejectCode, reason: str, seq: int = 0) -> Self:
        """Build the family class of ``code`` when called as plain `Rejected`."""
        target = REJECT_CLASSES[RejectCode(code)] if cls is Rejected else cls
        return cast("Self", super().__new__(target, code, reason, seq))

    def __init__(self, code: RejectCode, reason: str, seq: int = 0) -> None:
        """Keep the stable code, the human reason and the journal seq of the reject."""
        super().__init__(code, reason, seq)
        self.code = code
        self.reason = reason
        self.seq = seq

    def __str__(self) -> str:
        """Render as ``[1008 OFF_TICK] price 100.05 is not a multiple of ...``."""
        return f"[{int(self.code)} {self.code.name}] {self.reason}"


class BadRequest(Rejected):
    """The command is malformed or names nothing usable (ccxt ``BadRequest``)."""


class BadSymbol(BadRequest):
    """The command names a market that does not exist (ccxt ``BadSymbol``)."""


class InvalidOrder(Rejected):
    """The order breaks a market or order rule (ccxt ``InvalidOrder``)."""


class OrderNotFound(InvalidOrder):
    """No such open order for this account (ccxt ``OrderNotFound``)."""


class DuplicateOrderId(InvalidOrder):
    """The client order id is in use by an open order (ccxt ``DuplicateOrderId``)."""


class OrderImmediatelyFillable(InvalidOrder):
    """A post-only order would take, or a stop would fire at once (ccxt name)."""


class OrderNotFillable(InvalidOrder):
    """A fill-or-kill order cannot fill whole (ccxt ``OrderNotFillable``)."""


class InsufficientFunds(Rejected):
    """Not enough margin or free balance for it (ccxt ``InsufficientFunds``)."""


class OperationRejected(Rejected):
    """A well-formed request the account's state or limits refuse (ccxt name)."""


class NoChange(OperationRejected):
    """The request would change nothing (ccxt ``NoChange``)."""


class NotSupported(Rejected):
    """This exchange does not run the feature asked for (ccxt ``NotSupported``)."""


class AuthenticationError(Rejected):
    """The request is unsigned, mis-signed or stale (ccxt ``AuthenticationError``)."""


class ExchangeNotAvailable(Rejected):
    """The exchange cannot take the request now (ccxt ``ExchangeNotAvailable``)."""


REJECT_CLASSES: dict[RejectCode, type[Rejected]] = {
    RejectCode.MALFORMED: BadRequest,
    RejectCode.UNKNOWN_SYMBOL: BadSymbol,
    RejectCode.INVALID_QUANTITY: InvalidOrder,
    RejectCode.QTY_OUT_OF_RANGE: InvalidOrder,
    RejectCode.OFF_LOT: InvalidOrder,
    RejectCode.INVALID_PRICE: InvalidOrder,
    RejectCode.PRICE_OUT_OF_RANGE: InvalidOrder,
    RejectCode.OFF_TICK: InvalidOrder,
    RejectCode.PRICE_REQUIRED: InvalidOrder,
    RejectCode.PRICE_NOT_ALLOWED: InvalidOrder,
    RejectCode.TRIGGER_REQUIRED: InvalidOrder,
    RejectCode.TRIGGER_NOT_ALLOWED: InvalidOrder,
    RejectCode.INVALID_FLAGS: InvalidOrder,
    RejectCode.INVALID_CLIENT_ORDER_ID: InvalidOrder,
    RejectCode.TOO_PRECISE: BadRequest,  # any value, not an order's only (-1111)
    RejectCode.INVALID_ACCOUNT: BadRequest,
    RejectCode.BATCH_TOO_LARGE: BadRequest,
    RejectCode.PAYLOAD_TOO_LARGE: BadRequest,
    RejectCode.SIGNATURE_MISSING: AuthenticationError,
    RejectCode.BAD_SIGNATURE: AuthenticationError,
    RejectCode.STALE_TIMESTAMP: AuthenticationError,
    RejectCode.UNKNOWN_ACCOUNT: AuthenticationError,
    RejectCode.INSUFFICIENT_MARGIN: InsufficientFunds,
    RejectCode.REDUCE_ONLY_REJECTED: InvalidOrder,
    RejectCode.POSITION_LIMIT: OperationRejected,
    RejectCode.INSUFFICIENT_BALANCE: InsufficientFunds,
    RejectCode.MARGIN_BELOW_INITIAL: InsufficientFunds,
    RejectCode.ORDER_MARGIN_LIMIT: OperationRejected,
    RejectCode.DAILY_LOSS_LIMIT: OperationRejected,
    RejectCode.UNKNOWN_ORDER: OrderNotFound,
    RejectCode.FOK_NOT_FILLED: OrderNotFillable,
    RejectCode.POST_ONLY_WOULD_TAKE: OrderImmediatelyFillable,
    RejectCode.WOULD_TRIGGER_IMMEDIATELY: OrderImmediatelyFillable,
    RejectCode.DUPLICATE_CLIENT_ORDER_ID: DuplicateOrderId,
    RejectCode.AMEND_NO_CHANGE: NoChange,
    RejectCode.NOT_AMENDABLE: InvalidOrder,
    RejectCode.MAX_OPEN_ORDERS: InvalidOrder,  # ccxt's binance: -2025 InvalidOrder
    RejectCode.MODE_CHANGE_WITH_POSITION: OperationRejected,
    RejectCode.MODE_CHANGE_WITH_ORDERS: OperationRejected,
    RejectCode.INVALID_LEVERAGE: BadRequest,
    RejectCode.NO_ISOLATED_POSITION: OperationRejected,
    RejectCode.INVALID_AMOUNT: BadRequest,
    RejectCode.MARGIN_DISABLED: NotSupported,
    RejectCode.LEVERAGE_WITH_ORDERS: OperationRejected,
    RejectCode.OVERLOADED: ExchangeNotAvailable,
    RejectCode.INTERNAL: ExchangeNotAvailable,
    RejectCode.RATE_LIMITED: ExchangeNotAvailable,
    RejectCode.INJECTED_REJECT: ExchangeNotAvailable,  # a venue fault: retry
}
"""The family class of every reject code: what the facade raises for it."""


class ConfigError(PaperxError, ValueError):
    """Raised when a configuration file cannot be used; the message says why."""


class Precision(PaperxError, ValueError):
    """Raised when a value is not a finite decimal with at most 8 decimals."""


class InvariantViolation(PaperxError):
    """Raised when the core finds its own state inconsistent: always a bug."""


class JournalError(PaperxError):
    """Raised when the journal cannot be opened, written or read."""


class JournalCorrupt(JournalError):
    """Raised when a journal is damaged somewhere other than its tail.

    ``records_after`` counts the intact records found after the damage, when
    a search for them was made (None: not searched): records that a torn-tail
    cut would have lost, and that ``paperx replay repair`` moves aside instead.
    """

    def __init__(
        self, path: str, offset: int, detail: str, records_after: int | None = None
    ) -> None:
        """Keep where the damage is, what it looks like and what follows it."""
        super().__init__(path, offset, detail)
        self.path = path
        self.offset = offset
        self.detail = detail
        self.records_after = records_after

    def __str__(self) -> str:
        """Render the file, byte offset, what was found there and what follows."""
        text = f"{self.path} @ byte {self.offset}: {self.detail}"
        if self.records_after is not None:
            text += (
                f"; {self.records_after} intact records follow the damage, so it "
                "is not a torn tail: run `paperx replay repair` on the journal "
                "to move the damaged part aside"
            )
        return text


class JournalSeqError(JournalError):
    """Raised when an append's seq is not exactly the one after the journal's last."""

    def __init__(self, expected: int, got: int) -> None:
        """Keep the seq the journal expected and the one it was given."""
        super().__init__(expected, got)
        self.expected = expected
        self.got = got

    def __str__(self) -> str:
        """Render both seqs, e.g. ``expected seq 42, got 44``."""
        return f"expected seq {self.expected}, got {self.got}"


class JournalNotEmpty(JournalError, ValueError):
    """Raised when a new `Exchange` is given a journal that already holds records."""


class JournalMismatch(JournalError):
    """Raised when an existing journal was written under another config or schema."""

    def __init__(self, path: str, field: str, stored: object, given: object) -> None:
        """Keep the journal's path, the differing header field and both values."""
        super().__init__(path, field, stored, given)
        self.path = path
        self.field = field
        self.stored = stored
        self.given = given

    def __str__(self) -> str:
        """Render which header field differs, both values, and what to do about it."""
        return (
            f"{self.path}: journal {self.field} is {self.stored!r} but this run's is "
            f"{self.given!r}; open it with the config it was written with, or start "
            "a new journal directory"
        )
