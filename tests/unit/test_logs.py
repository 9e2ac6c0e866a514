"""Logging: silent in a library, routed through stdlib `logging`, shown by the CLI."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from exchange import Exchange

if TYPE_CHECKING:
    import pytest

ROOT = Path(__file__).parents[2]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a Python process with this checkout first on the path."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(  # noqa: S603 -- our own interpreter and arguments
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def test_library_use_with_a_file_journal_prints_nothing(tmp_path: Path) -> None:
    """A script that opens, uses and reopens a file journal writes no output."""
    script = textwrap.dedent(
        """
        import sys
        from exchange import Exchange
        from exchange.journal import FileJournal
        with Exchange(journal=sys.argv[1], fsync="off") as ex:
            ex.place_order("alice", "BTC-PERP", "buy", "limit", "1", "100")
        with open(sys.argv[1] + "/00000000000000000001.pxj", "ab") as f:
            f.write(b"torn")  # reopening cuts it and logs a warning
        FileJournal.open(sys.argv[1], ex.journal.header).close()
        """
    )
    done = _run(["-c", script, str(tmp_path / "j")], tmp_path)
    assert (done.stdout, done.stderr) == ("", "")


def test_journal_events_reach_the_hosts_logging(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The host's stdlib logging gets journal_opened with its fields as attributes."""
    with caplog.at_level(logging.INFO, logger="exchange"):
        Exchange(journal=tmp_path / "j", fsync="off").close()
    (record,) = [r for r in caplog.records if r.getMessage() == "journal_opened"]
    assert record.name == "exchange.journal.file"
    assert record.levelno == logging.INFO
    assert (record.directory, record.last_seq) == (str(tmp_path / "j"), 0)


def test_cli_renders_library_logs_as_json_lines(tmp_path: Path) -> None:
    """The CLI renders the journal's log lines on stderr, JSON when not a terminal."""
    done = _run(
        [
            "-m",
            "exchange.cli",
            "--log-level",
            "info",
            "demo",
            "--n",
            "50",
            "--journal",
            str(tmp_path / "j"),
            "--fsync",
            "off",
        ],
        tmp_path,
    )
    entries = [
        json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")
    ]
    opened = [e for e in entries if e["event"] == "journal_opened"]
    assert opened, done.stderr
    assert opened[0]["level"] == "info"
    assert opened[0]["directory"] == str(tmp_path / "j")
    assert "journal_opened" not in done.stdout
