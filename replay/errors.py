"""Errors of replay: a log that does not reproduce."""

from __future__ import annotations

from exchange.errors import PaperxError

__all__ = ["Divergence", "MissingDependency"]


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


class MissingDependency(PaperxError):
    """Raised when a replay tool needs an optional package that is not installed."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        """Keep the missing package, the extra that installs it, and what for."""
        super().__init__(package, extra, purpose)
        self.package = package
        self.extra = extra
        self.purpose = purpose

    def __str__(self) -> str:
        """Say what is missing and the command that installs it."""
        return (
            f"{self.purpose} needs {self.package}, which is not installed: "
            f"pip install 'paperx[{self.extra}]'"
        )
