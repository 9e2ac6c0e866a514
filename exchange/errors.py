"""The exception tree: exceptions are for bugs and infrastructure, never bad input.

Bad input becomes a reject *value* (`exchange.messages.OrderRejected`); the only
exception a caller sees for it is :class:`Rejected`, raised by the synchronous
`exchange.Exchange` facade to mirror how ccxt raises typed errors.
"""

from __future__ import annotations

from exchange.codes import RejectCode

__all__ = [
    "InvariantViolation",
    "JournalCorrupt",
    "JournalError",
    "JournalMismatch",
    "JournalSeqError",
    "PaperxError",
    "Rejected",
]


class PaperxError(Exception):
    """Root of every exception paperx raises."""


class Rejected(PaperxError):
    """Raised by the in-process facade when the exchange rejects a command."""

    def __init__(self, code: RejectCode, reason: str, seq: int = 0) -> None:
        """Keep the stable code, the human reason and the journal seq of the reject."""
        super().__init__(code, reason, seq)
        self.code = code
        self.reason = reason
        self.seq = seq

    def __str__(self) -> str:
        """Render as ``[1008 OFF_TICK] price 100.05 is not a multiple of ...``."""
        return f"[{int(self.code)} {self.code.name}] {self.reason}"


class InvariantViolation(PaperxError):
    """Raised when the core finds its own state inconsistent: always a bug."""


class JournalError(PaperxError):
    """Raised when the journal cannot be opened, written or read."""


class JournalCorrupt(JournalError):
    """Raised when a journal is damaged somewhere other than its tail."""

    def __init__(self, path: str, offset: int, detail: str) -> None:
        """Keep where the damage is and what it looks like."""
        super().__init__(path, offset, detail)
        self.path = path
        self.offset = offset
        self.detail = detail

    def __str__(self) -> str:
        """Render the file, byte offset and what was found there."""
        return f"{self.path} @ byte {self.offset}: {self.detail}"


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
