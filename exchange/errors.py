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
    "PaperxError",
    "Rejected",
]


class PaperxError(Exception):
    """Root of every exception paperx raises."""


class Rejected(PaperxError):  # noqa: N818 -- the name a trader expects ("order rejected")
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
