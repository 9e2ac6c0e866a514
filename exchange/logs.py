"""Logging: the library hands records to stdlib `logging`; only a shell renders.

paperx used as a library prints nothing unasked. Its modules log through
`get_logger`, whose structured calls (``_log.info("journal_opened", seq=3)``)
become ordinary `logging` records of the module's logger (message: the event
name; the key-values: record attributes). The ``exchange`` logger has only a
`logging.NullHandler`, so the host application's logging configuration decides
what shows and where (``caplog`` sees them in tests).

The shells (the CLI's ``main``, a future server) call `configure_logging` once:
it renders every record, paperx's and any library's, as console lines on a
terminal or JSON lines otherwise, on stderr.
"""

from __future__ import annotations

import logging
import sys
from typing import cast

import structlog

__all__ = ["configure_logging", "get_logger"]

logging.getLogger("exchange").addHandler(logging.NullHandler())


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """Return a structured logger that delivers to ``logging.getLogger(name)``.

    It does not depend on structlog's global configuration, so a host that
    configures structlog its own way does not change where paperx logs go.
    Key-value names must not be `logging.LogRecord` attributes (``name``,
    ``msg``, ``filename``, ...), which `logging` refuses to overwrite.
    """
    return cast(
        "structlog.stdlib.BoundLogger",
        structlog.wrap_logger(
            logging.getLogger(name),
            processors=[
                structlog.stdlib.filter_by_level,
                structlog.stdlib.render_to_log_kwargs,
            ],
            wrapper_class=structlog.stdlib.BoundLogger,
        ),
    )


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


_handler: logging.Handler | None = None  # the one `configure_logging` installed


def configure_logging(level: str = "info", *, json: bool | None = None) -> None:
    """Render all logging on stderr: JSON for services, console on a terminal.

    Installs one handler on the root logger (replacing the one a previous
    call installed) and points structlog's own loggers at `logging` too, so
    records from `get_logger`, `structlog.get_logger` and plain `logging`
    come out in one format.

    Args:
        level: minimum level name ("debug", "info", "warning", ...).
        json: force JSON (True) or console (False); default: JSON unless stderr
            is a terminal.
    """
    global _handler  # noqa: PLW0603 -- one handler per process, replaced on reconfigure
    use_json = (not sys.stderr.isatty()) if json is None else json
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer()
    )
    stamp = structlog.processors.TimeStamper(fmt="iso", utc=True)
    formatter = structlog.stdlib.ProcessorFormatter
    handler = logging.StreamHandler(_CurrentStderr())
    handler.setFormatter(
        formatter(
            processors=[formatter.remove_processors_meta, renderer],
            # records that did not come through structlog: get_logger's, stdlib's
            foreign_pre_chain=[
                structlog.contextvars.merge_contextvars,
                structlog.stdlib.ExtraAdder(),
                structlog.stdlib.add_log_level,
                stamp,
            ],
        )
    )
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    root.addHandler(handler)
    root.setLevel(logging.getLevelNamesMapping()[level.upper()])
    _handler = handler
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            stamp,
            formatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: tests and CLI runs reconfigure logging, and nothing on the hot
        # path logs, so the lookup cost is irrelevant.
        cache_logger_on_first_use=False,
    )
