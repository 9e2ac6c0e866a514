"""structlog configuration, done once per process by the shell (never the core)."""

from __future__ import annotations

import logging
import sys

import structlog

__all__ = ["configure_logging"]


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time of writing.

    Loggers outlive redirections (pytest's capture, a CLI wrapping stderr);
    binding the stream object at configuration time would leave them writing
    to a closed file.
    """

    def write(self, text: str) -> int:
        """Write to the current stderr."""
        return sys.stderr.write(text)

    def flush(self) -> None:
        """Flush the current stderr."""
        sys.stderr.flush()


def configure_logging(level: str = "info", *, json: bool | None = None) -> None:
    """Configure structlog: JSON for services, console rendering on a terminal.

    Args:
        level: minimum level name ("debug", "info", "warning", ...).
        json: force JSON (True) or console (False); default: JSON unless stderr
            is a terminal.
    """
    use_json = (not sys.stderr.isatty()) if json is None else json
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(_CurrentStderr()),  # type: ignore[arg-type]
        # Not cached: tests and CLI runs reconfigure logging, and nothing on the hot
        # path logs, so the lookup cost is irrelevant.
        cache_logger_on_first_use=False,
    )
