"""Errors of replay: a log that does not reproduce."""

from __future__ import annotations

from exchange.errors import PaperxError

__all__ = ["Divergence"]


class Divergence(PaperxError):
    """Raised when a replay disagrees with the log at record ``seq``."""

    def __init__(self, seq: int, detail: str) -> None:
        """Keep the record where replay and log part ways, and how."""
        super().__init__(seq, detail)
        self.seq = seq
        self.detail = detail

    def __str__(self) -> str:
        """Render the seq and what differs."""
        return f"record {self.seq}: {self.detail}"
