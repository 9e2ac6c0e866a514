"""The command line (`paperx`) and its demos."""

from exchange.cli.main import main

__all__ = ["main"]
