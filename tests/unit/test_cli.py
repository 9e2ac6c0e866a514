"""Tests of the paperx command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from clients.bots import BOTS
from exchange import Exchange
from exchange.cli import main


class TestCli:
    """The ``paperx`` command line: help, demo and replay verify."""

    def test_help_teaches_the_commands(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--help lists every command with an example."""
        with pytest.raises(SystemExit) as info:
            main(["--help"])
        assert info.value.code == 0
        text = capsys.readouterr().out
        for word in ("demo", "bench", "replay", "examples:"):
            assert word in text

    @pytest.mark.parametrize("name", sorted(BOTS))
    def test_each_bot_documents_its_options(
        self, name: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``paperx bot NAME --help`` shows the bot's own options and exits 0."""
        with pytest.raises(SystemExit) as info:
            main(["bot", name, "--help"])
        assert info.value.code == 0
        text = capsys.readouterr().out
        assert text.startswith(f"usage: paperx bot {name}")
        for option in ("--account", "--secret", "--broker"):
            assert option in text

    def test_the_in_process_demo_trades_journals_and_verifies(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """The demo prints its summary and a verified replay, and exits 0."""
        code = main(
            [
                "demo",
                "--in-process",
                "--n",
                "3000",
                "--journal",
                str(tmp_path / "j"),
                "--fsync",
                "off",
            ]
        )
        out = capsys.readouterr().out
        assert code == 0
        for fragment in (
            "commands/s",
            "fills",
            "best bid",
            "journal",
            "state",
            "OK: live == rebuild == rerun",
            "isolated vs cross",
            "LIQUIDATED",
        ):
            assert fragment in out

    def test_replay_verify_reports_three_equal_hashes(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``replay verify`` exits 0 and prints the same hash three times."""
        with Exchange(journal=tmp_path / "j", fsync="off") as ex:
            ex.place_order("a", "BTC-PERP", "sell", "limit", "1", "100")
            ex.place_order("b", "BTC-PERP", "buy", "market", "0.4")
        assert main(["replay", "verify", str(tmp_path / "j")]) == 0
        out = capsys.readouterr().out
        hashes = [
            line.split()[2]
            for line in out.splitlines()
            if line.startswith(("live hash", "rebuild hash", "rerun hash"))
        ]
        assert len(hashes) == 3
        assert len(set(hashes)) == 1
        assert hashes[0] == ex.state_hash()

    def test_replay_verify_of_a_missing_directory_fails_clearly(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A path that is not a journal gives exit code 2 and a message."""
        assert main(["replay", "verify", str(tmp_path / "nope")]) == 2
        assert "not a journal directory" in capsys.readouterr().err


def test_a_reader_that_stops_early_ends_the_run_quietly() -> None:
    """``paperx ... | head -1``: no traceback when the pipe closes, exit code 1."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exchange.cli",
            "bench",
            "core",
            "--n",
            "20000",
            "--only",
            "core",
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    process.stdout.readline()
    process.stdout.close()  # the reader is gone; later prints hit a broken pipe
    _, stderr = process.communicate(timeout=120)
    assert b"Traceback" not in stderr, stderr.decode()
    assert process.returncode == 1
